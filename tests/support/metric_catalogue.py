"""docs/metrics.md read as data, metric names found in PromQL, and /metrics scrapes parsed, for the
tests that hold the catalogue, the alert rules, the dashboards and the processes to each other."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

REPO_ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = REPO_ROOT / "docs" / "metrics.md"
COLUMNS = ["Metric", "Type", "Labels", "Meaning"]
TYPES = {"counter", "gauge", "histogram"}
EXPORTER_HEADING = "Exporter metrics"


@dataclass(frozen=True)
class Entry:
    """One row of the catalogue."""

    name: str
    """As exposed: counters with `_total`, histograms by their base name."""
    type: str
    labels: frozenset[str]
    meaning: str


@dataclass(frozen=True)
class Catalogue:
    """The two tables of docs/metrics.md: our processes' metrics and the exporters'."""

    ours: dict[str, Entry]
    exporters: dict[str, Entry]

    @property
    def all(self) -> dict[str, Entry]:
        return {**self.exporters, **self.ours}


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _entry(cells: list[str]) -> Entry:
    name, kind, labels, meaning = cells
    if not re.fullmatch(r"`[a-zA-Z_:][a-zA-Z0-9_:]*`", name):
        raise ValueError(f"metric name not in backticks: {name!r}")
    if kind not in TYPES:
        raise ValueError(f"{name}: type {kind!r} is not one of {sorted(TYPES)}")
    if labels == "—":
        label_set: frozenset[str] = frozenset()
    else:
        parts = [part.strip() for part in labels.split(",")]
        if not all(re.fullmatch(r"`[a-zA-Z_][a-zA-Z0-9_]*`", part) for part in parts):
            raise ValueError(f"{name}: labels must be `a`, `b` or —, not {labels!r}")
        label_set = frozenset(part.strip("`") for part in parts)
    if not meaning:
        raise ValueError(f"{name}: no meaning")
    return Entry(name.strip("`"), kind, label_set, meaning)


def read_catalogue(path: Path = CATALOGUE) -> Catalogue:
    """Both tables; raises ValueError on a malformed table, a bad cell or a duplicate name."""
    tables: list[dict[str, Entry]] = []
    current: dict[str, Entry] | None = None
    heading = ""
    exporter_index: int | None = None
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            current = None
            continue
        if not line.startswith("|"):
            current = None
            continue
        cells = _cells(line)
        if current is None:
            if cells != COLUMNS:
                raise ValueError(f"table header must be {COLUMNS}, not {cells}")
            current = {}
            tables.append(current)
            if heading == EXPORTER_HEADING:
                exporter_index = len(tables) - 1
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        entry = _entry(cells)
        if any(entry.name in table for table in tables):
            raise ValueError(f"{entry.name} is listed twice")
        current[entry.name] = entry
    if len(tables) != 2 or exporter_index != 1:
        raise ValueError(f"expected our table, then one under '## {EXPORTER_HEADING}'")
    return Catalogue(ours=tables[0], exporters=tables[1])


_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
    | {"and", "or", "unless", "inf", "nan"}
)


def metric_names(expr: str) -> set[str]:
    """The metric names (series selectors) in a PromQL expression: no functions, aggregations,
    keywords, label names, strings, numbers or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )  # grouping label lists
    text = re.sub(r"\boffset\s+\S+", " ", text)
    text = re.sub(r"\$\w+", " ", text)  # Grafana variables
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


def base_name(series: str, catalogue: dict[str, Entry]) -> str | None:
    """The catalogue entry a series name belongs to: itself, or a histogram's `_bucket`,
    `_sum` or `_count`; None when it belongs to none."""
    if series in catalogue:
        return series
    for suffix in ("_bucket", "_sum", "_count"):
        base = series.removesuffix(suffix)
        if base != series and catalogue.get(base) and catalogue[base].type == "histogram":
            return base
    return None


@dataclass(frozen=True)
class Exported:
    """One metric family as a process exposes it."""

    name: str
    """As the catalogue names it (counters with `_total`)."""
    type: str
    labels: frozenset[str] | None
    """Label names of its samples (without `le`); None when it has no sample yet."""


def parse_exposition(text: str) -> dict[str, Exported]:
    """The families of a /metrics page by the name their `# TYPE` line gives (a counter's with
    `_total` when it has one: prometheus_client's parser drops it from the family and adds it to
    the samples of every counter), without the `_created` companions of counters and
    histograms."""
    declared = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    families = list(text_string_to_metric_families(text))
    kinds = {family.name: family.type for family in families}
    found: dict[str, Exported] = {}
    for family in families:
        base = family.name.removesuffix("_created")
        if family.name != base and kinds.get(base) in ("counter", "histogram"):
            continue
        name = family.name
        if family.type == "counter" and name not in declared:
            name = f"{name}_total"
        labels = None
        if family.samples:
            labels = frozenset(
                label
                for sample in family.samples
                for label in sample.labels
                if label not in ("le", "quantile")
            )
        found[name] = Exported(name, family.type, labels)
    return found


def scrape(url: str) -> dict[str, Exported]:
    """GET a /metrics page and parse it."""
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return parse_exposition(response.text)


DEFAULT_COLLECTORS = ("process_", "python_gc_", "python_info")
"""prometheus_client's default collectors: exported by every process, not catalogued."""


def ours(exported: dict[str, Exported]) -> dict[str, Exported]:
    """The families a process exports of its own (not the default collectors')."""
    return {name: e for name, e in exported.items() if not name.startswith(DEFAULT_COLLECTORS)}
