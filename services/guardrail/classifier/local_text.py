"""What the local classifier embeds: de-obfuscated text cut into a few sentence-aligned windows."""

from __future__ import annotations

import re
import unicodedata

from services.guardrail.classifier.base import ContentItem
from services.guardrail.rules.normalize import normalize

# About 1.3 MiniLM tokens a word: 40 words is ~55 tokens; the cost grows with the tokens.
WINDOW_WORDS = 40
MAX_WINDOWS = 3

_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def deobfuscated(text: str) -> str:
    """`text`, or Layer A's canonical form of it when they differ in more than case and spacing.

    Spaced letters, leetspeak and homoglyphs (`g.u.n`, `ph1sh1ng`, Cyrillic lookalikes) tokenize
    into fragments the embedding model does not understand; the canonical form undoes them. Plain
    text is kept as written, because punctuation and symbols (`$`, `%`) carry meaning.
    """
    decomposed = unicodedata.normalize("NFKD", text.replace("%", " percent "))
    unaccented = "".join(c for c in decomposed if not unicodedata.combining(c))
    canonical = normalize(text)
    if _WORD.findall(canonical) == _WORD.findall(unaccented.casefold()):
        return text
    return canonical


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _pack(sentences: list[str], first_budget: int, budget: int) -> list[str]:
    """Greedy windows of whole sentences up to `budget` words (the first up to `first_budget`);
    a sentence longer than the budget is cut."""
    windows: list[str] = []
    current: list[str] = []
    size = 0

    def limit() -> int:
        return first_budget if not windows else budget

    for sentence in sentences:
        words = sentence.split()
        while len(words) > limit():
            if current:
                windows.append(" ".join(current))
                current, size = [], 0
            cut = limit()
            windows.append(" ".join(words[:cut]))
            words = words[cut:]
        if current and size + len(words) > limit():
            windows.append(" ".join(current))
            current, size = [], 0
        if words:
            current.append(" ".join(words))
            size += len(words)
    if current:
        windows.append(" ".join(current))
    return windows


def windows(
    item: ContentItem, *, window_words: int = WINDOW_WORDS, max_windows: int = MAX_WINDOWS
) -> list[str]:
    """At most `max_windows` texts to embed: the title leads the first window.

    A long body keeps its first window and windows spread evenly over the rest (always the last
    one), so harmful intent stated at the end of a long text is still seen. Deterministic.
    """
    title = deobfuscated(item.title.strip())
    body = deobfuscated(item.body.strip())
    # The title shares the first window, leaving the body at least half of it.
    first_budget = max(window_words - len(title.split()), window_words // 2)
    parts = _pack(_sentences(body), first_budget if title else window_words, window_words)
    if title:
        parts = [f"{title}. {parts[0]}", *parts[1:]] if parts else [title]
    if not parts:
        return [""]
    if len(parts) <= max_windows:
        return parts
    if max_windows == 1:
        return parts[:1]
    step = (len(parts) - 1) / (max_windows - 1)
    picks = sorted({round(i * step) for i in range(max_windows)})
    return [parts[i] for i in picks]
