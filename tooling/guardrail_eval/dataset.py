"""The labelled guardrail sets: their items, checks, the one-time split and the frozen hash."""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from services.core.domains import DOMAINS
from services.guardrail.harms import HARM_CATEGORIES

LABELS = ("aligned", "benign_trigger", "harmful", "off_topic")
BENIGN = ("aligned", "benign_trigger")
CONTENT_TYPES = ("problem", "solution", "debate")
HARMFUL_VARIANTS = ("plain", "paraphrased", "obfuscated", "framed")
CONTEXTS = ("protective", "reporting", "preventive", "survivor_support")
OBFUSCATIONS = ("spacing", "punctuation", "leetspeak", "homoglyph", "zero_width", "mixed_script")
FIELDS = (
    "id",
    "content_type",
    "title",
    "description",
    "claimed_domain",
    "label",
    "category",
    "variant",
    "obfuscation",
    "explicit_intent",
)


class DatasetError(ValueError):
    """A line of a labelled set is malformed or breaks the set's rules."""


@dataclass(frozen=True)
class Item:
    """One labelled post: what an agent would submit, and what a moderator says it is."""

    id: str
    content_type: str
    title: str
    description: str
    claimed_domain: str
    label: str
    """aligned | benign_trigger (names a harm to fight it) | harmful | off_topic."""
    category: str | None
    """The harm category involved (harmful and benign_trigger items)."""
    variant: str | None
    """Harmful: plain | paraphrased | obfuscated | framed; benign_trigger: its context."""
    obfuscation: str | None
    """The disguise of an obfuscated harmful item (spacing, leetspeak, homoglyph, ...)."""
    explicit_intent: bool
    """Harmful items that state the act, its object and the intent to carry it out."""

    @property
    def text(self) -> str:
        """What Layer A reads: title and body, as the pipeline joins them."""
        return f"{self.title}\n{self.description}".strip()

    @property
    def benign(self) -> bool:
        """Content a moderator approves."""
        return self.label in BENIGN


def _check(item: Item) -> None:
    problems = []
    if item.content_type not in CONTENT_TYPES:
        problems.append(f"content_type {item.content_type!r}")
    if item.claimed_domain not in DOMAINS:
        problems.append(f"claimed_domain {item.claimed_domain!r}")
    if item.label not in LABELS:
        problems.append(f"label {item.label!r}")
    if not item.title.strip() or len(item.description) < 20:
        problems.append("title or description too short")
    if item.label in ("harmful", "benign_trigger"):
        if item.category not in HARM_CATEGORIES:
            problems.append(f"category {item.category!r}")
        allowed = HARMFUL_VARIANTS if item.label == "harmful" else CONTEXTS
        if item.variant not in allowed:
            problems.append(f"variant {item.variant!r}")
    elif item.category is not None or item.variant is not None:
        problems.append("category and variant are only for harmful and benign_trigger items")
    wants_obfuscation = item.label == "harmful" and item.variant == "obfuscated"
    if wants_obfuscation != (item.obfuscation in OBFUSCATIONS):
        problems.append(f"obfuscation {item.obfuscation!r}")
    if item.explicit_intent and item.label != "harmful":
        problems.append("explicit_intent is only for harmful items")
    if problems:
        raise DatasetError(f"{item.id}: " + "; ".join(problems))


def records(path: Path) -> Iterator[dict[str, Any]]:
    """The raw records of a JSONL file of either format (`title`/`description` or the older
    `text`), blank lines skipped, unchecked: what the fitting tools read."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


def load(path: Path) -> list[Item]:
    """The items of a JSONL set, checked; raises DatasetError naming the line."""
    items: list[Item] = []
    seen: set[str] = set()
    texts: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if set(raw) != set(FIELDS):
                raise DatasetError(f"fields {sorted(set(raw) ^ set(FIELDS))}")
            item = Item(**raw)
            _check(item)
        except (json.JSONDecodeError, TypeError, DatasetError) as exc:
            raise DatasetError(f"{path}:{number}: {exc}") from exc
        if item.id in seen or item.text in texts:
            raise DatasetError(f"{path}:{number}: duplicate id or text ({item.id})")
        seen.add(item.id)
        texts.add(item.text)
        items.append(item)
    return items


def dump(items: list[Item], path: Path) -> None:
    """Writes items as JSONL, one per line, in the given order."""
    lines = (json.dumps(asdict(item), ensure_ascii=False) for item in items)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def sha256(path: Path) -> str:
    """The file's digest: the test half's is pinned by a test so it cannot drift."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def split(items: list[Item], seed: int) -> tuple[list[Item], list[Item]]:
    """Halves stratified by (label, category, variant): every stratum lands in both halves."""
    strata: dict[tuple[str, str | None, str | None], list[Item]] = defaultdict(list)
    for item in items:
        strata[(item.label, item.category, item.variant)].append(item)
    rng = random.Random(seed)  # noqa: S311 - a reproducible split, not a secret
    dev: list[Item] = []
    test: list[Item] = []
    flip = 0
    for key in sorted(strata, key=str):
        group = sorted(strata[key], key=lambda i: i.id)
        rng.shuffle(group)
        # Odd strata alternate which half gets the extra item, so the halves stay even.
        half = len(group) // 2 + (len(group) % 2) * flip
        flip ^= len(group) % 2
        test.extend(group[:half])
        dev.extend(group[half:])
    return sorted(dev, key=lambda i: i.id), sorted(test, key=lambda i: i.id)
