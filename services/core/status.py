"""The one mapping point from domain errors to google.rpc.Status with rich details."""

from __future__ import annotations

import math

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2

from services.core import errors

GENERIC_INTERNAL_MESSAGE = "internal error; quote the request id when reporting it"

_CODES: list[tuple[type[errors.DomainError], grpc.StatusCode]] = [
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Aborted, grpc.StatusCode.ABORTED),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.TooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
]


def error_domain(service: str) -> str:
    """The ErrorInfo domain of a service, e.g. "agent.betterworld"."""
    return f"{service}.betterworld"


def _grpc_code(exc: errors.DomainError) -> grpc.StatusCode:
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def _pack(status: status_pb2.Status, detail: object) -> None:
    status.details.add().Pack(detail)


def build_status(
    code: grpc.StatusCode,
    message: str,
    *,
    reason: str,
    service: str,
    request_id: str | None = None,
) -> status_pb2.Status:
    """A Status carrying an ErrorInfo (always) with the request id in its metadata."""
    # Statuses travel in trailers, which gRPC limits in size: never let a message grow unbounded.
    status = status_pb2.Status(code=code.value[0], message=message[:1000])
    info = error_details_pb2.ErrorInfo(reason=reason, domain=error_domain(service))
    if request_id:
        info.metadata["requestId"] = request_id
    _pack(status, info)
    return status


def domain_error_status(
    exc: errors.DomainError, *, service: str, request_id: str | None
) -> tuple[grpc.StatusCode, status_pb2.Status]:
    """Maps a domain error to its gRPC code and a Status with the matching details."""
    code = _grpc_code(exc)
    status = build_status(
        code, exc.message, reason=exc.reason, service=service, request_id=request_id
    )
    if isinstance(exc, errors.InvalidArgument):
        bad_request = error_details_pb2.BadRequest()
        for violation in exc.violations:
            bad_request.field_violations.add(
                field=violation.field, description=violation.description
            )
        _pack(status, bad_request)
    elif isinstance(exc, errors.NotFound):
        _pack(
            status,
            error_details_pb2.ResourceInfo(
                resource_type=exc.resource_type,
                resource_name=exc.resource_name,
                description=exc.message,
            ),
        )
    elif isinstance(exc, errors.Unavailable) and exc.retry_after_seconds is not None:
        _pack(status, _retry_info(exc.retry_after_seconds))
    elif isinstance(exc, errors.ResourceExhausted):
        _pack(status, _retry_info(exc.retry_after_seconds))
        if exc.violations:
            quota = error_details_pb2.QuotaFailure()
            for q in exc.violations:
                quota.violations.add(subject=q.subject, description=q.description)
            _pack(status, quota)
    return code, status


def _retry_info(seconds: float) -> error_details_pb2.RetryInfo:
    seconds = max(0.0, seconds)
    whole = math.floor(seconds)
    return error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=whole, nanos=int((seconds - whole) * 1e9))
    )


def internal_status(*, service: str, request_id: str | None) -> status_pb2.Status:
    """The generic INTERNAL status sent for any unexpected exception (details only in logs)."""
    return build_status(
        grpc.StatusCode.INTERNAL,
        GENERIC_INTERNAL_MESSAGE,
        reason="INTERNAL",
        service=service,
        request_id=request_id,
    )
