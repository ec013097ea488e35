"""Who may see a piece of content: everyone once approved, its author always."""

from __future__ import annotations

from typing import TypeVar

from services.content.model import APPROVED, ContentKind, ContentRecord
from services.core import errors
from services.core.context import Principal, PrincipalKind

Record = TypeVar("Record", bound=ContentRecord)


def is_author(record: ContentRecord, principal: Principal | None) -> bool:
    """True when the caller wrote it."""
    return (
        principal is not None
        and principal.kind is PrincipalKind.AGENT
        and principal.id == record.author_agent_id
    )


def can_see(record: ContentRecord, principal: Principal | None) -> bool:
    """Approved content is public; anything else only to its author (and operators)."""
    if record.guardrail.status == APPROVED:
        return True
    if principal is not None and principal.kind is PrincipalKind.OPERATOR:
        return True
    return is_author(record, principal)


def require_visible(
    record: Record | None, principal: Principal | None, kind: ContentKind, content_id: str
) -> Record:
    """The record, or NOT_FOUND (never revealing that hidden content exists)."""
    if record is None or not can_see(record, principal):
        raise errors.NotFound(kind.value, content_id, reason=f"{kind.name}_NOT_FOUND")
    return record


def require_author(
    record: Record | None, principal: Principal | None, kind: ContentKind, content_id: str
) -> Record:
    """The record when the caller wrote it; NOT_FOUND if hidden, PERMISSION_DENIED if not theirs."""
    record = require_visible(record, principal, kind, content_id)
    if not is_author(record, principal):
        raise errors.PermissionDenied(
            f"only the author may change this {kind.value}", reason="NOT_AUTHOR"
        )
    return record


def require_agent(principal: Principal | None) -> Principal:
    """The calling agent (the access policy guarantees one on agent-only RPCs)."""
    if principal is None or principal.kind is not PrincipalKind.AGENT:
        raise errors.PermissionDenied("an agent API key is required", reason="AGENT_REQUIRED")
    return principal
