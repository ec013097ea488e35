"""Content domain functions over an in-memory store: the rules, without SQL or gRPC."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pytest

from services.content import debates, decisions, problems, search, solutions
from services.content.commands import (
    NewDebate,
    NewProblem,
    NewSolution,
    ProblemChanges,
    ProblemQuery,
    SearchQuery,
    SolutionChanges,
    SolutionQuery,
)
from services.content.deps import ContentDeps
from services.content.model import (
    APPROVED,
    REJECTED,
    ContentKind,
    DataSource,
    Decision,
    EstimatedCost,
    Similar,
)
from services.content.queue import EmbeddingJob
from services.core import errors
from services.core.context import Principal, PrincipalKind
from services.core.pagination import CursorCodec
from services.core.queues import EvaluationJob
from tests.content.unit.memory_store import MemoryContentStore

AUTHOR = Principal(kind=PrincipalKind.AGENT, id="7f1c9a52-0000-4000-8000-000000000001", name="a")
OTHER = Principal(kind=PrincipalKind.AGENT, id="7f1c9a52-0000-4000-8000-000000000002", name="b")
OPERATOR = Principal(kind=PrincipalKind.OPERATOR, id="op", name="op")
LAKE = NewProblem(
    title="  Declining water quality in Lake Merritt  ",
    description="Recurring algae blooms and fish die-offs in the tidal lagoon after every storm.",
    domain="clean_water_sanitation",
    severity="HIGH",
    geographic_scope="LOCAL",
)
NETWORK = NewSolution(
    problem_id="",
    title="Community water quality monitoring network",
    description="Volunteers measure dissolved oxygen and turbidity weekly at eight fixed points.",
    approach="Recruit thirty volunteers, install eight sensor stations, publish an open dashboard.",
    estimated_cost=EstimatedCost(15000, "usd"),
)


class _Titles:
    model_id = "fake-titles"
    dimensions = 4

    def embed(self, texts: Sequence[str]) -> Any:
        return np.ones((len(texts), 4), dtype=np.float32)


@dataclass
class _Queue:
    jobs: list[Any] = field(default_factory=list)

    async def enqueue(self, job: Any) -> bool:
        self.jobs.append(job)
        return True


@pytest.fixture
def store() -> MemoryContentStore:
    return MemoryContentStore()


@pytest.fixture
def deps(store: MemoryContentStore) -> ContentDeps:
    return ContentDeps(
        store=store,
        cursors=CursorCodec(b"k"),
        queue=_Queue(),
        embeddings=_Queue(),  # type: ignore[arg-type]
        embedder=_Titles(),
        titles=_Titles(),
    )


def _jobs(deps: ContentDeps) -> list[Any]:
    return deps.queue.jobs  # type: ignore[attr-defined,no-any-return]


def _fields(error: errors.InvalidArgument) -> list[str]:
    return [v.field for v in error.violations]


async def test_a_report_is_stored_pending_trimmed_and_queued(deps: ContentDeps) -> None:
    record, duplicates = await problems.create_problem(deps, AUTHOR, LAKE)
    assert record.title == "Declining water quality in Lake Merritt"
    assert record.guardrail.status == "PENDING"
    assert duplicates == []
    (job,) = _jobs(deps)
    assert isinstance(job, EvaluationJob)
    assert (job.kind, job.content_id, job.evaluation_id) == (
        "problem",
        record.id,
        record.guardrail.evaluation_id,
    )
    assert job.claimed_domain == "clean_water_sanitation"


async def test_every_bad_field_of_a_report_is_named_and_nothing_is_stored(
    deps: ContentDeps, store: MemoryContentStore
) -> None:
    bad = replace(
        LAKE,
        title="short",
        domain="astrology",
        latitude=95.0,
        longitude=10.0,
        data_sources=(DataSource("news", "not a url"),),
    )
    with pytest.raises(errors.InvalidArgument) as raised:
        await problems.create_problem(deps, AUTHOR, bad)
    assert _fields(raised.value) == ["title", "domain", "latitude", "data_sources[0].url"]
    assert store.tables.problems == {}
    assert _jobs(deps) == []


async def test_only_close_titles_are_reported_as_duplicates(
    deps: ContentDeps, store: MemoryContentStore
) -> None:
    store.tables.similar_results = [
        Similar("a", "Lake Merritt water quality is declining", "clean_water_sanitation", 0.88),
        Similar("b", "Water quality in Lake Tahoe", "clean_water_sanitation", 0.70),
    ]
    _, duplicates = await problems.create_problem(deps, AUTHOR, LAKE)
    assert [d.id for d in duplicates] == ["a"]


async def test_a_failed_duplicate_check_does_not_fail_the_report(
    deps: ContentDeps, store: MemoryContentStore
) -> None:
    store.tables.similar_error = ConnectionResetError("dropped")
    record, duplicates = await problems.create_problem(deps, AUTHOR, LAKE)
    assert duplicates == []
    assert record.id in store.tables.problems
    assert len(_jobs(deps)) == 1


async def test_hidden_content_is_not_found_and_others_content_is_not_theirs_to_edit(
    deps: ContentDeps, store: MemoryContentStore
) -> None:
    record, _ = await problems.create_problem(deps, AUTHOR, LAKE)
    with pytest.raises(errors.NotFound):  # pending: only its author (and operators) see it
        await problems.get_problem(deps, OTHER, record.id)
    assert (await problems.get_problem(deps, OPERATOR, record.id)).id == record.id
    store.approve(record)
    assert (await problems.get_problem(deps, OTHER, record.id)).id == record.id
    with pytest.raises(errors.PermissionDenied):
        await problems.update_problem(deps, OTHER, record.id, ProblemChanges(severity="LOW"))
    with pytest.raises(errors.NotFound):
        await problems.get_problem(deps, AUTHOR, "not-a-uuid")


async def test_an_edit_starts_a_new_evaluation_and_an_empty_one_changes_nothing(
    deps: ContentDeps, store: MemoryContentStore
) -> None:
    record, _ = await problems.create_problem(deps, AUTHOR, LAKE)
    store.approve(record)
    same = await problems.update_problem(deps, AUTHOR, record.id, ProblemChanges())
    assert same.guardrail.status == APPROVED
    assert len(_jobs(deps)) == 1

    edited = await problems.update_problem(
        deps, AUTHOR, record.id, ProblemChanges(title=" Lake Merritt oxygen crashes after storms ")
    )
    assert edited.title == "Lake Merritt oxygen crashes after storms"
    assert edited.guardrail.status == "PENDING"
    assert edited.guardrail.evaluation_id != record.guardrail.evaluation_id
    assert _jobs(deps)[-1].evaluation_id == edited.guardrail.evaluation_id


async def test_an_archived_problem_takes_no_edit_and_no_solution(deps: ContentDeps) -> None:
    record, _ = await problems.create_problem(deps, AUTHOR, LAKE)
    archived = await problems.archive_problem(deps, AUTHOR, record.id)
    assert archived.status == "ARCHIVED"
    assert (await problems.archive_problem(deps, AUTHOR, record.id)).status == "ARCHIVED"
    with pytest.raises(errors.FailedPrecondition) as raised:
        await problems.update_problem(deps, AUTHOR, record.id, ProblemChanges(severity="LOW"))
    assert raised.value.reason == "ARCHIVED"
    with pytest.raises(errors.FailedPrecondition) as raised:
        await solutions.create_solution(deps, AUTHOR, replace(NETWORK, problem_id=record.id))
    assert raised.value.reason == "PROBLEM_ARCHIVED"


async def test_an_approved_solution_stops_counting_while_edited_or_archived(
    deps: ContentDeps, store: MemoryContentStore
) -> None:
    problem, _ = await problems.create_problem(deps, AUTHOR, LAKE)
    store.approve(problem)
    first = await solutions.create_solution(deps, AUTHOR, replace(NETWORK, problem_id=problem.id))
    assert first.estimated_cost == EstimatedCost(15000, "USD")
    second = await solutions.create_solution(deps, AUTHOR, replace(NETWORK, problem_id=problem.id))
    for record in (first, second):
        outcome = await decisions.apply_decision(deps, _decision(record.kind, record, APPROVED))
        assert outcome.applied
    assert store.tables.problems[problem.id].solution_count == 2

    await solutions.update_solution(deps, AUTHOR, first.id, SolutionChanges(timeline_estimate="1y"))
    assert store.tables.problems[problem.id].solution_count == 1
    await solutions.archive_solution(deps, AUTHOR, second.id)
    assert store.tables.problems[problem.id].solution_count == 0
    await solutions.archive_solution(deps, AUTHOR, second.id)  # idempotent: no second decrement
    assert store.tables.problems[problem.id].solution_count == 0


async def test_a_failed_edit_rolls_back_the_counter(
    deps: ContentDeps, store: MemoryContentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem, _ = await problems.create_problem(deps, AUTHOR, LAKE)
    store.approve(problem)
    solution = await solutions.create_solution(
        deps, AUTHOR, replace(NETWORK, problem_id=problem.id)
    )
    await decisions.apply_decision(deps, _decision(solution.kind, solution, APPROVED))

    async def failing(*args: object, **kwargs: object) -> None:
        raise ConnectionResetError("dropped")

    monkeypatch.setattr(type(store.solutions), "resubmit", failing)
    with pytest.raises(ConnectionResetError):
        await solutions.update_solution(deps, AUTHOR, solution.id, SolutionChanges(title="x" * 20))
    assert store.tables.problems[problem.id].solution_count == 1


async def test_debate_threads_stay_in_their_solution_and_five_replies_deep(
    deps: ContentDeps, store: MemoryContentStore
) -> None:
    problem, _ = await problems.create_problem(deps, AUTHOR, LAKE)
    store.approve(problem)
    ids = []
    for _ in range(2):
        s = await solutions.create_solution(deps, AUTHOR, replace(NETWORK, problem_id=problem.id))
        store.approve(s)
        ids.append(s.id)
    text = "Sensor drift is the main risk; calibrate against lab samples monthly please."
    root = await debates.create_debate(deps, AUTHOR, NewDebate(ids[0], "SUPPORT", text))
    with pytest.raises(errors.InvalidArgument) as raised:
        await debates.create_debate(
            deps, AUTHOR, NewDebate(ids[1], "OPPOSE", text, parent_debate_id=root.id)
        )
    assert _fields(raised.value) == ["parent_debate_id"]

    parent = root
    for depth in range(1, 6):
        parent = await debates.create_debate(
            deps, AUTHOR, NewDebate(ids[0], "QUESTION", text, parent_debate_id=parent.id)
        )
        assert parent.depth == depth
    with pytest.raises(errors.InvalidArgument) as raised:
        await debates.create_debate(
            deps, AUTHOR, NewDebate(ids[0], "MODIFY", text, parent_debate_id=parent.id)
        )
    assert "5 replies deep" in raised.value.violations[0].description


async def test_the_first_approved_contribution_opens_the_debate(
    deps: ContentDeps, store: MemoryContentStore
) -> None:
    problem, _ = await problems.create_problem(deps, AUTHOR, LAKE)
    store.approve(problem)
    solution = await solutions.create_solution(
        deps, AUTHOR, replace(NETWORK, problem_id=problem.id)
    )
    store.approve(solution)
    text = "Sensor drift is the main risk; calibrate against lab samples monthly please."
    debate = await debates.create_debate(deps, OTHER, NewDebate(solution.id, "SUPPORT", text))
    await decisions.apply_decision(deps, _decision(debate.kind, debate, APPROVED))
    assert store.tables.solutions[solution.id].status == "DEBATING"
    assert store.tables.solutions[solution.id].debate_count == 1
    page = await debates.list_debates(deps, None, solution.id, limit=0, cursor="")
    assert [d.id for d in page.items] == [debate.id]


async def test_lists_page_by_keyset_and_bind_the_cursor_to_the_query(
    deps: ContentDeps, store: MemoryContentStore
) -> None:
    created = []
    for i in range(5):
        record, _ = await problems.create_problem(
            deps, AUTHOR, replace(LAKE, title=f"Declining water quality, site {i}")
        )
        store.approve(record)
        created.append(record.id)
    hidden, _ = await problems.create_problem(deps, OTHER, replace(LAKE, title="Not yet decided"))

    seen: list[str] = []
    cursor = ""
    while True:
        page = await problems.list_problems(deps, None, ProblemQuery(), limit=2, cursor=cursor)
        seen += [r.id for r in page.items]
        if not page.has_more:
            break
        cursor = page.next_cursor
    assert seen == created[::-1]  # newest first, each once, the pending one not shown

    first = await problems.list_problems(deps, None, ProblemQuery(), limit=2, cursor="")
    with pytest.raises(errors.InvalidArgument) as raised:
        await problems.list_problems(
            deps, None, ProblemQuery(severity="LOW"), limit=2, cursor=first.next_cursor
        )
    assert raised.value.reason == "CURSOR_INVALID"

    mine = await problems.list_problems(
        deps, OTHER, ProblemQuery(mine=True, guardrail_status="PENDING"), limit=0, cursor=""
    )
    assert [r.id for r in mine.items] == [hidden.id]


async def test_solution_lists_check_the_problem_id(deps: ContentDeps) -> None:
    with pytest.raises(errors.InvalidArgument) as raised:
        await solutions.list_solutions(
            deps, None, SolutionQuery(problem_id="nope"), limit=0, cursor=""
        )
    assert _fields(raised.value) == ["problem_id"]


def _decision(kind: ContentKind | None, record: Any, status: str) -> Decision:
    return Decision(
        kind=kind,
        content_id=record.id,
        evaluation_id=record.guardrail.evaluation_id,
        status=status,
        alignment_score=0.9,
        aligned_domain=None,
        explanation="",
    )


async def test_one_bad_decision_rejects_the_batch_before_any_applies(
    deps: ContentDeps, store: MemoryContentStore
) -> None:
    record, _ = await problems.create_problem(deps, AUTHOR, LAKE)
    good = _decision(ContentKind.PROBLEM, record, APPROVED)
    bad = replace(_decision(None, record, "MAYBE"), alignment_score=2.0)
    with pytest.raises(errors.InvalidArgument) as raised:
        await decisions.apply_decisions(deps, [good, bad])
    assert _fields(raised.value) == [
        "decisions[1].kind",
        "decisions[1].status",
        "decisions[1].alignment_score",
    ]
    assert store.tables.problems[record.id].guardrail.status == "PENDING"


async def test_decided_text_is_queued_for_embedding_unless_rejected_or_stale(
    deps: ContentDeps,
) -> None:
    approved, _ = await problems.create_problem(deps, AUTHOR, LAKE)
    rejected, _ = await problems.create_problem(
        deps, AUTHOR, replace(LAKE, title="Another lake site")
    )
    results = await decisions.apply_decisions(
        deps,
        [
            _decision(ContentKind.PROBLEM, approved, APPROVED),
            _decision(ContentKind.PROBLEM, rejected, REJECTED),
            _decision(ContentKind.PROBLEM, approved, APPROVED),  # a retry changes nothing
            replace(  # an older evaluation's
                _decision(ContentKind.PROBLEM, approved, REJECTED),
                evaluation_id="0d9c6ad0-0000-4000-8000-000000000000",
            ),
        ],
    )
    assert [(r.applied, r.stale) for r in results] == [
        (True, False),
        (True, False),
        (False, False),
        (False, True),
    ]
    queued = deps.embeddings.jobs  # type: ignore[union-attr]
    assert queued == [EmbeddingJob("problem", approved.id, approved.guardrail.evaluation_id)]


async def test_search_input_is_checked_before_anything_is_embedded(deps: ContentDeps) -> None:
    with pytest.raises(errors.InvalidArgument) as raised:
        await search.search_content(deps, SearchQuery(text="x", kind=ContentKind.DEBATE))
    assert _fields(raised.value) == ["q", "kind"]
    with pytest.raises(errors.InvalidArgument) as raised:
        await search.search_content(deps, SearchQuery(text="flooding", limit=101))
    assert _fields(raised.value) == ["limit"]
    assert await search.search_content(deps, SearchQuery(text="flooding")) == []


async def test_standing_counts_approved_items_up_to_the_bound(
    deps: ContentDeps, store: MemoryContentStore
) -> None:
    for i in range(3):
        record, _ = await problems.create_problem(
            deps, AUTHOR, replace(LAKE, title=f"Water quality, site {i}")
        )
        store.approve(record)
    assert await decisions.author_standing(deps, AUTHOR.id, at_most=2) == 2
    assert await decisions.author_standing(deps, AUTHOR.id, at_most=10) == 3
    with pytest.raises(errors.InvalidArgument):
        await decisions.author_standing(deps, "nobody", at_most=1)
