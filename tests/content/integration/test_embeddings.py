"""Search vectors: the worker computes them, edits drop them, the backfill repairs the rest."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid
from datetime import timedelta
from typing import Any

import pgvector
import pytest
from betterworld.common.v1 import common_pb2
from betterworld.content.v1 import content_pb2 as pb
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql

from services.content.embedding import backfill, embed_item
from services.content.jobs import EmbeddingWorker
from services.content.model import ContentKind, TitleSource
from services.content.queue import EmbeddingJob, EmbeddingQueue
from services.content.service import build_deps
from services.content.sql.problems import similar_query
from services.content.sql.search import nearest_query
from services.content.tables import problems, solutions
from services.core.embeddings import build_provider
from services.core.embeddings.provider import EmbeddingError
from services.core.idle import idle_executor
from tests.support.content import ContentClient, eventually


async def _vectors(content: ContentClient, problem_id: str) -> Any:
    async with content.service.runtime.engine.connect() as conn:
        return (
            await conn.execute(
                select(
                    problems.c.embedding.is_not(None).label("search"),
                    problems.c.embedding_model,
                    problems.c.title_embedding.is_not(None).label("title"),
                ).where(problems.c.id == uuid.UUID(problem_id))
            )
        ).one()


async def test_the_worker_embeds_what_the_create_stored_without_a_search_vector(
    content: ContentClient, run_worker: Any, local_classifier: Any
) -> None:
    author = await content.agent()
    problem = await content.problem(author)
    stored = await _vectors(content, problem.problem_id)
    assert (stored.search, stored.title) == (False, True)  # the title vector serves duplicates

    await run_worker(local_classifier)

    async def embedded() -> bool:
        return bool((await _vectors(content, problem.problem_id)).search)

    await eventually(embedded)
    assert (await _vectors(content, problem.problem_id)).embedding_model == (
        "all-MiniLM-L6-v2-onnx-dynint8"
    )


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policy")
async def test_the_worker_embeds_items_only_on_idle_cpu(
    content: ContentClient, run_worker: Any, local_classifier: Any
) -> None:
    # A search vector may be late; the 10-60 ms of CPU it costs must not delay requests served
    # on the same cores, so the worker computes them on SCHED_IDLE threads.
    class Recording:
        """The local model, noting the scheduling policy of the thread each batch runs on."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.model_id = inner.model_id
            self.dimensions = inner.dimensions
            self.policies: list[int] = []

        def embed(self, texts: Any) -> Any:
            self.policies.append(os.sched_getscheduler(0))
            return self.inner.embed(texts)

    author = await content.agent()
    problem = await content.problem(author)
    recording = Recording(build_provider("local"))
    with idle_executor(1, name="test-embed") as executor:
        deps = dataclasses.replace(
            build_deps(content.service.runtime, item_executor=executor), embedder=recording
        )
        assert await backfill(deps) == 1
    assert recording.policies == [os.SCHED_IDLE]

    worker = await run_worker(local_classifier)

    async def decided() -> bool:
        async with content.service.runtime.engine.connect() as conn:
            query = select(problems.c.guardrail_status).where(
                problems.c.id == uuid.UUID(problem.problem_id)
            )
            return (await conn.execute(query)).scalar_one() != "PENDING"

    await eventually(decided)
    executor = worker.consumers.of_type(EmbeddingWorker).executor
    assert await asyncio.wrap_future(executor.submit(os.sched_getscheduler, 0)) == os.SCHED_IDLE
    # The event loop itself (lock renewals, guardrail decisions) keeps its normal priority.
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


async def test_an_edit_drops_the_vector_and_a_late_embedding_of_the_old_text_is_discarded(
    content: ContentClient,
) -> None:
    author = await content.agent()
    problem = await content.approved_problem(author)
    assert (await _vectors(content, problem.problem_id)).search

    edited = await content.content.UpdateProblem(
        pb.UpdateProblemRequest(
            problem_id=problem.problem_id,
            description="Storm drains now carry motor oil into Lake Merritt as well; the "
            "sheen is visible for days after rain and birds are affected.",
        ),
        metadata=author.auth,
    )
    assert not (await _vectors(content, problem.problem_id)).search
    deps = build_deps(content.service.runtime)
    stale = problem.guardrail_evaluation_id
    assert not await embed_item(deps, "problem", problem.problem_id, stale)
    assert not (await _vectors(content, problem.problem_id)).search
    assert await embed_item(deps, "problem", problem.problem_id, edited.guardrail_evaluation_id)
    assert (await _vectors(content, problem.problem_id)).search


