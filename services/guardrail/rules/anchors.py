"""Static analysis of rule patterns, so the engine can skip regexes that cannot match.

`anchors()` reads a rule's regular expression and returns up to two sets of word prefixes such
that every match contains, for each set, a word starting with one of its prefixes
(`make (?:a )?(?:pipe )?bombs?` needs a word starting with `make` and one starting with `bomb`).
The engine runs a rule on a sentence only when the sentence has all its anchors, so a typical
text runs a handful of regexes instead of two hundred. `first_words()` returns the prefixes one of
which starts every match (the engine then tries the regex only at those words), and
`starts_with_literal()` tells when a pattern searches faster without its leading `\\b`.

The analysis understands the regex subset the rule file uses: literals, `(?:...)` groups with
`|`, quantifiers (`? * + {m,n}`, lazy or not), character classes and escapes, and zero-width
assertions (`\\b ^ $`, lookarounds). Anything else yields no anchors, which is always safe: the
rule then simply runs every time. The results are necessary conditions by construction, and a
test compares the engine against exhaustive evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Prefix length of the keys compared; anchors are cut to it.
KEY_LENGTH = 5
# Frequent words (in English, and in the content this platform receives) make poor anchors:
# choosing them would run the rule on almost every text. Used only to rank; still usable.
_COMMON_WORDS = """
    a an the to of in on at by for and or is are be been was were it its as so no not we you they
    he she i my our your their his her them this that these those with from all any every some can
    may must will would could should shall have has had do does did get gets make makes use uses
    take give work works time times people more most other than then when after before about into
    over only just also new one two out up down off who what which where how why there here each
    such very much many well way year years day days week month life home help support community
    local program programs working workers water health school schools children women family
    families data information price prices money pay paid percent village villages city town group
    groups service services public
