"""The domain error vocabulary: raised by domain code, mapped to gRPC status in one place."""

from __future__ import annotations

from dataclasses import dataclass

_MAX_ECHO = 100


def clip(value: str, limit: int = _MAX_ECHO) -> str:
    """Client input echoed in an error, cut short: errors travel as size-limited metadata."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field: its proto field name and what is wrong with it."""

    field: str
    description: str


class DomainError(Exception):
    """Base of every error a client may see. `reason` is a stable UPPER_SNAKE code."""

    reason: str = "ERROR"
    http_status: int | None = None
    """The JSON status when it should differ from the gRPC code's usual mapping (Envoy applies
    it through the `x-http-status` response header)."""

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason


class InvalidArgument(DomainError):
    """The request is malformed; `violations` names each bad field."""

    reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        violations: list[FieldViolation],
        *,
        message: str | None = None,
        reason: str | None = None,
    ) -> None:
        fields = ", ".join(v.field for v in violations)
        super().__init__(message or f"invalid fields: {fields}", reason=reason)
        self.violations = violations

    @classmethod
    def one(
        cls, field_name: str, description: str, *, reason: str | None = None
    ) -> InvalidArgument:
        """An error for a single bad field."""
        return cls([FieldViolation(field_name, description)], reason=reason)


class Unauthenticated(DomainError):
    """No credential, or one that does not identify anybody."""

    reason = "UNAUTHENTICATED"


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""

    reason = "PERMISSION_DENIED"


class NotFound(DomainError):
    """A named resource does not exist (or is not visible to the caller)."""

    reason = "NOT_FOUND"

    def __init__(
        self, resource_type: str, resource_name: str, *, reason: str | None = None
    ) -> None:
        shown = clip(resource_name)
        super().__init__(f"{resource_type} {shown} not found", reason=reason)
        self.resource_type = resource_type
        self.resource_name = shown


class AlreadyExists(DomainError):
    """A resource with the same unique key exists."""

    reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    """The resource is not in a state that allows the request."""

    reason = "FAILED_PRECONDITION"


class Conflict(FailedPrecondition):
    """FAILED_PRECONDITION over gRPC for a state the client raced or can wait out (a stale
    version, a full mission); over JSON HTTP 409 rather than the mapping's 400, as REST
    clients expect for a conflict with the resource's current state."""

    http_status = 409


class Aborted(DomainError):
    """A concurrent change won; retrying may succeed."""

    reason = "ABORTED"


@dataclass(frozen=True)
class QuotaViolation:
    """Which quota was exceeded (subject) and how (description)."""

    subject: str
    description: str


class ResourceExhausted(DomainError):
    """A rate limit or quota is exhausted; retry after `retry_after_seconds`."""

    reason = "RATE_LIMITED"

    def __init__(
        self,
        message: str,
        *,
        retry_after_seconds: float,
        violations: list[QuotaViolation] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.retry_after_seconds = retry_after_seconds
        self.violations = list(violations or [])


class TooLarge(DomainError):
    """The request carries more than the RPC accepts (a file over its limit): RESOURCE_EXHAUSTED
    over gRPC without RetryInfo, since retrying the same bytes cannot help; HTTP 413 over JSON."""

    reason = "TOO_LARGE"
    http_status = 413


class Unavailable(DomainError):
    """A dependency is unreachable; the request may be retried (after `retry_after_seconds`,
    sent as RetryInfo, when known)."""

    reason = "UNAVAILABLE"

    def __init__(
        self, message: str, *, reason: str | None = None, retry_after_seconds: float | None = None
    ) -> None:
        super().__init__(message, reason=reason)
        self.retry_after_seconds = retry_after_seconds
