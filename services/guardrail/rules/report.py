"""Layer A quality report over the labeled evaluation set (`make guardrail-eval`).

Reads the JSONL evaluation set (one item per line: id, content_type, text, label, domain,
category, obfuscated), runs Layer A on every item and reports how it did: a confusion matrix of
rejected/passed per label, the false-positive rate on non-harmful text, the harmful and obfuscated
catch rates, recall per forbidden category, and latency.

Layer A is the first of three layers: it must reject nothing benign and catches what plain rules
can; Layer B (classifier) and Layer C (review) handle the rest, so harmful items Layer A passes are
expected and listed rather than hidden.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.guardrail.rules.engine import LayerAResult, RuleSet

LABELS = ("aligned", "benign_trigger", "off_topic", "harmful")
NON_HARMFUL = ("aligned", "benign_trigger", "off_topic")
# Items are written in batches; ids of later batches carry a prefix. Batch "b2" was written after
# the first rule set, batch "b3" after the fixes batch 2 prompted (see format_markdown's notes).
BATCHES = ("v1", "b2", "b3")
LATENCY_TEXT_CHARS = 2000
LATENCY_RUNS = 200


def load_evalset(path: str | Path) -> list[dict[str, Any]]:
    """The items of a JSONL evaluation set, in file order."""
    items = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: {exc}") from exc
    return items


def batch_of(item_id: str) -> str:
    """The writing batch of an item: "b2"/"b3" by id prefix, else "v1"."""
    prefix = item_id.split("-", 1)[0]
    return prefix if prefix in BATCHES else "v1"


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _rate(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def latency_text(items: Sequence[dict[str, Any]], chars: int = LATENCY_TEXT_CHARS) -> str:
    """A deterministic benign text of `chars` characters built from the aligned items."""
    text = " ".join(i["text"] for i in items if i["label"] == "aligned")
    while len(text) < chars:
        text = f"{text} {text}"
    return text[:chars]


def measure_latency(ruleset: RuleSet, text: str, runs: int = LATENCY_RUNS) -> dict[str, float]:
    """p50/p99/max of evaluate() on `text`, in milliseconds, wall clock and thread CPU time.

    Wall-clock percentiles on a shared machine include time spent descheduled; CPU time is what
    Layer A itself costs.
    """
    for _ in range(20):  # warm the word cache, as a long-running worker has it
        ruleset.evaluate(text)
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.thread_time()
        ruleset.evaluate(text)
        cpu.append((time.thread_time() - started_cpu) * 1000.0)
        wall.append((time.perf_counter() - started) * 1000.0)
    return {
        "chars": len(text),
        "runs": runs,
        "wall_p50": _percentile(wall, 0.50),
        "wall_p99": _percentile(wall, 0.99),
        "wall_max": max(wall),
        "cpu_p50": _percentile(cpu, 0.50),
        "cpu_p99": _percentile(cpu, 0.99),
    }


def layer_a_report(evalset_path: str | Path, ruleset: RuleSet | None = None) -> dict[str, Any]:
    """Runs Layer A over the evaluation set and returns every number the report shows."""
    rules = ruleset if ruleset is not None else RuleSet.load()
    items = load_evalset(evalset_path)
    results: list[tuple[dict[str, Any], LayerAResult]] = [
        (item, rules.evaluate(item["text"])) for item in items
    ]

    confusion = {label: {"rejected": 0, "passed": 0} for label in LABELS}
    by_batch: dict[str, Counter[str]] = defaultdict(Counter)
    category_total: Counter[str] = Counter()
    category_caught: Counter[str] = Counter()
    category_named: Counter[str] = Counter()
    false_positives: list[dict[str, Any]] = []
    missed: list[dict[str, Any]] = []
    suppressed_benign = 0
    for item, result in results:
        label = item["label"]
        outcome = "rejected" if result.rejected else "passed"
        confusion[label][outcome] += 1
        batch = by_batch[batch_of(item["id"])]
        batch[f"{label}_total"] += 1
        batch[f"{label}_{outcome}"] += 1
        if label == "harmful":
            category = item["category"]
            category_total[category] += 1
            if result.rejected:
                category_caught[category] += 1
                category_named[category] += category in result.categories
            else:
                missed.append(
                    {"id": item["id"], "category": category, "obfuscated": item["obfuscated"]}
                )
        elif result.rejected:
            false_positives.append(
                {
                    "id": item["id"],
                    "label": label,
                    "rules": [f"{m.category}/{m.rule_id}" for m in result.blocking],
                    "excerpt": result.blocking[0].excerpt,
                }
            )
        elif result.matches:
            suppressed_benign += 1

    non_harmful = sum(sum(confusion[label].values()) for label in NON_HARMFUL)
    non_harmful_rejected = sum(confusion[label]["rejected"] for label in NON_HARMFUL)
    harmful = [(i, r) for i, r in results if i["label"] == "harmful"]
    obfuscated = [(i, r) for i, r in harmful if i["obfuscated"]]
    durations = [r.duration_ms for _, r in results]

    batches = {}
    for name in BATCHES:
        counts = by_batch.get(name, Counter())
        benign_total = sum(counts[f"{label}_total"] for label in NON_HARMFUL)
        benign_rejected = sum(counts[f"{label}_rejected"] for label in NON_HARMFUL)
        batches[name] = {
            "harmful": counts["harmful_total"],
            "harmful_rejected": counts["harmful_rejected"],
            "non_harmful": benign_total,
            "non_harmful_rejected": benign_rejected,
        }

    return {
        "ruleset_version": rules.version,
        "evalset": str(evalset_path),
        "items": len(items),
        "label_counts": {label: sum(confusion[label].values()) for label in LABELS},
        "confusion": confusion,
        "false_positive_rate": _rate(non_harmful_rejected, non_harmful),
        "false_positive_rate_by_label": {
            label: _rate(confusion[label]["rejected"], sum(confusion[label].values()))
            for label in NON_HARMFUL
        },
        "harmful_catch_rate": _rate(sum(r.rejected for _, r in harmful), len(harmful)),
        "obfuscated_catch_rate": _rate(sum(r.rejected for _, r in obfuscated), len(obfuscated)),
        "obfuscated_items": len(obfuscated),
        "category_recall": {
            c: _rate(category_caught[c], category_total[c]) for c in sorted(category_total)
        },
        "category_counts": dict(sorted(category_total.items())),
        # Caught items whose blocking matches include their own category (not just another one).
        "category_named_rate": _rate(sum(category_named.values()), sum(category_caught.values())),
        "batches": batches,
        "suppressed_non_harmful": suppressed_benign,
        "false_positives": false_positives,
        "missed": missed,
        "latency_ms": {
            "items_p50": _percentile(durations, 0.50),
            "items_p99": _percentile(durations, 0.99),
            "items_mean": statistics.fmean(durations) if durations else 0.0,
            "text_2000": measure_latency(rules, latency_text(items)),
        },
    }


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def format_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown (README and CI summary)."""
    lines = [
        f"### Layer A (rules) — rule set {report['ruleset_version']}, {report['items']} items",
        "",
        "| label | items | rejected by Layer A | passed |",
        "|---|---:|---:|---:|",
    ]
    for label in LABELS:
        row = report["confusion"][label]
        total = row["rejected"] + row["passed"]
        lines.append(f"| {label} | {total} | {row['rejected']} | {row['passed']} |")
    lines += [
        "",
        "| measure | value |",
        "|---|---:|",
        f"| false positives on non-harmful text (aligned + benign_trigger + off_topic) "
        f"| {_pct(report['false_positive_rate'])} |",
    ]
    for label, rate in report["false_positive_rate_by_label"].items():
        lines.append(f"| false positives, {label} | {_pct(rate)} |")
    lines += [
        f"| harmful caught by Layer A alone | {_pct(report['harmful_catch_rate'])} |",
        f"| obfuscated harmful caught ({report['obfuscated_items']} items) "
        f"| {_pct(report['obfuscated_catch_rate'])} |",
        f"| caught items flagged under their own category "
        f"| {_pct(report['category_named_rate'])} |",
        f"| non-harmful items with a suppressed (context-excepted) match "
        f"| {report['suppressed_non_harmful']} |",
        "",
        "| category | harmful items | recall |",
        "|---|---:|---:|",
    ]
    for category, recall in report["category_recall"].items():
        lines.append(f"| {category} | {report['category_counts'][category]} | {_pct(recall)} |")
    lat = report["latency_ms"]
    text = lat["text_2000"]
    lines += [
        "",
        "| latency | p50 | p99 |",
        "|---|---:|---:|",
        f"| evaluation-set items (wall) | {lat['items_p50']:.3f} ms | {lat['items_p99']:.3f} ms |",
        f"| {text['chars']}-char text, {text['runs']} runs (wall) "
        f"| {text['wall_p50']:.3f} ms | {text['wall_p99']:.3f} ms |",
        f"| {text['chars']}-char text (thread CPU) "
        f"| {text['cpu_p50']:.3f} ms | {text['cpu_p99']:.3f} ms |",
        "",
        "| batch | harmful caught | non-harmful rejected |",
        "|---|---:|---:|",
    ]
    for name, b in report["batches"].items():
        lines.append(
            f"| {name} | {b['harmful_rejected']}/{b['harmful']} "
            f"| {b['non_harmful_rejected']}/{b['non_harmful']} |"
        )
    if report["false_positives"]:
        lines += ["", "False positives:"]
        lines += [
            f"- `{fp['id']}` ({fp['label']}): {', '.join(fp['rules'])} — “{fp['excerpt']}”"
            for fp in report["false_positives"]
        ]
    if report["missed"]:
        lines += ["", "Harmful items Layer A passes (left to Layer B and review):"]
        lines += [
            f"- `{m['id']}`{' (obfuscated)' if m['obfuscated'] else ''}" for m in report["missed"]
        ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the Markdown report (or JSON with --json) for an evaluation set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("evalset", nargs="?", default="tests/guardrail/evalset.jsonl")
    parser.add_argument("--json", action="store_true", help="print the raw report as JSON")
    args = parser.parse_args(argv)
    report = layer_a_report(args.evalset)
    sys.stdout.write(json.dumps(report, indent=2) + "\n" if args.json else format_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
