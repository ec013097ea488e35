"""Agent accounts: registration, profiles, listing and API key rotation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.agent.deps import AgentDeps
from services.agent.model import (
    CLAIM_PENDING,
    FRAMEWORKS,
    AgentQuery,
    AgentRecord,
    NewAgent,
    ProfileChanges,
    Registered,
)
from services.agent.store import UsernameTaken, sort_key
from services.agent.validation import check_specializations, check_username, normalize_email
from services.core import errors
from services.core.context import Principal, PrincipalKind
from services.core.credentials.authenticator import invalidate_cached_keys
from services.core.credentials.keys import AGENT_KEY_PREFIX, generate_key
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
        agent = await deps.store.insert(new, claim_status=claim_status, key=key)
    except UsernameTaken:
        raise errors.AlreadyExists(
            f"username '{new.username}' is taken", reason="USERNAME_TAKEN"
        ) from None
    return Registered(agent=agent, api_key=key.plaintext)


async def get_agent(
    deps: AgentDeps, agent_id: str, *, include_inactive: bool = False
) -> AgentRecord:
    """An agent by id; NOT_FOUND for unknown ids (and deactivated ones unless asked for)."""
    agent = await deps.store.get(agent_id)
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
    if changes == ProfileChanges():
        return await get_me(deps, principal)
    async with deps.store.transaction() as tx:
        if changes.email is not None or changes.clear_email:
            await tx.get(principal.id, lock=True)  # serializes with a verification in flight
            code = await tx.current_code(principal.id)
            if code is not None:
                await tx.consume_code(code.id)
        agent = await tx.update_profile(principal.id, changes)
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
    query = AgentQuery(framework, specialization, is_active, by_reputation)

    async def fetch(after: list[Any] | None, count: int) -> Sequence[AgentRecord]:
        return await deps.store.page(query, after=after, count=count)

    return await paginate(
        fetch,
        cursors=deps.cursors,
        scope=scope,
        cursor=cursor,
        limit=limit,
        key=lambda row: sort_key(row, by_reputation=by_reputation),
    )


async def rotate_api_key(deps: AgentDeps, principal: Principal) -> tuple[str, datetime]:
    """A new key; the calling key stays valid for the grace period. Returns (key, old expiry)."""
    assert principal.key_id is not None
    key = generate_key(AGENT_KEY_PREFIX)
    expires_at = deps.clock() + deps.key_rotation_grace
    async with deps.store.transaction() as tx:
        await tx.add_key(principal.id, key)
        await tx.expire_key(principal.key_id, expires_at)
        digests = await tx.key_digests(principal.id)
    await invalidate_cached_keys(deps.redis, digests)
    return key.plaintext, expires_at
