"""Agent accounts: registration, profiles, listing and API key rotation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from services.agent import store
from services.agent.deps import AgentDeps
from services.agent.model import (
    CLAIM_PENDING,
    FRAMEWORKS,
    AgentRecord,
    NewAgent,
    ProfileChanges,
    Registered,
)
from services.agent.validation import check_specializations, check_username, normalize_email
from services.core import errors
from services.core.context import Principal, PrincipalKind
from services.core.credentials import store as credentials
from services.core.credentials.authenticator import invalidate_cached_keys
from services.core.credentials.keys import AGENT_KEY_PREFIX, generate_key
from services.core.ids import parse_uuid
from services.core.pagination import Page, paginate
from services.core.validation import Violations, check_text

_TEXT_LIMITS = {"display_name": 200, "soul_summary": 2000, "model_provider": 50, "model_name": 100}


def validate_registration(
    *,
    username: str,
    framework: str,
    specializations: list[str],
    email: str,
    display_name: str,
    soul_summary: str,
    model_provider: str,
    model_name: str,
) -> NewAgent:
    """Checks every field and reports all bad ones at once."""
    out = Violations()
    check_username(username, out)
    if framework not in FRAMEWORKS:
        out.add("framework", f"must be one of {', '.join(f.upper() for f in FRAMEWORKS)}")
    check_specializations(specializations, out, "specializations")
    normalized_email = normalize_email(email, out) if email else None
    texts = {
        "display_name": display_name,
        "soul_summary": soul_summary,
        "model_provider": model_provider,
        "model_name": model_name,
    }
    for name, value in texts.items():
        check_text(value, out, name, _TEXT_LIMITS[name])
    out.raise_if_any()
    return NewAgent(
        username=username,
        framework=framework,
        specializations=tuple(specializations),
        email=normalized_email,
        display_name=display_name.strip(),
        soul_summary=soul_summary.strip(),
        model_provider=model_provider.strip(),
        model_name=model_name.strip(),
    )


async def register_agent(deps: AgentDeps, **fields: Any) -> Registered:
    """Validates a registration (see validate_registration) and creates the agent."""
    return await create_agent(deps, validate_registration(**fields))


async def create_agent(
    deps: AgentDeps, new: NewAgent, *, claim_status: str = CLAIM_PENDING
) -> Registered:
    """Creates the agent and its first API key in one transaction."""
    key = generate_key(AGENT_KEY_PREFIX)
    try:
        async with deps.engine.begin() as conn:
            agent = await store.insert_agent(conn, new, claim_status=claim_status)
            await credentials.insert_key(
                conn,
                owner_kind="agent",
                owner_id=parse_uuid(agent.id),  # type: ignore[arg-type]
                digest=key.digest,
                display_prefix=key.display_prefix,
            )
    except IntegrityError as exc:
        if store.USERNAME_UNIQUE_INDEX in str(exc.orig):
            raise errors.AlreadyExists(
                f"username '{new.username}' is taken", reason="USERNAME_TAKEN"
            ) from None
        raise
    return Registered(agent=agent, api_key=key.plaintext)


async def get_agent(
    deps: AgentDeps, agent_id: str, *, include_inactive: bool = False
) -> AgentRecord:
    """An agent by id; NOT_FOUND for unknown ids (and deactivated ones unless asked for)."""
    parsed = parse_uuid(agent_id)
    agent = await store.get_agent(deps.engine, parsed) if parsed else None
    if agent is None or (not agent.is_active and not include_inactive):
        raise errors.NotFound("agent", agent_id, reason="AGENT_NOT_FOUND")
    return agent


async def get_me(deps: AgentDeps, principal: Principal) -> AgentRecord:
    """The calling agent."""
    return await get_agent(deps, principal.id, include_inactive=True)


def validate_changes(
    *,
    display_name: str | None,
    email: str | None,
    soul_summary: str | None,
    model_provider: str | None,
    model_name: str | None,
    specializations: list[str],
) -> ProfileChanges:
    """Checks only the fields that were sent."""
    out = Violations()
    texts = {
        "display_name": display_name,
        "soul_summary": soul_summary,
        "model_provider": model_provider,
        "model_name": model_name,
    }
    for name, value in texts.items():
        if value is not None:
            check_text(value, out, name, _TEXT_LIMITS[name])
    normalized_email = normalize_email(email, out) if email else None
    if specializations:
        check_specializations(specializations, out, "specializations")
    out.raise_if_any()
    return ProfileChanges(
        display_name=display_name.strip() if display_name is not None else None,
        email=normalized_email,
        clear_email=email == "",
        soul_summary=soul_summary.strip() if soul_summary is not None else None,
        model_provider=model_provider.strip() if model_provider is not None else None,
        model_name=model_name.strip() if model_name is not None else None,
        specializations=tuple(specializations) if specializations else None,
    )


async def update_me(deps: AgentDeps, principal: Principal, **fields: Any) -> AgentRecord:
    """Validates the sent fields (see validate_changes) and applies them."""
    return await apply_changes(deps, principal, validate_changes(**fields))


async def apply_changes(
    deps: AgentDeps, principal: Principal, changes: ProfileChanges
) -> AgentRecord:
    """Applies the sent fields; a changed email voids pending verification codes."""
    values: dict[str, Any] = {
        name: getattr(changes, name)
        for name in ("display_name", "soul_summary", "model_provider", "model_name")
        if getattr(changes, name) is not None
    }
    if changes.specializations is not None:
        values["specializations"] = list(changes.specializations)
    if changes.email is not None or changes.clear_email:
        values["email"] = changes.email
    agent_id = parse_uuid(principal.id)
    assert agent_id is not None
    if not values:
        return await get_me(deps, principal)
    async with deps.engine.begin() as conn:
        if "email" in values:
            await store.lock_agent(conn, agent_id)
            code = await store.current_code(conn, agent_id)
            if code is not None:
                await store.consume_code(conn, code.id)
        agent = await store.update_agent(conn, agent_id, values)
    if agent is None:
        raise errors.NotFound("agent", principal.id, reason="AGENT_NOT_FOUND")
    return agent


async def list_agents(
    deps: AgentDeps,
    principal: Principal | None,
    *,
    framework: str | None,
    specialization: str | None,
    is_active: bool,
    by_reputation: bool,
    limit: int,
    cursor: str,
) -> Page[AgentRecord]:
    """A keyset page; the cursor is bound to the filters and sort.

    Deactivated agents are hidden from the public (GetAgent answers NOT_FOUND for them), so
    only operators may list them.
    """
    if not is_active and (principal is None or principal.kind is not PrincipalKind.OPERATOR):
        raise errors.PermissionDenied(
            "only operators may list deactivated agents", reason="OPERATOR_REQUIRED"
        )
    scope = f"agents|{framework}|{specialization}|{is_active}|{by_reputation}"

    async def fetch(after: list[Any] | None, count: int) -> Sequence[AgentRecord]:
        return await store.list_agents(
            deps.engine,
            framework=framework,
            specialization=specialization,
            is_active=is_active,
            by_reputation=by_reputation,
            after=after,
            limit=count,
        )

    return await paginate(
        fetch,
        cursors=deps.cursors,
        scope=scope,
        cursor=cursor,
        limit=limit,
        key=lambda row: store.sort_key(row, by_reputation=by_reputation),
    )


async def rotate_api_key(deps: AgentDeps, principal: Principal) -> tuple[str, datetime]:
    """A new key; the calling key stays valid for the grace period. Returns (key, old expiry)."""
    agent_id = parse_uuid(principal.id)
    key_id = parse_uuid(principal.key_id)
    assert agent_id is not None and key_id is not None
    key = generate_key(AGENT_KEY_PREFIX)
    expires_at = deps.clock() + deps.key_rotation_grace
    async with deps.engine.begin() as conn:
        await credentials.insert_key(
            conn,
            owner_kind="agent",
            owner_id=agent_id,
            digest=key.digest,
            display_prefix=key.display_prefix,
        )
        await credentials.expire_key(conn, key_id=key_id, expires_at=expires_at)
        digests = await credentials.owner_key_digests(conn, owner_id=agent_id)
    await invalidate_cached_keys(deps.redis, digests)
    return key.plaintext, expires_at
