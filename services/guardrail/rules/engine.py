"""Layer A rule engine: forbidden-pattern categories with context exceptions, over normalized text.

The rule set is data (`forbidden_patterns.v1.json`, see its `description`); `RuleSet.load()`
compiles it once and `evaluate()` applies it to the normalized views of a text (`normalize.py`).

Layer A rejects only a harmful act with its object, stated as something to do. So:

- A rule marked `signal` names a harm without an act (`stalkerware`, `price gouging`,
  `forced labour`): its matches are reported, not rejected, and the text goes on to Layer B,
  unless the author's own plan states it just before ("we will sign them up to our pyramid
  scheme") and no exception governs it.
- A rule match is suppressed, not rejected, when an exception of its category (or a global one,
  unless the category opts out) governs it: the exception starts before the match or at it, in
  the same sentence ("report employers who confiscate passports", "support survivors of
  trafficking", "scammers who ask for codes"), and no first-person plan comes between the two
  ("as an awareness drill, we will email a fake login page" is still a plan). A protective phrase
  after the act, or elsewhere in the text, never cancels it.
- Rules marked `strict` ignore exceptions.
- After the rules, a text none of them rejected goes to the learned intent check (`intent.py`),
  when the rule set has one (`with_intent`; `default_ruleset()` has the bundled one): a linear
  model over the same normalized sentences that rejects a stated harmful plan the rules do not
  list. Its match is reported like a rule's, as `stated_intent`.

Suppressed matches are still reported, so operators can see what almost fired.

Speed: running two hundred regexes over every text would cost milliseconds, so

- patterns cannot match across a sentence break, and text is matched sentence by sentence;
- every rule has anchors (word prefixes each match must contain, `anchors.py`); each anchor set
  is one bit, each distinct word maps (cached) to the bits it satisfies, and a rule runs on a
  sentence only when the sentence's bits cover the rule's;
- a rule whose matches always start with one of a few words is tried only at those words, and
  literal-first patterns drop their leading `\\b` so the regex engine can skip ahead in C.

`evaluate(text, exhaustive=True)` bypasses all of it; tests check both give the same result.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache, reduce
from operator import or_
from pathlib import Path
from typing import Any

from services.guardrail.rules.anchors import KEY_LENGTH, anchors, first_words, starts_with_literal
from services.guardrail.rules.intent import RULE_ID, IntentModel, default_model
from services.guardrail.rules.normalize import SENTENCE_BREAK, Lexicon, lexicon_from, views

DEFAULT_PATH = Path(__file__).with_name("forbidden_patterns.v1.json")
EXCERPT_MAX = 80
# Context window either side of a match when its sentence is very long (no punctuation).
CONTEXT_WINDOW = 200
# A first-person plan between a protective phrase and an act: the phrase does not govern the act.
_AUTHOR_PLAN = re.compile(
    r"\b(?:we|i|let s|lets|us|our|should|must|shall|ought|will|ll|need to|needs to|have to|"
    r"has to)\b"
)
NO_INTENT = "no_intent"
DESCRIBED = "described"
_READER = re.compile(
    r"\b(?:you|your|please|can|could|would|might|may|reason to|right to|deserve|deserves|"
    r"entitled to|free to|allowed to|ought)\b"
)
# A subject that is somebody else: the sentence opens with a determiner, a third person, a
# subordinate or prepositional opener, or a plural noun, and a third-party noun comes before the
# act ("clan fighters in Hela build shotguns", "when a few traders buy up the maize"); an opening
# verb is an imperative ("teach the volunteers how to ...") and never a description.
_PLURAL = r"\w+(?:ers|ors|ists|ies|ants|ents|men|ians|ives)"
_THIRD_PARTY_SUBJECT = re.compile(
    r"^(?:(?:the|some|many|most|these|those|local|other|several|few|a|an|their|its|his|her|"
    r"they|he|she|it|when|because|as|while|after|since|where|whereas|although|though|"
    r"in|at|across|around|during|over|according|"
    + _PLURAL
    + r"|people|police|staff|gangs|cartels|firms|companies|groups|families|clans|officials)\b)"
    r"(?: \w+)*? (?:" + _PLURAL + r"|they|he|she|people|groups|gangs|cartels|firms|companies|"
    r"agencies|officials|police|staff|clans|families|apps|sites)\b"
)
# A harm named right after the author's own plan is an act: "we will give them payday loans".
_STATED_PLAN = re.compile(
    r"\b(?:will|ll|shall|should|must|going to|plan to|intend to|want to|propose to|let s|lets|"
    r"i propose|we propose|our plan is)\b"
)
# ... or an imperative that opens the sentence: "run a bot farm", "set up a pyramid scheme".
_IMPERATIVE = re.compile(
    r"^(?:run|set up|start|launch|create|make|build|use|operate|organi[sz]e|deploy|open|sell|offer|"
    r"offering|selling|running|"
    r"give|hire|recruit|push|spread|post|send|sign \w+ up for|put) (?:\w+ ){0,4}$"
)
PLAN_REACH = 60  # characters before a signal term searched for a stated plan
_IMPERATIVE_OBJECT = re.compile(
    r" (?:and \w+ )?(?:the|a|an|his|her|their|them|him|every|all|this|that|these|those|our|your)\b"
)
ADJACENT_WORDS = 2  # words an `adjacent` exception may stand before the act it governs
# Quoted speech of four words or more is somebody else's words, reported ("a robocall said
# 'voting has moved to Thursday'"): it becomes sentences of its own, opened by QUOTED, and a
# non-strict rule's match there is suppressed. Shorter quotes are scare quotes around a term
# ("sold 'vaccine alternatives'") and stay part of the author's sentence.
QUOTED = "quoted"
REPORTED_SPEECH = "reported_speech"
_QUOTE = re.compile(
    r'"([^"\n]{8,600}?)"'
    r"|\u201c([^\u201d\n]{8,600}?)\u201d"  # curly double quotes
    r"|\u00ab([^\u00bb\n]{8,600}?)\u00bb"  # guillemets
    # curly single quotes; a closing one inside a word is an apostrophe
    r"|\u2018((?:[^\u2018\u2019\n]|\u2019(?=\w)){8,600}?)\u2019(?!\w)"
    # (the lookbehind after the quote mark, so every alternative opens with a literal and the
    # regex engine can skip ahead to quote marks)
    r"|'(?<![\w']')((?:[^'\n]|(?<=\w)'(?=\w)){8,600}?)'(?![\w'])"
)
_SENTENCE_END = re.compile(r"([.!?]+)\s+")
_MIN_QUOTED_WORDS = 4
# ... unless the author introduces it as their own words: "we'll tell them '...'".
_OWN_WORDS_BEFORE = re.compile(r"\b(?:we|i|let ?s|our|my)\b[^.!?]{0,40}$")

# Distinct words whose anchor bits are remembered; beyond this, bits are computed per call.
_WORD_CACHE_MAX = 200_000
# Sentences per block in `evaluate` (6 to 8 measured fastest on harmful text).
_BLOCK = 8
_MACRO = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_LITERAL_WORD = re.compile(r"[a-z]{2,}")
_ESCAPE = re.compile(r"\\.")
_STEM = re.compile(r"[a-z]+(?=\\w)")  # `verif\w*`: a stem, not a word
# Inflection endings written as alternatives (`doxx?(?:ing|ed)`): not words on their own.
_SUFFIXES = frozenset(["s", "es", "ed", "d", "ing", "er", "ers", "ly", "ies", "ied", "ment", "ion"])


class RuleSetError(ValueError):
    """The rule data file is malformed: missing fields, unknown macro, bad or capturing regex."""


@dataclass(frozen=True)
class RuleMatch:
    """One rule that matched; `excerpt` is normalized text around the match (at most 80 chars)."""

    category: str
    rule_id: str
    excerpt: str
    suppressed: bool = False
    exception_id: str | None = None


@dataclass(frozen=True)
class LayerAResult:
    """Layer A's verdict: rejected when any match is not suppressed."""

    rejected: bool
    matches: tuple[RuleMatch, ...]
    ruleset_version: str
    duration_ms: float

    @property
    def blocking(self) -> tuple[RuleMatch, ...]:
        """The matches that caused the rejection."""
        return tuple(m for m in self.matches if not m.suppressed)

    @property
    def categories(self) -> tuple[str, ...]:
        """Categories with a blocking match, in rule-set order."""
        return tuple(dict.fromkeys(m.category for m in self.blocking))


