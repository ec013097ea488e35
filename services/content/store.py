"""The door between the content domain and its data: one store per aggregate, typed.

Domain functions talk to these protocols only; `services/content/sql/` implements them over
PostgreSQL and the unit tests over memory. Records are frozen; ids cross as strings (the
domain's currency) and a malformed one simply finds nothing.

Outside a transaction every call commits on its own. `ContentStore.transaction()` yields the
same stores bound to one transaction: what the domain does inside commits or rolls back
together, and `lock=True` reads hold their row until it ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

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
    ContentKind,
    ContentRecord,
    DebateRecord,
    Decision,
    EmbeddingSource,
    Outcome,
    ProblemRecord,
    SearchHit,
    Similar,
    SolutionRecord,
    TitleSource,
)

Key = list[Any]
"""A keyset cursor's sort key as JSON values (see each `page`)."""


class ProblemStore(Protocol):
    """Problems."""

    async def insert(
        self,
        new: NewProblem,
        *,
        author_id: str,
        evaluation_id: str,
        title_vector: list[float],
        title_model: str,
    ) -> ProblemRecord:
        """Stores a validated report PENDING under `evaluation_id`."""
        ...

    async def get(self, problem_id: str, *, lock: bool = False) -> ProblemRecord | None:
        """One problem (locked until the transaction ends with `lock`), or None."""
        ...

    async def resubmit(
        self,
        problem_id: str,
        changes: ProblemChanges,
        *,
        evaluation_id: str,
        title_vector: tuple[list[float], str] | None,
    ) -> ProblemRecord:
        """Applies the changes and puts the problem back to PENDING under a new evaluation;
        a new text drops the search vector (the worker computes the new one), a new title
        comes with its vector and model."""
        ...

    async def archive(self, problem_id: str) -> ProblemRecord:
        """Marks it ARCHIVED."""
        ...

    async def count_solutions(self, problem_id: str, delta: int) -> None:
        """Moves the count of its approved solutions."""
        ...

    async def page(
        self, query: ProblemQuery, *, author_id: str | None, after: Key | None, count: int
    ) -> list[ProblemRecord]:
        """Up to `count` problems after the key, newest (or most upvoted, most solved) first.

        The key is `[lead, created_at ISO, id]`, with lead the upvotes or solution count when
        sorted by them. `author_id`: only that author's, in any guardrail state (or the
        query's); None: approved ones only.
        """
        ...

    async def similar(
        self, vector: list[float], *, exclude: str | None, limit: int, by_title: bool = False
    ) -> list[Similar]:
        """Approved, active problems nearest to `vector` in the search space (or titles')."""
        ...

    async def search_vector(self, problem_id: str) -> list[float] | None:
        """A problem's search vector, or None while it has none."""
        ...


class SolutionStore(Protocol):
    """Solutions."""

    async def insert(
        self, new: NewSolution, *, author_id: str, evaluation_id: str
    ) -> SolutionRecord:
        """Stores a validated proposal PENDING under `evaluation_id`."""
        ...

    async def get(self, solution_id: str, *, lock: bool = False) -> SolutionRecord | None:
        """One solution (locked until the transaction ends with `lock`), or None."""
        ...

    async def resubmit(
        self, solution_id: str, changes: SolutionChanges, *, evaluation_id: str
    ) -> SolutionRecord:
        """Applies the changes and puts the solution back to PENDING under a new evaluation
        (a new text drops the search vector)."""
        ...

    async def archive(self, solution_id: str) -> SolutionRecord:
        """Marks it ARCHIVED."""
        ...

    async def count_debates(self, solution_id: str, delta: int) -> None:
        """Moves the count of its approved contributions; the first moves a PROPOSED
        solution to DEBATING."""
        ...

    async def page(
        self, query: SolutionQuery, *, author_id: str | None, after: Key | None, count: int
    ) -> list[SolutionRecord]:
        """Up to `count` solutions after the key, newest (or best scored) first; the key is
        `[composite score (by score only), created_at ISO, id]`. `author_id` as for problems."""
        ...


class DebateStore(Protocol):
    """Debate contributions."""

    async def insert(
        self,
        new: NewDebate,
        *,
        author_id: str,
        parent_id: str | None,
        depth: int,
        evaluation_id: str,
    ) -> DebateRecord:
        """Stores a validated contribution PENDING under `evaluation_id`."""
        ...

    async def get(self, debate_id: str) -> DebateRecord | None:
        """One contribution, or None."""
        ...

    async def page(self, solution_id: str, *, after: Key | None, count: int) -> list[DebateRecord]:
        """Up to `count` approved contributions after the key `[created_at ISO, id]`, oldest
        first."""
        ...


class ModerationStore(Protocol):
    """Guardrail state across the three kinds."""

    async def apply(self, decision: Decision) -> Outcome:
        """Records a valid decision when it is for the item's current evaluation and the item
        is undecided or FLAGGED; parents' counters follow in the same transaction."""
        ...

    async def pending_since(
        self, kind: ContentKind, before: datetime, *, limit: int
    ) -> Sequence[ContentRecord]:
        """Items still PENDING, last changed before `before`, oldest first."""
        ...

    async def approved_items(self, author_id: str, *, at_most: int) -> int:
        """The author's approved problems, solutions and debates, counted up to `at_most`."""
        ...


class EmbeddingStore(Protocol):
    """Search vectors of problems and solutions, and problem title vectors."""

    async def sources(
        self,
        kind: ContentKind,
        *,
        model: str,
        content_id: str | None = None,
        after: str | None = None,
        changed_before: datetime | None = None,
        limit: int = 1,
    ) -> list[EmbeddingSource]:
        """Unrejected items with no search vector or one from another model, by id after
        `after`, unchanged since `changed_before`."""
        ...

    async def store(
        self, kind: ContentKind, source: EmbeddingSource, vector: list[float], model: str
    ) -> bool:
        """Stores a search vector unless the item's text changed since it was read."""
        ...

    async def title_sources(
        self,
        *,
        model: str,
        after: str | None = None,
        changed_before: datetime | None = None,
        limit: int = 1,
    ) -> list[TitleSource]:
        """Problems whose title vector is missing or from another model."""
        ...

    async def store_title(self, source: TitleSource, vector: list[float], model: str) -> bool:
        """Stores a title vector unless the title changed since it was read."""
        ...


class SearchStore(Protocol):
    """Semantic search."""

    async def nearest(
        self,
        vector: list[float],
        *,
        kinds: Sequence[ContentKind],
        domain: str | None,
        limit: int,
    ) -> list[SearchHit]:
        """Approved, live problems and solutions nearest to `vector`, best first."""
        ...


class ContentStore(Protocol):
    """Every content store, and transactions over them."""

    @property
    def problems(self) -> ProblemStore: ...

    @property
    def solutions(self) -> SolutionStore: ...

    @property
    def debates(self) -> DebateStore: ...

    @property
    def moderation(self) -> ModerationStore: ...

    @property
    def embeddings(self) -> EmbeddingStore: ...

    @property
    def search(self) -> SearchStore: ...

    def transaction(self) -> AbstractAsyncContextManager[ContentStore]:
        """The stores bound to one transaction (committed when the block ends normally)."""
        ...
