"""An in-memory ContentStore for the content domain's unit tests.

It keeps the contract of `services/content/store.py` (records, filters, keyset order,
transactions that roll back on error) without SQL, so domain rules can be tested alone.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.content.commands import (
    NewDebate,
    NewProblem,
    NewSolution,
    ProblemChanges,
    ProblemQuery,
    SolutionChanges,
    SolutionQuery,
)
from services.content.model import (
    APPROVED,
    ARCHIVED,
    PENDING,
    ContentKind,
    ContentRecord,
    DebateRecord,
    Decision,
    EmbeddingSource,
    Guardrail,
    Outcome,
    ProblemRecord,
    SearchHit,
    Similar,
    SolutionRecord,
    TitleSource,
)

EPOCH = datetime(2026, 12, 1, tzinfo=UTC)


def _pending(evaluation_id: str) -> Guardrail:
    return Guardrail(PENDING, evaluation_id, None, None, "")


@dataclass
class _Tables:
    problems: dict[str, ProblemRecord] = field(default_factory=dict)
    solutions: dict[str, SolutionRecord] = field(default_factory=dict)
    debates: dict[str, DebateRecord] = field(default_factory=dict)
    ticks: int = 0
    similar_error: Exception | None = None
    """Raised by ProblemStore.similar when set (a dropped connection, say)."""
    similar_results: list[Similar] = field(default_factory=list)

    def now(self) -> datetime:
        # Strictly increasing, so "newest first" is well defined.
        self.ticks += 1
        return EPOCH + timedelta(seconds=self.ticks)


class _Problems:
    def __init__(self, t: _Tables) -> None:
        self._t = t

    async def insert(
        self,
        new: NewProblem,
        *,
        author_id: str,
        evaluation_id: str,
        title_vector: list[float],
        title_model: str,
    ) -> ProblemRecord:
        now = self._t.now()
        record = ProblemRecord(
            **{k: v for k, v in asdict(new).items() if k not in ("data_sources", "self_audit")},
            data_sources=new.data_sources,
            self_audit=new.self_audit,
            id=str(uuid.uuid4()),
            author_agent_id=author_id,
            status="ACTIVE",
            upvotes=0,
            solution_count=0,
            guardrail=_pending(evaluation_id),
            created_at=now,
            updated_at=now,
        )
        self._t.problems[record.id] = record
        return record

    async def get(self, problem_id: str, *, lock: bool = False) -> ProblemRecord | None:
        return self._t.problems.get(problem_id)

    async def resubmit(
        self,
        problem_id: str,
        changes: ProblemChanges,
        *,
        evaluation_id: str,
        title_vector: tuple[list[float], str] | None,
    ) -> ProblemRecord:
        record = replace(
            self._t.problems[problem_id],
            **changes.sent(),  # type: ignore[arg-type]
            guardrail=_pending(evaluation_id),
            updated_at=self._t.now(),
        )
        self._t.problems[problem_id] = record
        return record

    async def archive(self, problem_id: str) -> ProblemRecord:
        record = replace(self._t.problems[problem_id], status=ARCHIVED, updated_at=self._t.now())
        self._t.problems[problem_id] = record
        return record

    async def count_solutions(self, problem_id: str, delta: int) -> None:
        record = self._t.problems[problem_id]
        self._t.problems[problem_id] = replace(record, solution_count=record.solution_count + delta)

    async def page(
        self, query: ProblemQuery, *, author_id: str | None, after: list[Any] | None, count: int
    ) -> list[ProblemRecord]:
        def visible(r: ProblemRecord) -> bool:
            if r.status != query.status:
                return False
            if author_id is not None:
                mine = r.author_agent_id == author_id
                return mine and query.guardrail_status in (None, r.guardrail.status)
            return r.guardrail.status == APPROVED

        def key(r: ProblemRecord) -> list[Any]:
            lead = {"upvotes": [r.upvotes], "solutions": [r.solution_count]}.get(query.sort, [])
            return [*lead, r.created_at.isoformat(), r.id]

        found = [
            r
            for r in self._t.problems.values()
            if visible(r)
            and (query.domain is None or r.domain == query.domain)
            and (query.severity is None or r.severity == query.severity)
        ]
        return _descending(found, key, after, count)

    async def similar(
        self, vector: list[float], *, exclude: str | None, limit: int, by_title: bool = False
    ) -> list[Similar]:
        if self._t.similar_error is not None:
            raise self._t.similar_error
        return [s for s in self._t.similar_results if s.id != exclude][:limit]

    async def search_vector(self, problem_id: str) -> list[float] | None:
        return None


class _Solutions:
    def __init__(self, t: _Tables) -> None:
        self._t = t

    async def insert(
        self, new: NewSolution, *, author_id: str, evaluation_id: str
    ) -> SolutionRecord:
        now = self._t.now()
        record = SolutionRecord(
            id=str(uuid.uuid4()),
            problem_id=new.problem_id,
            author_agent_id=author_id,
            title=new.title,
            description=new.description,
            approach=new.approach,
            expected_impact=new.expected_impact,
            estimated_cost=new.estimated_cost,
            risks_and_mitigations=new.risks_and_mitigations,
            required_skills=new.required_skills,
            required_locations=new.required_locations,
            timeline_estimate=new.timeline_estimate,
            status="PROPOSED",
            scores=None,
            debate_count=0,
            upvotes=0,
            guardrail=_pending(evaluation_id),
            created_at=now,
            updated_at=now,
        )
        self._t.solutions[record.id] = record
        return record

    async def get(self, solution_id: str, *, lock: bool = False) -> SolutionRecord | None:
        return self._t.solutions.get(solution_id)

    async def resubmit(
        self, solution_id: str, changes: SolutionChanges, *, evaluation_id: str
    ) -> SolutionRecord:
        record = replace(
            self._t.solutions[solution_id],
            **changes.sent(),  # type: ignore[arg-type]
            guardrail=_pending(evaluation_id),
            updated_at=self._t.now(),
        )
        self._t.solutions[solution_id] = record
        return record

    async def archive(self, solution_id: str) -> SolutionRecord:
        record = replace(self._t.solutions[solution_id], status=ARCHIVED, updated_at=self._t.now())
        self._t.solutions[solution_id] = record
        return record

    async def count_debates(self, solution_id: str, delta: int) -> None:
        record = self._t.solutions[solution_id]
        status = "DEBATING" if delta > 0 and record.status == "PROPOSED" else record.status
        self._t.solutions[solution_id] = replace(
            record, debate_count=record.debate_count + delta, status=status
        )

    async def page(
        self, query: SolutionQuery, *, author_id: str | None, after: list[Any] | None, count: int
    ) -> list[SolutionRecord]:
        def visible(r: SolutionRecord) -> bool:
            if query.problem_id and r.problem_id != query.problem_id:
                return False
            if (r.status != query.status) if query.status else r.status == ARCHIVED:
                return False
            if query.by_score and r.scores is None:
                return False
            if author_id is not None:
                return r.author_agent_id == author_id
            return r.guardrail.status == APPROVED

        def key(r: SolutionRecord) -> list[Any]:
            lead = [r.scores.composite] if query.by_score and r.scores else []
            return [*lead, r.created_at.isoformat(), r.id]

        found = [r for r in self._t.solutions.values() if visible(r)]
        return _descending(found, key, after, count)


class _Debates:
    def __init__(self, t: _Tables) -> None:
        self._t = t

    async def insert(
        self,
        new: NewDebate,
        *,
        author_id: str,
        parent_id: str | None,
        depth: int,
        evaluation_id: str,
    ) -> DebateRecord:
        record = DebateRecord(
            id=str(uuid.uuid4()),
            solution_id=new.solution_id,
            author_agent_id=author_id,
            parent_debate_id=parent_id,
            stance=new.stance,
            content=new.content,
            evidence_links=new.evidence_links,
            depth=depth,
            upvotes=0,
            guardrail=_pending(evaluation_id),
            created_at=self._t.now(),
        )
        self._t.debates[record.id] = record
        return record

    async def get(self, debate_id: str) -> DebateRecord | None:
        return self._t.debates.get(debate_id)

    async def page(
        self, solution_id: str, *, after: list[Any] | None, count: int
    ) -> list[DebateRecord]:
        found = sorted(
            (
                r
                for r in self._t.debates.values()
                if r.solution_id == solution_id and r.guardrail.status == APPROVED
            ),
            key=lambda r: (r.created_at.isoformat(), r.id),
        )
        if after is not None:
            found = [r for r in found if [r.created_at.isoformat(), r.id] > after]
        return found[:count]


class _Moderation:
    def __init__(self, t: _Tables) -> None:
        self._t = t

    def _table(self, kind: ContentKind) -> dict[str, Any]:
        return {
            ContentKind.PROBLEM: self._t.problems,
            ContentKind.SOLUTION: self._t.solutions,
            ContentKind.DEBATE: self._t.debates,
        }[kind]

    async def apply(self, decision: Decision) -> Outcome:
        assert decision.kind is not None
        table = self._table(decision.kind)
        record = table.get(decision.content_id)
        if record is None or record.guardrail.evaluation_id != decision.evaluation_id:
            return Outcome(applied=False, stale=True)
        was = record.guardrail.status
        if was not in (PENDING, "FLAGGED") or was == decision.status:
            return Outcome(applied=False, stale=False)
        guardrail = replace(
            record.guardrail,
            status=decision.status,
            alignment_score=decision.alignment_score,
            aligned_domain=decision.aligned_domain,
            explanation=decision.explanation,
        )
        table[decision.content_id] = replace(record, guardrail=guardrail)
        delta = int(decision.status == APPROVED) - int(was == APPROVED)
        if delta and isinstance(record, SolutionRecord):
            await _Problems(self._t).count_solutions(record.problem_id, delta)
        if delta and isinstance(record, DebateRecord):
            await _Solutions(self._t).count_debates(record.solution_id, delta)
        return Outcome(applied=True, stale=False)

    async def pending_since(
        self, kind: ContentKind, before: datetime, *, limit: int
    ) -> Sequence[ContentRecord]:
        records = self._table(kind).values()
        return [r for r in records if r.guardrail.status == PENDING][:limit]

    async def approved_items(self, author_id: str, *, at_most: int) -> int:
        records = [
            *self._t.problems.values(),
            *self._t.solutions.values(),
            *self._t.debates.values(),
        ]
        approved = [
            r for r in records if r.author_agent_id == author_id and r.guardrail.status == APPROVED
        ]
        return min(len(approved), max(at_most, 0))


class _Embeddings:
    async def sources(self, kind: ContentKind, **options: Any) -> list[EmbeddingSource]:
        return []

    async def store(
        self, kind: ContentKind, source: EmbeddingSource, vector: list[float], model: str
    ) -> bool:
        return False

    async def title_sources(self, **options: Any) -> list[TitleSource]:
        return []

    async def store_title(self, source: TitleSource, vector: list[float], model: str) -> bool:
        return False


class _Search:
    async def nearest(
        self, vector: list[float], *, kinds: Sequence[ContentKind], domain: str | None, limit: int
    ) -> list[SearchHit]:
        return []


class MemoryContentStore:
    """ContentStore in memory; `tables` is open to tests that arrange or inspect state."""

    def __init__(self, tables: _Tables | None = None) -> None:
        self.tables = tables or _Tables()
        self.problems = _Problems(self.tables)
        self.solutions = _Solutions(self.tables)
        self.debates = _Debates(self.tables)
        self.moderation = _Moderation(self.tables)
        self.embeddings = _Embeddings()
        self.search = _Search()
        self.transactions = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryContentStore]:
        """Rolls every table back when the block raises."""
        saved = (dict(self.tables.problems), dict(self.tables.solutions), dict(self.tables.debates))
        self.transactions += 1
        try:
            yield self
        except BaseException:
            self.tables.problems, self.tables.solutions, self.tables.debates = saved
            raise

    def approve(self, record: ContentRecord) -> None:
        """Marks an item approved (as a guardrail decision would), counters untouched."""
        table = self.moderation._table(record.kind)
        current = table[record.id]
        table[record.id] = replace(current, guardrail=replace(current.guardrail, status=APPROVED))


def _descending(records: list[Any], key: Any, after: list[Any] | None, count: int) -> list[Any]:
    ordered = sorted(records, key=key, reverse=True)
    if after is not None:
        ordered = [r for r in ordered if key(r) < after]
    return ordered[:count]