@dataclass(frozen=True)
class _Rule:
    id: str
    regex: re.Pattern[str]
    reference: re.Pattern[str]  # \b(?:pattern)\b: what `regex` plus the shortcuts stand for
    strict: bool
    signal: bool  # names a harm without an act: reported, never rejected
    required: int  # bits of the anchor sets a sentence must satisfy; 0 = always run
    # `regex` omits the leading \b (literal-first patterns search faster without it), so
    # matches starting inside a word are skipped here instead.
    check_start: bool
    # Bit of the prefixes one of which starts every match (see first_words); 0 when unknown.
    first: int

    def matches(self, sentence: _Sentence) -> list[re.Match[str]]:
        """Non-overlapping matches in a sentence, as `\\b(?:pattern)\\b` would find them."""
        text = sentence.text
        found = []
        if self.first:
            # Try the regex only where a word that can start a match begins.
            done, match = 0, self.regex.match
            for pos in sentence.starts(self.first):
                if pos >= done and (m := match(text, pos)) is not None:
                    found.append(m)
                    done = max(m.end(), pos + 1)
            return found
        if not self.check_start:
            return list(self.regex.finditer(text))
        pos = 0
        while (m := self.regex.search(text, pos)) is not None:
            start = m.start()
            if start and text[start - 1].isalnum():
                pos = start + 1
                continue
            found.append(m)
            pos = max(m.end(), start + 1)
        return found