async def test_backfill_embeds_missing_and_foreign_vectors_but_never_rejected_or_fresh_items(
    content: ContentClient,
) -> None:
    author = await content.agent()
    approved = await content.approved_problem(author)
    pending = await content.problem(author, title="Flooded basements in Riverside after storms")
    rejected = await content.problem(author, title="A problem the guardrail rejected outright")
    await content.decide(
        pb.PROBLEM, rejected.problem_id, rejected.guardrail_evaluation_id, common_pb2.REJECTED
    )
    solution = await content.solution(author, approved.problem_id)
    engine = content.service.runtime.engine
    async with engine.begin() as conn:  # as if embedded by a provider used before
        await conn.execute(
            update(problems)
            .where(problems.c.id == uuid.UUID(approved.problem_id))
            .values(embedding_model="an-older-model")
        )
    deps = build_deps(content.service.runtime)
    assert await backfill(deps, unchanged_for=timedelta(hours=1)) == 0  # all changed just now
    assert await backfill(deps, batch_size=2) == 3  # approved, pending and the solution
    assert await backfill(deps) == 0  # nothing left: a rerun is free
    for problem_id, expected in (
        (approved.problem_id, True),
        (pending.problem_id, True),
        (rejected.problem_id, False),
    ):
        row = await _vectors(content, problem_id)
        assert row.search is expected
        if expected:
            assert row.embedding_model == deps.embedder.model_id
    async with engine.connect() as conn:
        query = select(solutions.c.embedding).where(
            solutions.c.id == uuid.UUID(solution.solution_id)
        )
        vector = (await conn.execute(query)).scalar_one()
    assert vector is not None


async def test_backfill_replaces_title_vectors_of_an_earlier_local_model(
    content: ContentClient,
) -> None:
    # Title vectors made by the packaged model before it was quantized (revision 0007 marks
    # them) are re-made by the current model, so the duplicate check compares like with like.
    author = await content.agent()
    problem = await content.approved_problem(author)
    problem_id = uuid.UUID(problem.problem_id)
    engine = content.service.runtime.engine
    earlier = [1.0] + [0.0] * 383
    async with engine.begin() as conn:
        await conn.execute(
            update(problems)
            .where(problems.c.id == problem_id)
            .values(title_embedding=earlier, title_embedding_model="all-MiniLM-L6-v2-onnx-int8")
        )
    deps = build_deps(content.service.runtime)
    # The title changed after the backfill read it: the edit's own vector stands.
    assert not await deps.store.embeddings.store_title(
        TitleSource(str(problem_id), "An older title"), [0.0] * 383 + [1.0], deps.titles.model_id
    )

    assert await backfill(deps) == 1
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(problems.c.title_embedding, problems.c.title_embedding_model).where(
                    problems.c.id == problem_id
                )
            )
        ).one()
    assert row.title_embedding_model == deps.titles.model_id
    expected = await deps.embed_title(problem.title)
    cosine = sum(a * b for a, b in zip(row.title_embedding, expected, strict=True))
    assert cosine > 0.999
    assert await backfill(deps) == 0


