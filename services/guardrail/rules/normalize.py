"""Canonical text for Layer A: the views the forbidden-pattern rules match against.

Obfuscation makes a forbidden phrase unreadable to a matcher while a person still reads it.
`views()` undoes the common tricks in a fixed order, each step safe for ordinary text:

1. Characters. NFKD (fullwidth and styled letters become ASCII, accents split off), then drop
   combining marks (Mn/Me: accents, zalgo, variation selectors), format characters (Cf: zero-width
   space and joiners, U+2060, BOM, soft hyphen, bidi controls) and invisible fillers; case-fold;
   NFKC to recompose what is left.
2. Homoglyphs. A curated map of Cyrillic, Greek and small-capital letters that look like Latin
   ones, applied to a word only when it mixes scripts or consists entirely of lookalikes (the
   UTS #39 "whole-script confusable" idea), so genuine Russian or Greek words are left alone.
3. Leetspeak and signs. `%` becomes the word `percent`. In a run mixing letters with digits or
   symbols (`b0mb`, `ph1sh1ng`, `l@bor`, `$cam`) the characters 0 1 3 4 5 7 @ $ become
   o i e a s t a s, and `!`/`|` become i/l inside a word. Runs with fewer than two letters and
   number/unit or code-like tokens (`5g`, `3d`, `4th`, `10km`, `co2`, `ak47`, `covid19`) are kept:
   there the digits carry meaning. (`mak3`, `pip3`, `gho57` fold; two-letter codes like `au70`
   do not.) `1` always folds to `i`, never `l` (a known gap).
4. Word view. Runs of letters/digits are words, joined by single spaces; every other character
   is a separator. A sentence end (`.`, `!`, `?` before whitespace, or a line break) is kept as
   ". ", so rules never match across sentences and exceptions can be checked per sentence. A
   period after a one-character word (`u.s.`, `j. smith`) is an initial, not a sentence end.
5. Squeezed view. Three or more one-character words with the same separator (`g.u.n`,
   `s-u-r-v-e-i-l-l-a-n-c-e`, `w e a p o n s`, `v_e_r_m_i_n`) are joined into one word and
   leet-folded again (`d 0 x` -> `dox`); a pair spaced like such a run next to it joins too
   (`n o  i m m i g r a n t s`). Requiring one separator keeps `make a b.o.m.b` as
   `make a bomb`. With a lexicon (the engine passes the words its patterns use) a joined run is
   split back into words when it can be entirely (`belowminimumwage` -> `below minimum wage`,
   `abomb` -> `a bomb`); otherwise it stays joined.

The word view changes ordinary prose only in case, punctuation and the folds above, so excerpts
stay readable; the squeezed view differs from it only where letters were spelled out. The common
case (ASCII text, no spelled-out letters) takes a fast path of a few C-level regex passes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from itertools import pairwise

SENTENCE_BREAK = ". "

# Invisible characters outside categories Cf/Mn/Me (those are dropped by category).
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")

# Lowercase lookalikes only (case folding runs first), from Unicode's confusables.txt, trimmed to
# letters that render near-identically to a Latin letter in common fonts.
CONFUSABLES: dict[str, str] = {
    # Cyrillic: a, ve, ie, io, ka, em, en, o, er, es, te, u, ha, soft sign, dze, i, yi, je,
    # omega, izhitsa, straight u, shha, palochka, komi de, qa, we
    "\u0430": "a",
    "\u0432": "b",
    "\u0435": "e",
    "\u0451": "e",
    "\u043a": "k",
    "\u043c": "m",
    "\u043d": "h",
    "\u043e": "o",
    "\u0440": "p",
    "\u0441": "c",
    "\u0442": "t",
    "\u0443": "y",
    "\u0445": "x",
    "\u044c": "b",
    "\u0455": "s",
    "\u0456": "i",
    "\u0457": "i",
    "\u0458": "j",
    "\u0461": "w",
    "\u0475": "v",
    "\u04af": "y",
    "\u04bb": "h",
    "\u04cf": "l",
    "\u0501": "d",
    "\u051b": "q",
    "\u051d": "w",
    # Greek: alpha, beta, gamma, epsilon, eta, iota, kappa, nu, omicron, rho, tau, upsilon, chi,
    # omega, lunate sigma, yot
    "\u03b1": "a",
    "\u03b2": "b",
    "\u03b3": "y",
    "\u03b5": "e",
    "\u03b7": "n",
    "\u03b9": "i",
    "\u03ba": "k",
    "\u03bd": "v",
    "\u03bf": "o",
    "\u03c1": "p",
    "\u03c4": "t",
    "\u03c5": "u",
    "\u03c7": "x",
    "\u03c9": "w",
    "\u03f2": "c",
    "\u03f3": "j",
    # Latin extensions that survive NFKC: dotless i, alpha, script g, iota, small capitals
    "\u0131": "i",
    "\u0251": "a",
    "\u0261": "g",
    "\u0269": "i",
    "\u026a": "i",
    "\u0274": "n",
    "\u0280": "r",
    "\u028f": "y",
    "\u1d00": "a",
    "\u1d04": "c",
    "\u1d05": "d",
    "\u1d07": "e",
    "\u1d0b": "k",
    "\u1d0d": "m",
    "\u1d0f": "o",
    "\u1d18": "p",
    "\u1d1b": "t",
    "\u1d1c": "u",
    "\u1d20": "v",
    "\u1d21": "w",
    "\u1d22": "z",
}
_CONFUSABLE_TABLE = str.maketrans(CONFUSABLES)

LEET: dict[str, str] = {
    "0": "o",
    "1": "i",
    "3": "e",
    "4": "a",
    "5": "s",
    "7": "t",
    "@": "a",
    "$": "s",
    # Only inside a word (see _fold_run): at a word's edge they are punctuation.
    "!": "i",
    "|": "l",
}
_LEET_TABLE = str.maketrans(LEET)
_LEET_CHARS = frozenset(LEET)
_EDGE_ONLY = "!|"
_RUN = re.compile(r"[a-z0-9@$!|]*")
# Tokens whose digits mean something: 5g, 3d, 4th, 10km, 500ml / co2, mp3, ak47, b12, g20; and
# any token with a digit leetspeak never uses (covid19, sdg16, h2o).
_UNITS = (
    "st|nd|rd|th|s|g|d|k|m|x|h|am|pm|hr|hrs|min|yr|yrs|km|kg|mg|ml|mm|cm|ft|lb|lbs|oz|kw|mw|kwh"
    "|hz|gb|mb|kb|tb|v|w"
)
_KEEP_DIGITS = re.compile(rf"\d+(?:{_UNITS})|[a-z]{{1,2}}\d+|.*[2689].*")

# Most patterns below start with a character class or a literal on purpose: the regex engine then
# skips to candidate positions in C instead of attempting a match at every character.
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_LETTERS = re.compile(r"[^\W\d_]*")
_NON_SPACE = re.compile(r"[^ \t\n\r\f\v]*")  # up to ASCII whitespace
# Non-ASCII characters with at most 40 ASCII characters between each and the next.
_NON_ASCII_SPAN = re.compile(r"[^\x00-\x7f](?:[\x00-\x7f]{0,40}[^\x00-\x7f])*")
_WINDOW = 32  # characters `_run_start` reverses at a time
# A leet character next to a letter; the run around it is found in Python (rare).
_LEET_HINT = re.compile(r"[0-9@$!|](?:(?<=[a-z].)|(?=[a-z]))")
# Separator runs, except a lone space (already what the word view wants: fewer replacements).
_NON_WORD = re.compile(r"[^\w ][\W_]*|_[\W_]*| [\W_]+")
# From a possible sentence end to the end of its separator. Greedy with nothing after it, so a
# long run of punctuation is one match (a lookahead here would backtrack quadratically).
_TERMINATOR = re.compile(r"[.!?\n][\W_]*")
_WHITESPACE = re.compile(r"\s")
# Stands for a sentence break while separators collapse: a letter (so it survives) that ordinary
# text does not contain; where some text does, it is read as a space.
_MARK = "\ua66e"
_BREAK = f" {_MARK} "
_MARKS = re.compile(r"\ua66e(?: \ua66e)*")
# Three one-character words in a row in a word view (searched with a space prepended): every
# squeezable run has one (_MIN_RUN), so a text without it, say "in 1 2 weeks", has nothing to
# squeeze.
_SPACED_RUN = re.compile(r" [^ .] [^ .] [^ .](?![^ .])")
# Two or more one-character words in a row, whatever separates them.
_CLUSTER = re.compile(r"(?<![^\W_])[^\W_](?:[\W_]+[^\W_](?![^\W_]))+")
_WORD = re.compile(r"[^\W_]+")

_MIN_RUN = 3
# Longer spelled-out runs are joined but not split into words (splitting is quadratic-ish).
_MAX_SEGMENT = 64
# Short words a spelled-out run may hold besides rule words (`abomb` -> `a bomb`).
_FUNCTION_WORDS = "a an and at by for from i in is it no not of on or so the their them they to we"


@dataclass(frozen=True)
class NormalizedViews:
    """The two canonical forms of one text; `squeezed` equals `words` unless letters were spaced."""

    words: str
    squeezed: str

    def distinct(self) -> tuple[str, ...]:
        """The views worth matching: one when they are equal, else both."""
        return (self.words,) if self.squeezed == self.words else (self.words, self.squeezed)


@dataclass(frozen=True)
class Lexicon:
    """Words a joined spelled-out run may be split back into (see `lexicon_from`)."""

    words: frozenset[str]
    longest: int


_NO_LEXICON = Lexicon(frozenset(), 0)


def lexicon_from(words: Iterable[str]) -> Lexicon:
    """A segmentation lexicon: the given words, their singulars, and common function words."""
    out = set(_FUNCTION_WORDS.split())
    for word in words:
        out.add(word)
        if len(word) > 3 and word.endswith("s"):
            out.add(word[:-1])
    return Lexicon(frozenset(out), max(len(w) for w in out))


def normalize(text: str) -> str:
    """The canonical form of `text`: its squeezed view, spelled-out runs joined (no lexicon)."""
    return views(text).squeezed


def views(text: str, lexicon: Lexicon = _NO_LEXICON) -> NormalizedViews:
    """The word view and the squeezed view of `text` (see the module docstring)."""
    canon = canonical_chars(text)
    if _MARK in canon:
        canon = canon.replace(_MARK, " ")
    breaks: list[int] = []
    words = _word_view(canon, breaks)
    if _SPACED_RUN.search(" " + words) is None:
        return NormalizedViews(words, words)  # nothing spelled out: nothing to squeeze
    return NormalizedViews(words, _squeezed_view(canon, breaks, words, lexicon))


def _squeezed_view(canon: str, breaks: list[int], words: str, lexicon: Lexicon) -> str:
    """The squeezed view, squeezing only the sentences that hold a spelled-out run.

    A sentence break of the word view follows a word of two or more characters, which
    squeezing leaves alone, so every break stays a break (squeezing may add some: `g u n.`
    ends a sentence once joined) and each sentence squeezes on its own, with the same result
    as squeezing the whole text, at a fraction of the cost when one post in a long text is
    disguised. `breaks` holds where each sentence of `words` after the first starts in `canon`.
    """
    sentences = words.split(SENTENCE_BREAK)
    starts = [0, *breaks]
    ends = [*breaks, len(canon)]
    if len(starts) > len(sentences):
        del starts[-1], ends[-1]  # the text ends with a sentence break: no sentence after it
    squeezed = partial(_squeezed, lexicon=lexicon)
    out = [
        _word_view(_CLUSTER.sub(squeezed, canon[start:end]))
        if _SPACED_RUN.search(" " + sentence) is not None
        else sentence
        for sentence, start, end in zip(sentences, starts, ends, strict=True)
    ]
    return SENTENCE_BREAK.join(out)


def _squeezed(cluster: re.Match[str], lexicon: Lexicon) -> str:
    return " " + _squeeze(cluster.group(), lexicon) + " "


class _DropInvisible(dict[int, int | None]):
    """str.translate table deleting marks, format characters and invisible fillers.

    Filled lazily: each code point is classified once per process; after that translate() runs
    at C speed.
    """

    def __missing__(self, code: int) -> int | None:
        c = chr(code)
        value = None if c in _INVISIBLE or unicodedata.category(c) in ("Mn", "Me", "Cf") else code
        self[code] = value
        return value


_DROP_INVISIBLE = _DropInvisible()


def canonical_chars(text: str) -> str:
    """Steps 1-3: compatibility-normalized, case-folded, invisible-free, homoglyph/leet-folded."""
    if text.isascii():
        folded = text.lower()  # NFKD/NFKC, marks and confusables cannot change ASCII
    else:
        folded = _fold_non_ascii_tokens(text)
        if not folded.isascii():
            folded = _fold_non_ascii_words(folded)
    # "50%" -> "50 percent": rules about rates can then require the word.
    return fold_leet(folded.replace("%", " percent "))


def fold_unicode(text: str) -> str:
    """Compatibility-normalized, case-folded, without marks or invisible characters."""
    kept = unicodedata.normalize("NFKD", text).translate(_DROP_INVISIBLE)
    return unicodedata.normalize("NFKC", kept.casefold())


def _fold_non_ascii_tokens(text: str) -> str:
    """`fold_unicode(text)`, computed only on the stretches of tokens (runs between ASCII
    whitespace) that hold a non-ASCII character, the rest lower-cased: the same result, because
    normalization never reorders or composes across a space, and several times faster on text
    that is mostly ASCII with a curly quote or a currency sign. Non-ASCII characters a few words
    apart fold as one stretch: one call costs more than the ASCII between them."""
    out: list[str] = []
    last = 0
    for span in _NON_ASCII_SPAN.finditer(text):
        # A span may start inside the token the one before ended in, already folded.
        start = _run_start(text, span.start(), last, _NON_SPACE)
        end = _run_end(text, span.end(), _NON_SPACE)
        out.append(text[last:start].lower())
        out.append(fold_unicode(text[start:end]))
        last = end
    out.append(text[last:].lower())
    return "".join(out)


def _fold_non_ascii_words(text: str) -> str:
    """Each run of letters holding a non-ASCII character (or such a character alone), folded.

    Found from the non-ASCII characters outwards: a regex for the whole run would be tried at
    every letter of the text.
    """
    out: list[str] = []
    last = 0
    for hit in _NON_ASCII.finditer(text):
        if hit.start() < last:
            continue  # inside a run already folded
        start = _run_start(text, hit.start(), last, _LETTERS)
        end = _run_end(text, hit.end(), _LETTERS)
        out.append(text[last:start])
        out.append(_fold_confusables(text[start:end]))
        last = end
    out.append(text[last:])
    return "".join(out)


def _run_start(text: str, end: int, floor: int, run: re.Pattern[str]) -> int:
    """Where the run of characters ending at `end` starts, not before `floor`; `run` is a
    `[...]*` pattern, matched on the reversed text before `end` so it runs in C."""
    while end > floor:
        low = max(floor, end - _WINDOW)
        back = _run_end(text[low:end][::-1], 0, run)
        if back < end - low:
            return end - back
        end = low
    return floor


def _run_end(text: str, start: int, run: re.Pattern[str]) -> int:
    """Where the run of characters starting at `start` ends (`run`: a `[...]*` pattern)."""
    found = run.match(text, start)
    return found.end() if found is not None else start


def _fold_confusables(word: str) -> str:
    # Mixed-script words and all-lookalike words are disguises; real Cyrillic/Greek words are not.
    # A lookalike folds to an ASCII letter, anything else stays as it is: `folded` is ASCII
    # exactly when every non-ASCII character of `word` is a lookalike.
    folded = word.translate(_CONFUSABLE_TABLE)
    if folded.isascii() or word.encode("ascii", "ignore"):
        return folded
    return word


def fold_leet(text: str) -> str:
    """Step 3 on case-folded text: every run of letters mixed with leet characters, folded."""
    out: list[str] = []
    last = 0
    for hint in _LEET_HINT.finditer(text):
        if hint.start() < last:
            continue  # inside a run already folded
        start = _run_start(text, hint.start(), last, _RUN)
        end = _run_end(text, hint.end(), _RUN)
        out.append(text[last:start])
        out.append(_fold_run(text[start:end]))
        last = end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _fold_run(run: str) -> str:
    """Leet-folds one run unless it has too few letters or is a number/unit/code token."""
    core = run.strip(_EDGE_ONLY)
    if _LEET_CHARS.isdisjoint(core):
        return run
    if sum(map(str.isalpha, core)) < 2 or _KEEP_DIGITS.fullmatch(core):
        return run
    lead = len(run) - len(run.lstrip(_EDGE_ONLY))
    return run[:lead] + core.translate(_LEET_TABLE) + run[lead + len(core) :]


def _word_view(canon: str, breaks: list[int] | None = None) -> str:
    """Step 4 on canonical text; `breaks`, when given, receives the offset in `canon` where
    each sentence after the first starts."""

    def mark_break(m: re.Match[str]) -> str:
        # The match starts with the terminator and holds only separators: it ends a sentence
        # when whitespace follows (a period inside `g.u.n` or at the very end does not).
        if _WHITESPACE.search(m.group()) is None:
            return " "
        j = m.start()
        while j > 0 and not canon[j - 1].isalnum():
            j -= 1
        # After a one-character word a period is an initial (`u.s.`, `j. smith`), not an end.
        if j >= 2 and canon[j - 2].isalnum():
            if breaks is not None:
                breaks.append(m.end())
            return _BREAK
        return " "

    marked = _NON_WORD.sub(" ", _TERMINATOR.sub(mark_break, canon))
    return _MARKS.sub(".", marked).replace(" .", ".").strip(" .")


@dataclass
class _Run:
    start: int  # first word (index)
    end: int  # one past the last word
    separator: str | None  # shared separator; None for a word standing alone

    @property
    def length(self) -> int:
        return self.end - self.start


def _squeeze(cluster: str, lexicon: Lexicon) -> str:
    """A cluster of one-character words with its spelled-out runs joined (and segmented)."""
    letters = cluster[::2]
    if (
        len(letters) >= _MIN_RUN
        and cluster[1::2] == cluster[1] * (len(letters) - 1)
        and letters.isalnum()  # else a longer separator (`i?!?b`) put one in `letters`
    ):
        # The common case, one run with a one-character separator (`w-e-a-p-o-n-s`).
        return _segment(_fold_run(letters), lexicon)
    return _squeeze_runs(cluster, lexicon)


def _squeeze_runs(cluster: str, lexicon: Lexicon) -> str:
    """`_squeeze` for any cluster: its words grouped into runs by separator."""
    words: list[str] = []
    separators: list[str] = []  # separators[k] precedes words[k]
    position = 0
    for m in _WORD.finditer(cluster):
        separators.append(cluster[position : m.start()])
        words.append(m.group())
        position = m.end()
    runs = _runs(separators)
    out: list[str] = []
    for k, run in enumerate(runs):
        letters = words[run.start : run.end]
        if _squeezable(runs, k):
            out.append(_segment(_fold_run("".join(letters)), lexicon))
        else:
            out.extend(letters)
    return " ".join(out)


def _runs(separators: list[str]) -> list[_Run]:
    """Groups a cluster's one-character words into runs sharing one separator.

    A letter between two differently separated runs joins the longer one, so in `a g.u.n` the
    `g` belongs to `g.u.n` and `a` stays a word of its own.
    """
    groups: list[_Run] = []
    for k in range(1, len(separators)):
        if groups and groups[-1].separator == separators[k]:
            groups[-1].end = k + 1
        else:
            groups.append(_Run(k - 1, k + 1, separators[k]))
    for left, right in pairwise(groups):
        if left.length >= right.length:
            right.start += 1
        else:
            left.end -= 1
    runs: list[_Run] = []
    for group in groups:
        if group.length >= 2:
            runs.append(group)
        else:
            runs.extend(_Run(k, k + 1, None) for k in range(group.start, group.end))
    return runs


def _squeezable(runs: list[_Run], k: int) -> bool:
    """A run of 3+ letters is spelled-out text; so is a pair next to a run spaced the same way."""
    run = runs[k]
    if run.separator is None:
        return False
    if run.length >= _MIN_RUN:
        return True
    neighbours = [runs[j] for j in (k - 1, k + 1) if 0 <= j < len(runs)]
    return any(n.separator == run.separator and n.length >= _MIN_RUN for n in neighbours)


def _segment(joined: str, lexicon: Lexicon) -> str:
    """Splits `joined` into the fewest lexicon words, or returns it unchanged if it cannot."""
    words, longest = lexicon.words, lexicon.longest
    if not words or joined in words or len(joined) > _MAX_SEGMENT:
        return joined
    n = len(joined)
    # count[i]: the fewest words covering joined[:i] (None: cannot); back[i]: where the last
    # starts. Forward from each coverable position only: most joined runs are no words at all.
    count: list[int | None] = [0] + [None] * n
    back = [0] * (n + 1)
    for start in range(n):
        before = count[start]
        if before is None:
            continue
        for end in range(start + 1, min(n, start + longest) + 1):
            if joined[start:end] not in words:
                continue
            current = count[end]
            if current is None or before + 1 < current:
                count[end], back[end] = before + 1, start
    if count[n] is None:
        return joined
    pieces: list[str] = []
    end = n
    while end > 0:
        pieces.append(joined[back[end] : end])
        end = back[end]
    return " ".join(reversed(pieces))