class _Sentence:
    """One sentence of a view with the anchor bits of each of its words."""

    __slots__ = ("_offsets", "_spans", "_starts", "bits", "text", "word_bits", "words")

    def __init__(self, text: str, words: list[str], word_bits: list[int]) -> None:
        self.text = text
        self.words = words
        self.word_bits = word_bits
        self.bits = reduce(or_, word_bits, 0)
        self._offsets: list[int] | None = None
        self._starts: dict[int, list[int]] = {}
        self._spans: dict[tuple[str, int, int], list[tuple[int, int]]] = {}

    def spans(self, exception: _Exception, start: int, end: int) -> list[tuple[int, int]]:
        """Where `exception` matches in the slice `text[start:end]` (a slice, so `^` anchors at
        its start), remembered: the acts of several rules in one sentence are judged against
        the same exceptions."""
        key = (exception.id, start, end)
        known = self._spans.get(key)
        if known is None:
            context = self.text[start:end]
            known = self._spans[key] = [m.span() for m in exception.regex.finditer(context)]
        return known

    def starts(self, bit: int) -> list[int]:
        """Offsets of the words having `bit` (rules sharing first words share the list)."""
        known = self._starts.get(bit)
        if known is not None:
            return known
        offsets = self._offsets
        if offsets is None:
            offsets, pos = [], 0
            for word in self.words:
                offsets.append(pos)
                pos += len(word) + 1
            self._offsets = offsets
        found = self._starts[bit] = [
            o for o, b in zip(offsets, self.word_bits, strict=True) if b & bit
        ]
        return found


@dataclass(frozen=True)
class _Exception:
    id: str
    regex: re.Pattern[str]
    required: int  # anchor bits, as for rules
    adjacent: int | None  # governs only an act at most this many words after it ("never sell")
    voided_by_plan: bool  # a description ("an app that tracks") that a stated plan makes the plan's


@dataclass(frozen=True)
class _Category:
    name: str
    description: str
    rules: tuple[_Rule, ...]
    exceptions: tuple[_Exception, ...]