"""
_COMMON = frozenset(_COMMON_WORDS.split())


class _Unsupported(Exception):
    pass


@dataclass
class _Node:
    kind: str  # "lit", "any", "zero", "seq", "alt", "rep"
    char: str = ""
    items: list[_Node] = field(default_factory=list)
    low: int = 1


class _Parser:
    """Recursive-descent parser for the rule-file regex subset (see the module docstring)."""

    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0

    def parse(self) -> _Node:
        node = self._alt()
        if self.i != len(self.p):
            raise _Unsupported(self.p[self.i :])
        return node

    def _alt(self) -> _Node:
        branches = [self._seq()]
        while self.i < len(self.p) and self.p[self.i] == "|":
            self.i += 1
            branches.append(self._seq())
        return branches[0] if len(branches) == 1 else _Node("alt", items=branches)

    def _seq(self) -> _Node:
        items: list[_Node] = []
        while self.i < len(self.p) and self.p[self.i] not in "|)":
            atom = self._atom()
            items.append(self._quantified(atom))
        return _Node("seq", items=items)

    def _atom(self) -> _Node:
        c = self.p[self.i]
        if c == "(":
            return self._group()
        if c == "[":
            end = self.p.index("]", self.i + 2)  # `[]...]` never occurs in the rule file
            self.i = end + 1
            return _Node("any")
        if c == "\\":
            esc = self.p[self.i + 1]
            self.i += 2
            if esc in "bBAZ":
                return _Node("zero")
            if esc in "wWdDsS":
                return _Node("any")
            if esc.isalnum():
                raise _Unsupported("\\" + esc)
            return _Node("lit", char=esc)
        self.i += 1
        if c in "^$":
            return _Node("zero")
        if c == ".":
            return _Node("any")
        if c in "*+?{":
            raise _Unsupported(c)
        return _Node("lit", char=c)

    def _group(self) -> _Node:
        rest = self.p[self.i :]
        for prefix, zero in (
            ("(?:", False),
            ("(?=", True),
            ("(?!", True),
            ("(?<=", True),
            ("(?<!", True),
        ):
            if rest.startswith(prefix):
                self.i += len(prefix)
                inner = self._alt()
                if self.i >= len(self.p) or self.p[self.i] != ")":
                    raise _Unsupported("unclosed group")
                self.i += 1
                return _Node("zero") if zero else inner
        raise _Unsupported("capturing or flagged group")

    def _quantified(self, atom: _Node) -> _Node:
        if self.i >= len(self.p):
            return atom
        c = self.p[self.i]
        low: int | None = None
        if c in "?*":
            low, self.i = 0, self.i + 1
        elif c == "+":
            low, self.i = 1, self.i + 1
        elif c == "{":
            end = self.p.index("}", self.i)
            low = int(self.p[self.i + 1 : end].split(",")[0] or 0)
            self.i = end + 1
        if low is None:
            return atom
        if self.i < len(self.p) and self.p[self.i] == "?":
            self.i += 1  # lazy: same language
        return _Node("rep", items=[atom], low=low)


Requirement = frozenset[str]


def _score(req: Requirement) -> tuple[int, int, int]:
    # Higher is better: fewer frequent words first, then the shortest prefix (it decides how
    # often the set is present at all), then fewer alternatives.
    common = sum(w in _COMMON for w in req)
    return -common, min(min(len(w), KEY_LENGTH) for w in req), -len(req)


def _ends_with_space(node: _Node) -> bool:
    if node.kind == "lit":
        return node.char == " "
    if node.kind == "seq":
        real = [n for n in node.items if n.kind != "zero"]
        return bool(real) and _ends_with_space(real[-1])
    if node.kind == "alt":
        return all(_ends_with_space(n) for n in node.items)
    if node.kind == "rep":
        return _ends_with_space(node.items[0])
    return False


def _requirements(node: _Node, at_word_start: bool) -> list[Requirement]:
    """Sets of word prefixes, each of which some word of every match starts with."""
    if node.kind == "alt":
        # A match satisfies one branch, so it satisfies the union of the branches' best sets;
        # likewise for their second-best sets (when every branch has two).
        ranked = [_ranked(_requirements(b, at_word_start)) for b in node.items]
        out: list[Requirement] = []
        for k in (0, 1):
            if all(len(r) > k for r in ranked):
                out.append(frozenset().union(*[r[k] for r in ranked]))
        return out
    if node.kind == "rep":
        return _requirements(node.items[0], at_word_start) if node.low >= 1 else []
    if node.kind != "seq":
        return _requirements(_Node("seq", items=[node]), at_word_start)

    found: list[Requirement] = []
    run = ""
    building = False
    start = at_word_start
    for item in node.items:
        if item.kind == "zero":
            continue
        if item.kind == "lit" and item.char != " " and (building or start):
            run += item.char
            building, start = True, False
            continue
        if building and run:
            found.append(frozenset({run}))
        run, building = "", False
        if item.kind == "lit":
            start = item.char == " "
        elif item.kind == "any":
            start = False
        else:
            found.extend(_requirements(item, start))
            optional = item.kind == "rep" and item.low == 0
            ends = _ends_with_space(item)
            start = (start and ends) if optional else ends
    if building and run:
        found.append(frozenset({run}))
    return found


def _ranked(reqs: list[Requirement]) -> list[Requirement]:
    """Useful sets (no one-letter prefix: it filters nothing), best first, without repeats."""
    return sorted({r for r in reqs if _score(r)[1] >= 2}, key=_score, reverse=True)


def anchors(pattern: str) -> tuple[Requirement, ...]:
    """Up to two anchor sets for `pattern` (prefixes cut to KEY_LENGTH); () when unknown."""
    try:
        tree = _Parser(pattern).parse()
        reqs = _requirements(tree, True)
    except (_Unsupported, ValueError, IndexError):
        return ()
    out: list[Requirement] = []
    for req in _ranked(reqs):
        cut = frozenset(w[:KEY_LENGTH] for w in req)
        if cut not in out:
            out.append(cut)
        if len(out) == 2:
            break
    return tuple(out)


def starts_with_literal(pattern: str) -> bool:
    """Whether every match of `pattern` starts with a plain literal character.

    Python's regex engine then skips ahead to candidate first characters in C while searching,
    which makes a leading `\\b` (forcing a check at every position) the slower choice.
    """
    try:
        node = _Parser(pattern).parse()
    except (_Unsupported, ValueError, IndexError):
        return False
    return _literal_first(node)


def _literal_first(node: _Node) -> bool:
    if node.kind == "lit":
        return node.char.isalnum()
    if node.kind == "alt":
        return all(_literal_first(b) for b in node.items)
    if node.kind == "seq":
        real = [n for n in node.items if n.kind != "zero"]  # the leading \b is dropped anyway
        return bool(real) and _literal_first(real[0])
    return False


def first_words(pattern: str) -> Requirement | None:
    """Prefixes one of which starts every match (cut to KEY_LENGTH), or None when unknown.

    The engine then tries the regex only at words with such a prefix instead of searching.
    """
    try:
        node = _Parser(pattern).parse()
    except (_Unsupported, ValueError, IndexError):
        return None
    first = _first(node)
    if not first or any(len(w) < 2 for w in first):
        return None
    return frozenset(w[:KEY_LENGTH] for w in first)


def _first(node: _Node) -> frozenset[str] | None:
    if node.kind == "alt":
        branches = [_first(b) for b in node.items]
        if any(b is None for b in branches):
            return None
        return frozenset().union(*[b for b in branches if b is not None])
    if node.kind == "rep":
        return _first(node.items[0]) if node.low >= 1 else None
    if node.kind == "lit":
        return frozenset({node.char}) if node.char.isalnum() else None
    if node.kind != "seq":
        return None
    items = [n for n in node.items if n.kind != "zero"]
    run = ""
    for item in items:
        if item.kind == "lit" and item.char.isalnum():
            run += item.char
            continue
        break
    if run:
        return frozenset({run})
    return _first(items[0]) if items else None
