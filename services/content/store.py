"""SQL for the content service's tables."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, bindparam, func, or_, select, text, union_all, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Select
from sqlalchemy.sql.dml import ReturningInsert, ReturningUpdate

from services.content.model import (
    APPROVED,
    DebateRecord,
    Decision,
    Guardrail,
    ProblemRecord,
    SearchHit,
    Similar,
    SolutionRecord,
)
from services.content.tables import APPROVED_ONLY, debates, problems, solutions
from services.core.db import autocommit

TABLES: dict[str, Table] = {"problem": problems, "solution": solutions, "debate": debates}


_NOT_IN_RECORDS = frozenset({"embedding", "title_embedding", "title_embedding_model"})


def row_columns(table: Table) -> list[Any]:
    """Every column but the vectors and the title vector's model: records never need them, and
    decoding 384 floats per row was a large share of a list page's CPU."""
    return [column for column in table.c if column.name not in _NOT_IN_RECORDS]


def _guardrail(row: Row[Any]) -> Guardrail:
    return Guardrail(
        status=row.guardrail_status,
        evaluation_id=str(row.guardrail_evaluation_id),
        alignment_score=row.alignment_score,
        aligned_domain=row.aligned_domain,
        explanation=row.guardrail_explanation,
    )


def problem_record(row: Row[Any]) -> ProblemRecord:
    """A problem from its row."""
    return ProblemRecord(
        id=str(row.id),
        author_agent_id=str(row.author_agent_id),
        title=row.title,
        description=row.description,
        domain=row.domain,
        severity=row.severity,
        affected_population_estimate=row.affected_population_estimate,
        geographic_scope=row.geographic_scope,
        location_name=row.location_name,
        latitude=row.latitude,
        longitude=row.longitude,
        data_sources=list(row.data_sources),
        evidence_links=list(row.evidence_links),
        existing_solutions=list(row.existing_solutions),
        self_audit=row.self_audit,
        status=row.status,
        upvotes=row.upvotes,
        solution_count=row.solution_count,
        guardrail=_guardrail(row),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def solution_record(row: Row[Any]) -> SolutionRecord:
    """A solution from its row."""
    scores = (
        (row.impact_score, row.feasibility_score, row.cost_efficiency_score, row.composite_score)
        if row.composite_score is not None
        else None
    )
    cost = (
        (float(row.estimated_cost_amount), row.estimated_cost_currency)
        if row.estimated_cost_amount is not None
        else None
    )
    return SolutionRecord(
        id=str(row.id),
        problem_id=str(row.problem_id),
        author_agent_id=str(row.author_agent_id),
        title=row.title,
        description=row.description,
        approach=row.approach,
        expected_impact=row.expected_impact,
        estimated_cost=cost,
        risks_and_mitigations=list(row.risks_and_mitigations),
        required_skills=list(row.required_skills),
        required_locations=list(row.required_locations),
        timeline_estimate=row.timeline_estimate,
        status=row.status,
        scores=scores,
        debate_count=row.debate_count,
        upvotes=row.upvotes,
        guardrail=_guardrail(row),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def debate_record(row: Row[Any]) -> DebateRecord:
    """A debate contribution from its row."""
    return DebateRecord(
        id=str(row.id),
        solution_id=str(row.solution_id),
        author_agent_id=str(row.author_agent_id),
        parent_debate_id=str(row.parent_debate_id) if row.parent_debate_id else None,
        stance=row.stance,
        content=row.content,
        evidence_links=list(row.evidence_links),
        depth=row.depth,
        upvotes=row.upvotes,
        guardrail=_guardrail(row),
        created_at=row.created_at,
    )


_RECORD = {"problem": problem_record, "solution": solution_record, "debate": debate_record}


# The statements of the hot paths are built once and take their values as parameters:
# composing one per call (coercing every value, deriving its cache key) cost more client CPU
# than executing it (bench/README.md, "Measurements behind the code").


@functools.cache
def _insert_statement(kind: str) -> ReturningInsert[Any]:
    table = TABLES[kind]
    return table.insert().returning(*row_columns(table))


async def insert(conn: AsyncConnection, kind: str, values: dict[str, Any]) -> Any:
    """Inserts a problem, solution or debate (`values` by column name); returns its record."""
    row = (await conn.execute(_insert_statement(kind), values)).one()
    return _RECORD[kind](row)


async def get(
    conn: AsyncConnection, kind: str, content_id: uuid.UUID, *, lock: bool = False
) -> Any:
    """One record by id (optionally locked FOR UPDATE), or None."""
    table = TABLES[kind]
    query = select(*row_columns(table)).where(table.c.id == content_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return _RECORD[kind](row) if row else None


async def change(
    conn: AsyncConnection, kind: str, content_id: uuid.UUID, values: dict[str, Any]
) -> Any:
    """Updates columns and updated_at; returns the new record."""
    table = TABLES[kind]
    row = (
        await conn.execute(
            update(table)
            .where(table.c.id == content_id)
            .values(**values, updated_at=func.now())
            .returning(*row_columns(table))
        )
    ).one()
    return _RECORD[kind](row)


def keyset(query: Select[Any], columns: list[Any], after: list[Any] | None) -> Select[Any]:
    """Adds `(c1, c2, ...) < after` for a descending keyset ordering."""
    if after is None:
        return query
    clauses = []
    for i, column in enumerate(columns):
        equal = [columns[j] == after[j] for j in range(i)]
        clauses.append(and_(*equal, column < after[i]))
    return query.where(or_(*clauses))


async def fetch(engine: AsyncEngine, kind: str, query: Select[Any]) -> list[Any]:
    """Runs a select of whole rows and returns records."""
    async with autocommit(engine) as conn:
        rows = (await conn.execute(query)).all()
    return [_RECORD[kind](row) for row in rows]


async def set_embedding(
    engine: AsyncEngine,
    kind: str,
    content_id: uuid.UUID,
    evaluation_id: uuid.UUID,
    vector: list[float],
    model: str,
) -> bool:
    """Stores an item's search embedding unless its text changed since it was read (the edit
    started a new evaluation); returns whether it was stored."""
    params = {
        "e_id": content_id,
        "e_evaluation": evaluation_id,
        "e_vector": vector,
        "e_model": model,
    }
    async with autocommit(engine) as conn:  # one UPDATE: atomic by itself
        result = await conn.execute(_set_embedding_statement(kind), params)
    return bool(result.rowcount)


@functools.cache
def _set_embedding_statement(kind: str) -> Any:
    # Built once (the worker stores one per item); parameter names differ from column names,
    # as an UPDATE requires.
    table = TABLES[kind]
    return (
        update(table)
        .where(table.c.id == bindparam("e_id"))
        .where(table.c.guardrail_evaluation_id == bindparam("e_evaluation"))
        .values(
            embedding=bindparam("e_vector", type_=table.c.embedding.type),
            embedding_model=bindparam("e_model"),
        )
    )


async def embedding_sources(
    engine: AsyncEngine,
    kind: str,
    *,
    model: str,
    content_id: uuid.UUID | None = None,
    after: uuid.UUID | None = None,
    changed_before: datetime | None = None,
    limit: int = 1,
) -> list[Any]:
    """Items whose search embedding is missing or from another model, by id, with their text.

    Rejected items are never shown, so they are never embedded.
    """
    table = TABLES[kind]
    query = (
        select(table.c.id, table.c.title, table.c.description, table.c.guardrail_evaluation_id)
        .where(table.c.guardrail_status != "REJECTED")
        .where(or_(table.c.embedding.is_(None), table.c.embedding_model.is_distinct_from(model)))
        .order_by(table.c.id)
        .limit(limit)
    )
    if content_id is not None:
        query = query.where(table.c.id == content_id)
    return await _page_by_id(engine, query, table, after, changed_before)


async def _page_by_id(
    engine: AsyncEngine,
    query: Select[Any],
    table: Table,
    after: uuid.UUID | None,
    changed_before: datetime | None,
) -> list[Any]:
    """The rows of a backfill's query past `after` (by id), unchanged since `changed_before`."""
    if after is not None:
        query = query.where(table.c.id > after)
    if changed_before is not None:
        query = query.where(table.c.updated_at < changed_before)
    async with autocommit(engine) as conn:
        return list((await conn.execute(query)).all())


async def title_sources(
    engine: AsyncEngine,
    *,
    model: str,
    after: uuid.UUID | None = None,
    changed_before: datetime | None = None,
    limit: int = 1,
) -> list[Any]:
    """Problems whose title vector is missing or from another model, by id, with their title."""
    query = (
        select(problems.c.id, problems.c.title)
        .where(problems.c.title_embedding_model.is_distinct_from(model))
        .order_by(problems.c.id)
        .limit(limit)
    )
    return await _page_by_id(engine, query, problems, after, changed_before)


async def set_title_embedding(
    engine: AsyncEngine, problem_id: uuid.UUID, title: str, vector: list[float], model: str
) -> bool:
    """Stores a problem's title vector unless the title changed since it was read (the edit
    stored its own); returns whether it was stored."""
    async with autocommit(engine) as conn:
        result = await conn.execute(
            update(problems)
            .where(problems.c.id == problem_id)
            .where(problems.c.title == title)
            .values(title_embedding=vector, title_embedding_model=model)
        )
    return bool(result.rowcount)


async def search_vector(
    engine: AsyncEngine, kind: str, content_id: uuid.UUID
) -> list[float] | None:
    """An item's search vector, or None while it has none."""
    table = TABLES[kind]
    async with autocommit(engine) as conn:
        query = select(table.c.embedding).where(table.c.id == content_id)
        vector = (await conn.execute(query)).scalar_one_or_none()
    return None if vector is None else [float(x) for x in vector]


async def similar_problems(
    engine: AsyncEngine,
    vector: list[float],
    *,
    exclude: uuid.UUID | None,
    limit: int,
    by_title: bool = False,
) -> list[Similar]:
    """Approved, active problems nearest to `vector` (HNSW, cosine), in the search space or,
    with `by_title`, in the title space."""
    statement, params = similar_query(vector, exclude, limit, by_title)
    async with autocommit(engine) as conn:
        rows = (await conn.execute(statement, params)).all()
    return [Similar(str(r.id), r.title, r.domain, round(1 - float(r.distance), 4)) for r in rows]


def similar_query(
    vector: list[float], exclude: uuid.UUID | None, limit: int, by_title: bool
) -> tuple[Select[Any], dict[str, Any]]:
    """The nearest-problems query and its parameters (exposed so tests can check its plan)."""
    params = {"vector": vector, "limit": limit}
    if exclude is not None:
        params["exclude"] = exclude
    return _similar_statement(by_title, exclude is not None), params


@functools.cache
def _similar_statement(by_title: bool, excluding: bool) -> Select[Any]:
    column = problems.c.title_embedding if by_title else problems.c.embedding
    distance = column.cosine_distance(bindparam("vector", type_=column.type))
    query = (
        select(problems.c.id, problems.c.title, problems.c.domain, distance.label("distance"))
        .where(text(APPROVED_ONLY))  # a literal: the partial HNSW index's predicate
        .where(problems.c.status == "ACTIVE")
        .where(column.is_not(None))
        .order_by(distance)
        .limit(bindparam("limit"))
    )
    return query.where(problems.c.id != bindparam("exclude")) if excluding else query


def nearest_query(
    kind: str, vector: list[float], domain: str | None, limit: int
) -> tuple[Select[Any], dict[str, Any]]:
    """Approved, live problems or solutions by cosine distance to `vector` (HNSW order), and
    the query's parameters."""
    params: dict[str, Any] = {"vector": vector, "limit": limit}
    if domain:
        params["domain"] = domain
    return _nearest_statement(kind, bool(domain)), params


@functools.cache
def _nearest_statement(kind: str, in_domain: bool) -> Select[Any]:
    table = TABLES[kind]
    distance = table.c.embedding.cosine_distance(bindparam("vector", type_=table.c.embedding.type))
    query = select(
        table.c.id,
        table.c.title,
        table.c.description,
        problems.c.domain,
        distance.label("distance"),
    )
    if table is solutions:
        query = query.join(problems, problems.c.id == solutions.c.problem_id)
    query = (
        query.where(text(f"{table.name}.{APPROVED_ONLY}"))  # literal: the partial index's predicate
        .where(table.c.status != "ARCHIVED")
        .where(table.c.embedding.is_not(None))
        .order_by(distance)
        .limit(bindparam("limit"))
    )
    return query.where(problems.c.domain == bindparam("domain")) if in_domain else query


async def search(
    engine: AsyncEngine,
    vector: list[float],
    *,
    kinds: tuple[str, ...],
    domain: str | None,
    limit: int,
) -> list[SearchHit]:
    """Approved problems and solutions nearest to `vector`, merged by similarity."""
    hits: list[SearchHit] = []
    async with autocommit(engine) as conn:
        for kind in kinds:
            statement, params = nearest_query(kind, vector, domain, limit)
            rows = (await conn.execute(statement, params)).all()
            hits += [
                SearchHit(kind, str(r.id), r.title, r.description[:300], r.domain,
                          round(1 - float(r.distance), 4))
                for r in rows
            ]  # fmt: skip
    hits.sort(key=lambda hit: hit.similarity, reverse=True)
    return hits[:limit]


async def apply_decision(engine: AsyncEngine, decision: Decision) -> tuple[bool, bool]:
    """Records a decision; returns (applied, stale).

    One guarded UPDATE does it (a problem's decision is a single round trip): it applies only
    to the item's current evaluation, and only while undecided or FLAGGED. A CTE locks the row
    first so the UPDATE can return the status it replaces. Counters of the parent move in the
    same transaction, only when the item enters or leaves APPROVED, so concurrent decisions
    keep them exact.
    """
    table = TABLES[decision.kind]
    content_id = uuid.UUID(decision.content_id)
    scores = decision.scores if decision.kind == "solution" else None
    # Parameter names must differ from column names in an UPDATE: hence the prefix.
    params: dict[str, Any] = {
        "d_content_id": content_id,
        "d_evaluation_id": uuid.UUID(decision.evaluation_id),
        "d_status": decision.status,
        "d_alignment_score": decision.alignment_score,
        "d_aligned_domain": decision.aligned_domain,
        "d_explanation": decision.explanation,
    }
    if scores is not None:
        params.update(zip((f"d_{name}" for name in _SCORE_COLUMNS), scores, strict=True))
    statement = _decision_statement(decision.kind, scores is not None)
    if decision.kind == "problem":  # no parent counter: one statement, atomic by itself
        async with autocommit(engine) as conn:
            row = (await conn.execute(statement, params)).first()
    else:
        async with engine.begin() as conn:
            row = (await conn.execute(statement, params)).first()
            if row is not None:
                delta = int(decision.status == APPROVED) - int(row.was == APPROVED)
                if delta:
                    await adjust_parent_counter(conn, decision.kind, row, delta)
    if row is not None:
        return True, False
    # Not applied: a repeat of the current evaluation's decision, or one for an older one (or
    # for no item at all), which is stale.
    async with autocommit(engine) as conn:
        current = (
            await conn.execute(
                select(table.c.guardrail_evaluation_id).where(table.c.id == content_id)
            )
        ).scalar()
    return False, current != params["d_evaluation_id"]


_SCORE_COLUMNS = ("impact_score", "feasibility_score", "cost_efficiency_score", "composite_score")


@functools.cache
def _decision_statement(kind: str, scored: bool) -> ReturningUpdate[Any]:
    table = TABLES[kind]
    before = (
        select(table.c.id, table.c.guardrail_status.label("was"))
        .where(table.c.id == bindparam("d_content_id"))
        .with_for_update()
        .cte("before")
    )
    status = bindparam("d_status", type_=table.c.guardrail_status.type)
    values: dict[str, Any] = {
        "guardrail_status": status,
        "alignment_score": bindparam("d_alignment_score"),
        "aligned_domain": bindparam("d_aligned_domain"),
        "guardrail_explanation": bindparam("d_explanation"),
        "guardrail_decided_at": func.now(),
    }
    if scored:
        values.update({name: bindparam(f"d_{name}") for name in _SCORE_COLUMNS})
    parent = [table.c[name] for name in ("problem_id", "solution_id") if name in table.c]
    return (
        update(table)
        .where(table.c.id == before.c.id)
        .where(table.c.guardrail_evaluation_id == bindparam("d_evaluation_id"))
        # Idempotent, and final: an APPROVED or REJECTED evaluation is never overturned by a
        # late or retried job; only a FLAGGED one moves on, by human review.
        .where(
            or_(
                table.c.guardrail_decided_at.is_(None),
                and_(table.c.guardrail_status == "FLAGGED", table.c.guardrail_status != status),
            )
        )
        .values(**values)
        .returning(before.c.was, *parent)
    )


async def adjust_parent_counter(conn: AsyncConnection, kind: str, row: Any, delta: int) -> None:
    """Moves solution_count / debate_count of the parent; the first approved debate of a
    PROPOSED solution moves it to DEBATING."""
    if kind == "solution":
        await conn.execute(
            update(problems)
            .where(problems.c.id == uuid.UUID(str(row.problem_id)))
            .values(solution_count=problems.c.solution_count + delta)
        )
    elif kind == "debate":
        values: dict[str, Any] = {"debate_count": solutions.c.debate_count + delta}
        if delta > 0:
            values["status"] = func.coalesce(
                func.nullif(solutions.c.status, "PROPOSED"), "DEBATING"
            )
        await conn.execute(
            update(solutions)
            .where(solutions.c.id == uuid.UUID(str(row.solution_id)))
            .values(**values)
        )


async def pending_since(engine: AsyncEngine, kind: str, before: datetime, limit: int) -> list[Any]:
    """Items still PENDING that were last changed before `before` (for the sweep)."""
    table = TABLES[kind]
    query = (
        select(*row_columns(table))
        .where(table.c.guardrail_status == "PENDING")
        .where(table.c.updated_at < before)
        .order_by(table.c.updated_at)
        .limit(limit)
    )
    return await fetch(engine, kind, query)


async def approved_items(engine: AsyncEngine, author_agent_id: str, *, at_most: int) -> int:
    """How many of the author's problems, solutions and debates are approved (its trust),
    counted up to `at_most`.

    The trust rule only asks whether there are that many. A full count read every approved row
    of a prolific author on every evaluation, most of the database's work under load; this
    stops after `at_most` rows.
    """
    if at_most <= 0:
        return 0
    params = {"author": uuid.UUID(author_agent_id), "at_most": at_most}
    async with autocommit(engine) as conn:
        count = (await conn.execute(_APPROVED_ITEMS, params)).scalar_one()
    return min(int(count), at_most)


_APPROVED_ITEMS = select(func.count()).select_from(
    union_all(
        *(
            select(table.c.id)
            .where(table.c.author_agent_id == bindparam("author"))
            .where(table.c.guardrail_status == APPROVED)
            .limit(bindparam("at_most"))
            for table in (problems, solutions, debates)
        )
    ).subquery()
)