class RuleSet:
    """The compiled forbidden-pattern categories of one data-file version (use `load`)."""

    def __init__(
        self,
        version: str,
        categories: tuple[_Category, ...],
        lexicon: Lexicon,
        prefix_bits: dict[str, int],
        intent: IntentModel | None = None,
    ) -> None:
        self.version = version
        self.intent = intent
        self._categories = categories
        self._rules = tuple((c, r) for c in categories for r in c.rules)
        self._lexicon = lexicon
        self._prefix_bits = prefix_bits
        self._word_bits: dict[str, int] = {}
        # A sentence without one of the words that start every match cannot match either.
        self._checks = [(r.required | r.first, c, r) for c, r in self._rules]

    @property
    def categories(self) -> tuple[str, ...]:
        """Category names in data-file order."""
        return tuple(c.name for c in self._categories)

    def describe(self) -> dict[str, str]:
        """Category name -> description, for explanations shown to agents and operators."""
        return {c.name: c.description for c in self._categories}

    def rule_ids(self, category: str) -> tuple[str, ...]:
        """The rule ids of one category, in data-file order."""
        return tuple(r.id for c in self._categories if c.name == category for r in c.rules)

    def _sentence(self, text: str) -> _Sentence:
        cache = self._word_bits
        words = text.split(" ")
        cached = [cache.get(word) for word in words]
        if None not in cached:
            return _Sentence(text, words, cached)  # type: ignore[arg-type]  # no None left
        word_bits = []
        for word, bits in zip(words, cached, strict=True):
            if bits is None:
                bits = self._bits_of(word)
                if len(cache) < _WORD_CACHE_MAX:
                    cache[word] = bits  # plain dict writes are atomic: safe across threads
            word_bits.append(bits)
        return _Sentence(text, words, word_bits)

    def _bits_of(self, word: str) -> int:
        bits = 0
        for k in range(2, min(len(word), KEY_LENGTH) + 1):
            bits |= self._prefix_bits.get(word[:k], 0)
        return bits

    @classmethod
    def load(cls, path: str | Path | None = None) -> RuleSet:
        """Reads and compiles a rule data file (default: the bundled v1 file)."""
        source = Path(path) if path is not None else DEFAULT_PATH
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RuleSetError(f"cannot read rule set {source}: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleSet:
        """Compiles an already-parsed rule set (the JSON structure of the data file)."""
        try:
            version = str(data["version"])
            macros: Mapping[str, str] = data.get("macros", {})
            raw_categories: Mapping[str, Any] = data["categories"]
            words: set[str] = set()
            bits = _AnchorBits()
            global_exceptions = _compile_exceptions(
                data.get("global_exceptions", []), macros, words, bits
            )
        except (KeyError, TypeError) as exc:
            raise RuleSetError(f"rule set is missing a field: {exc}") from exc
        if not version or not raw_categories:
            raise RuleSetError("rule set needs a version and at least one category")

        categories: list[_Category] = []
        for name, raw in raw_categories.items():
            try:
                rules = tuple(_compile_rule(name, r, macros, words, bits) for r in raw["rules"])
                own = _compile_exceptions(raw.get("exceptions", []), macros, words, bits)
                use_global = bool(raw.get("global_exceptions", True))
                description = str(raw.get("description", ""))
            except (KeyError, TypeError) as exc:
                raise RuleSetError(f"category {name!r} is missing a field: {exc}") from exc
            if not rules:
                raise RuleSetError(f"category {name!r} has no rules")
            categories.append(
                _Category(
                    name=name,
                    description=description,
                    rules=rules,
                    exceptions=own + (global_exceptions if use_global else ()),
                )
            )
        return cls(version, tuple(categories), lexicon_from(words), bits.prefix_bits)

    def with_intent(self, intent: IntentModel | None) -> RuleSet:
        """This rule set with the learned intent check (see `intent.py`) after its rules."""
        return RuleSet(self.version, self._categories, self._lexicon, self._prefix_bits, intent)

    def intent_sentences(self, text: str) -> list[str]:
        """The normalized sentences the intent check reads of `text`, as `evaluate` reads them
        (the fitting tool sees texts exactly as the check does)."""
        sentences: dict[str, None] = {}
        for view in self._views(text):
            sentences.update(dict.fromkeys(view.split(SENTENCE_BREAK)))
        return _unquoted(sentences)

    def _views(self, text: str) -> tuple[str, ...]:
        """The distinct normalized views of `text`, quotations marked (see REPORTED_SPEECH)."""
        if "'" in text or '"' in text or not text.isascii():
            text = mark_quotes(text)
        return views(text, self._lexicon).distinct()

    def evaluate(self, text: str, *, exhaustive: bool = False) -> LayerAResult:
        """Layer A on one text: every category's rules over the word and squeezed views.

        `exhaustive` skips every shortcut (anchors, first words, boundary tricks) and runs each
        rule's plain `\\b(?:pattern)\\b` regex and every exception on every sentence: slower,
        and the same result; tests compare the two.
        """
        started = time.perf_counter()
        parts = [p for view in self._views(text) for p in view.split(SENTENCE_BREAK)]
        read = list(dict.fromkeys(parts))
        if not exhaustive:
            # A sentence the squeezed view shares with the word view is matched once: of the
            # squeezed view only the sentences with spelled-out letters are new.
            parts = read
        sentences = [self._sentence(s) for s in parts]
        if exhaustive:
            for sentence in sentences:
                sentence.bits = -1  # all bits set: no rule, sentence or exception is skipped
        # Blocks of sentences with their bits together: a rule whose anchors a text holds
        # tests a block before its sentences (a harmful text passes a hundred rules).
        blocks = [
            (reduce(or_, [s.bits for s in block], 0), block)
            for block in (sentences[i : i + _BLOCK] for i in range(0, len(sentences), _BLOCK))
        ]
        present = reduce(or_, [bits for bits, _ in blocks], 0)
        # In rule-set order, each rule's first blocking match, else its first suppressed one,
        # in the word view's sentences first.
        found = []
        for need, category, rule in self._checks:
            if present & need == need:
                match = _scan(category, rule, need, blocks, exhaustive)
                if match is not None:
                    found.append(match)
        matches = tuple(found)
        if self.intent is not None and all(m.suppressed for m in matches):
            verdict = self.intent.judge(_unquoted(read))
            if verdict.intent:
                matches += (RuleMatch(verdict.category, RULE_ID, verdict.excerpt),)
        return LayerAResult(
            rejected=any(not m.suppressed for m in matches),
            matches=matches,
            ruleset_version=self.version,
            duration_ms=(time.perf_counter() - started) * 1000.0,
        )


def _unquoted(sentences: Iterable[str]) -> list[str]:
    """The sentences the intent check reads: quoted speech is somebody else's words."""
    return [s for s in sentences if s and not s.startswith(QUOTED + " ")]


def _scan(
    category: _Category,
    rule: _Rule,
    need: int,
    blocks: list[tuple[int, list[_Sentence]]],
    exhaustive: bool,
) -> RuleMatch | None:
    """The first blocking match of `rule` in the sentences (`blocks`: their bits together and
    the sentences), else its first suppressed one."""
    suppressed = None
    for bits, block in blocks:
        if bits & need != need:
            continue
        for sentence in block:
            if sentence.bits & need != need:
                continue
            if exhaustive:
                found: Iterable[re.Match[str]] = rule.reference.finditer(sentence.text)
            else:
                found = rule.matches(sentence)
            for m in found:
                match = _judge(category, rule, sentence, m)
                if not match.suppressed:
                    return match
                suppressed = suppressed or match
    return suppressed


def mark_quotes(text: str) -> str:
    """`text` with each quotation of four words or more set apart as sentences that open with
    QUOTED (see REPORTED_SPEECH)."""

    def mark(m: re.Match[str]) -> str:
        quoted = next(g for g in m.groups() if g is not None)
        before = text[max(0, m.start() - 60) : m.start()].lower().replace("'", " ")
        if len(quoted.split()) < _MIN_QUOTED_WORDS or _OWN_WORDS_BEFORE.search(before):
            return m.group()
        inner = _SENTENCE_END.sub(lambda e: f"{e.group(1)} {QUOTED} ", quoted.strip())
        return f". {QUOTED} {inner}. "

    return _QUOTE.sub(mark, text)


def _judge(category: _Category, rule: _Rule, sentence: _Sentence, m: re.Match[str]) -> RuleMatch:
    text = sentence.text
    excerpt = _excerpt(text, m.start(), m.end())
    if not rule.strict and text.startswith(QUOTED + " "):
        return RuleMatch(category.name, rule.id, excerpt, True, REPORTED_SPEECH)
    if rule.signal or not rule.strict:
        # The exception scope is the sentence (a slice, so `^` anchors at its start), cut to
        # CONTEXT_WINDOW either side of the match when the sentence is very long.
        offset = max(0, m.start() - CONTEXT_WINDOW)
        stop = min(len(text), m.end() + CONTEXT_WINDOW)
        context = text[offset:stop]
        at = m.start() - offset
        for exception in category.exceptions:
            need = exception.required
            if sentence.bits & need == need:
                spans = sentence.spans(exception, offset, stop)
                if _governs(exception, spans, context, at):
                    return RuleMatch(category.name, rule.id, excerpt, True, exception.id)
    if rule.signal and not _stated_plan(text, m.start()):
        return RuleMatch(category.name, rule.id, excerpt, True, NO_INTENT)
    if not rule.strict and m.start() > 0 and _described(text, m.start()):
        return RuleMatch(category.name, rule.id, excerpt, True, DESCRIBED)
    return RuleMatch(category.name, rule.id, excerpt)


def _described(text: str, at: int) -> bool:
    """Whether the act at `at` is told of, not proposed: somebody else is its subject and
    nothing before it in the sentence is a plan, a modal, an address to the reader or an
    imperative opening."""
    before = text[:at]
    if _AUTHOR_PLAN.search(before) or _READER.search(before):
        return False
    if _IMPERATIVE.search(text, 0, at) is not None:
        return False
    return _THIRD_PARTY_SUBJECT.match(before) is not None


def _stated_plan(text: str, at: int) -> bool:
    """Whether the author states, just before `at`, that they will do it (or opens with it)."""
    if at == 0:
        # "Dox the judge.", "Pump and dump the coin tonight.": the term used as a verb with its
        # object, not a title ("Ponzi scheme collapse wipes out savings").
        return _IMPERATIVE_OBJECT.match(text, _word_end(text, at)) is not None
    if _STATED_PLAN.search(text, max(0, at - PLAN_REACH), at) is not None:
        return True
    return _IMPERATIVE.search(text, 0, at) is not None


def _word_end(text: str, at: int) -> int:
    space = text.find(" ", at)
    return len(text) if space < 0 else space


def _governs(exception: _Exception, spans: list[tuple[int, int]], context: str, at: int) -> bool:
    """Whether a match of `exception` (`spans`: its matches in `context`) governs the act at
    `at` (see the module docstring)."""
    for start, end in spans:
        if start > at:
            return False
        between = context[end:at]
        if exception.adjacent is not None:
            # Right before the act, a word or two apart: "never (simply) stop your insulin".
            if end <= at and len(between.split()) <= exception.adjacent:
                return True
            continue
        if _AUTHOR_PLAN.search(between) is not None:
            continue
        if exception.voided_by_plan and _STATED_PLAN.search(context, 0, start) is not None:
            continue  # "we will build an app that tracks her": the clause is the plan's
        return True
    return False


def _excerpt(view: str, start: int, end: int) -> str:
    if end - start >= EXCERPT_MAX:
        return view[start : start + EXCERPT_MAX].strip()
    spare = EXCERPT_MAX - (end - start)
    left = max(0, start - spare // 2)
    right = min(len(view), left + EXCERPT_MAX)
    left = max(0, right - EXCERPT_MAX)
    return view[left:right].strip()


def _expand(pattern: str, macros: Mapping[str, str]) -> str:
    def replace(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in macros:
            raise RuleSetError(f"unknown macro {{{name}}} in pattern {pattern!r}")
        return macros[name]

    return _MACRO.sub(replace, pattern)


def _compile(
    pattern: str, macros: Mapping[str, str], where: str, leading_boundary: bool = True
) -> re.Pattern[str]:
    expanded = _expand(pattern, macros)
    source = rf"\b(?:{expanded})\b" if leading_boundary else rf"(?:{expanded})\b"
    try:
        regex = re.compile(source)
    except re.error as exc:
        raise RuleSetError(f"{where}: invalid pattern: {exc}") from exc
    # Capturing groups are never needed, cost time and confuse the anchor analysis: forbid them.
    if regex.groups:
        raise RuleSetError(f"{where}: use non-capturing groups (?:...) only")
    return regex


def _literal_words(pattern: str) -> Iterable[str]:
    """Whole words a pattern spells out: the lexicon spelled-out runs are split back into."""
    stems = set(_STEM.findall(pattern))
    found = _LITERAL_WORD.findall(_ESCAPE.sub(" ", pattern))
    return [w for w in found if w not in stems and w not in _SUFFIXES]


class _AnchorBits:
    """One bit per distinct anchor set; maps each word prefix to the bits of the sets holding it."""

    def __init__(self) -> None:
        self.ids: dict[frozenset[str], int] = {}
        self.prefix_bits: dict[str, int] = {}

    def bit(self, req: frozenset[str]) -> int:
        """The bit standing for "a word starts with one of `req`"."""
        index = self.ids.setdefault(req, len(self.ids))
        for prefix in req:
            self.prefix_bits[prefix] = self.prefix_bits.get(prefix, 0) | (1 << index)
        return 1 << index

    def required(self, pattern: str) -> int:
        """The bits every match of `pattern` has (0 when it has no usable anchors)."""
        need = 0
        for req in anchors(pattern):
            need |= self.bit(req)
        return need


def _compile_rule(
    category: str,
    raw: Mapping[str, Any],
    macros: Mapping[str, str],
    words: set[str],
    bits: _AnchorBits,
) -> _Rule:
    rule_id = str(raw["id"])
    where = f"{category}/{rule_id}"
    regex = _compile(str(raw["pattern"]), macros, where)
    words.update(_literal_words(regex.pattern))
    literal_first = starts_with_literal(regex.pattern)
    first = first_words(regex.pattern) if literal_first else None
    required = bits.required(regex.pattern)
    fast = _compile(str(raw["pattern"]), macros, where, False) if literal_first else regex
    return _Rule(
        id=rule_id,
        regex=fast,
        reference=regex,
        strict=bool(raw.get("strict", False)),
        signal=bool(raw.get("signal", False)),
        required=required,
        check_start=literal_first,
        first=bits.bit(first) if first else 0,
    )


def _adjacency(raw: object) -> int | None:
    """`adjacent`: true for ADJACENT_WORDS, a number of words, or absent/false for none."""
    if raw is None or raw is False:
        return None
    return ADJACENT_WORDS if raw is True else int(raw)  # type: ignore[call-overload]


def _compile_exceptions(
    raw: Iterable[Mapping[str, Any]],
    macros: Mapping[str, str],
    words: set[str],
    bits: _AnchorBits,
) -> tuple[_Exception, ...]:
    out = []
    for item in raw:
        exception_id = str(item["id"])
        regex = _compile(str(item["pattern"]), macros, f"exception {exception_id}")
        words.update(_literal_words(regex.pattern))
        out.append(
            _Exception(
                exception_id,
                regex,
                bits.required(regex.pattern),
                adjacent=_adjacency(item.get("adjacent")),
                voided_by_plan=bool(item.get("voided_by_plan", False)),
            )
        )
    return tuple(out)


@lru_cache(maxsize=1)
def default_ruleset() -> RuleSet:
    """The bundled rule set with the bundled intent check, compiled once per process."""
    return RuleSet.load().with_intent(default_model())