async def test_vectors_travel_to_postgresql_in_binary(
    content: ContentClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pgvector's text format costs ~190 µs of the event loop per 384 floats; binary ~7 µs.
    def text_format(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a vector was sent as text")

    monkeypatch.setattr(pgvector.Vector, "_to_db", text_format)
    monkeypatch.setattr(pgvector.Vector, "to_text", text_format)
    author = await content.agent()
    await content.approved_problem(author)  # a title vector, a search vector
    pending = await content.problem(author, title="Flooded basements in Riverside after storms")
    deps = build_deps(content.service.runtime)
    assert await backfill(deps) == 1  # the pending problem's search vector
    vector = await deps.store.problems.search_vector(pending.problem_id)
    assert vector is not None
    assert len(vector) == 384


async def test_the_backfill_command_reports_what_it_stored(
    content: ContentClient, monkeypatch: Any, capsys: Any
) -> None:
    from tooling import cli

    author = await content.agent()
    await content.problem(author)
    monkeypatch.setattr(cli, "_settings", lambda: content.settings)
    args = cli.build_parser().parse_args(["embeddings", "backfill", "--batch-size", "8"])
    # The command runs its own event loop; from inside this one, a thread gives it one.
    assert await asyncio.to_thread(args.func, args) == 0
    assert "stored 1 embeddings" in capsys.readouterr().out


class _FlakyProvider:
    """The local model, failing its first call (a hosted provider's bad minute)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimensions = inner.dimensions
        self.calls = 0

    def embed(self, texts: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise EmbeddingError("voyage-3.5: 503 from the API (attempt 1)")
        return self.inner.embed(texts)


async def test_a_failed_embedding_job_is_retried_with_backoff(content: ContentClient) -> None:
    author = await content.agent()
    problem = await content.problem(author)
    deps = build_deps(content.service.runtime)
    flaky = _FlakyProvider(deps.embedder)
    worker = EmbeddingWorker(
        dataclasses.replace(deps, embedder=flaky),
        redis_url=content.settings.redis_url,
        concurrency=1,
        lock_seconds=30,
    )
    queue = EmbeddingQueue(content.settings.redis_url)
    job = EmbeddingJob("problem", problem.problem_id, problem.guardrail_evaluation_id)
    assert await queue.enqueue(job)
    assert await queue.enqueue(job)  # the same version twice: one job
    worker.start()
    try:

        async def embedded() -> bool:
            return bool((await _vectors(content, problem.problem_id)).search)

        await eventually(embedded, 20)  # the retry comes after the 2 s backoff
        assert flaky.calls == 2

        async def completed() -> bool:
            return await queue.queue.getJobState(job.job_id) == "completed"

        await eventually(completed, 5)
    finally:
        await worker.stop()
        await queue.close()


def _literal(value: Any) -> str:
    if isinstance(value, list):
        return "'[" + ",".join(str(x) for x in value) + "]'"
    if isinstance(value, str | uuid.UUID):
        return "'" + str(value) + "'"
    return str(value)


@pytest.mark.parametrize(
    ("index", "build"),
    [
        ("ix_problems_embedding", lambda v: nearest_query(ContentKind.PROBLEM, v, None, 10)),
        (
            "ix_solutions_embedding",
            lambda v: nearest_query(ContentKind.SOLUTION, v, "clean_water_sanitation", 10),
        ),
        ("ix_problems_title_embedding", lambda v: similar_query(v, uuid.uuid4(), 5, True)),
        ("ix_problems_embedding", lambda v: similar_query(v, None, 5, False)),
    ],
)
async def test_vector_queries_can_use_the_approved_only_indexes_in_a_generic_plan(
    content: ContentClient, index: str, build: Any
) -> None:
    # The HNSW indexes are partial (approved rows only): a query whose status filter were a
    # bound parameter could not use them once PostgreSQL switches to a generic plan, and would
    # scan and sort every row instead.
    query, params = build([0.01] * 384)
    statement = query.compile(dialect=postgresql.asyncpg.dialect())
    bound = {**statement.params, **params}
    values = [_literal(bound[name]) for name in statement.positiontup or ()]
    async with content.service.runtime.engine.connect() as conn:
        await conn.exec_driver_sql("SET plan_cache_mode = force_generic_plan")
        await conn.exec_driver_sql("SET enable_seqscan = off")  # tables are tiny here
        await conn.exec_driver_sql(f"PREPARE nearest AS {statement}")
        plan = await conn.exec_driver_sql(f"EXPLAIN EXECUTE nearest({', '.join(values)})")
        text_plan = "\n".join(row[0] for row in plan)
        await conn.exec_driver_sql("DEALLOCATE nearest")
    assert f"Index Scan using {index}" in text_plan, text_plan
