"""Optional error tracking (Sentry): started by the server lifecycle, sent unexpected errors only.

With SENTRY_DSN unset nothing here imports or starts the SDK. With it set, each service process
and the worker start one client when their server starts and flush it when it stops. Only two
paths report: the error mapper's INTERNAL path (an exception no domain error describes) and a
job that crashed (a periodic round that raised, a queue job whose last attempt failed). Every
domain error (invalid input, auth failures, rate limits, not found, ...) is the client's answer,
never an event. Every event passes `scrub_event` before it leaves the process.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from services.core.errors import DomainError
from services.core.logging import get_logger, redact_value
from services.core.settings import VERSION, Settings

log = get_logger(__name__)

PACKAGE = "betterworld-mesh"
FLUSH_TIMEOUT_SECONDS = 2.0
"""How long a stopping process waits for queued events to reach Sentry."""
FILTERED = "[Filtered]"

# Request metadata whose values help to debug and hold no credential or personal data; the
# other keys are kept with their values filtered, so an event still shows what was sent.
_SAFE_METADATA = frozenset(
    {
        "content-type",
        "grpc-accept-encoding",
        "grpc-timeout",
        "user-agent",
        "x-envoy-original-method",
        "x-envoy-original-path",
        "x-request-id",
    }
)
_SECRET_KEY = re.compile(
    r"(authorization|api[_-]?key|apikey|passw|secret|token|cookie|session|csrf|credential|"
    r"signature|private[_-]?key|signing[_-]?key|verification[_-]?code|email|dsn)",
    re.IGNORECASE,
)
# Values that must not leave the process wherever they appear in free text (exception messages,
# paths): `key=value` pairs with a secret-sounding key, auth schemes, JWTs and email addresses.
# Credential shapes of the project (API keys, PEM keys) are handled by `redact_value`.
_SECRET_PAIR = re.compile(
    r"""(?P<key>[\w.-]*(?:passw|secret|token|api[_-]?key|apikey|session|cookie|credential|"""
    r"""signature|authorization)[\w.-]*)(?P<sep>["']?\s*[=:]\s*)"""
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s&,;"')]+)""",
    re.IGNORECASE,
)
_SECRET_TEXT = re.compile(
    r"\b(?:Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+|"
    r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*|"
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
# The parts of an event that can carry request data; the SDK's own sections (sdk, modules,
# release, environment) are left alone.
_SCRUBBED_SECTIONS = (
    "breadcrumbs",
    "contexts",
    "exception",
    "extra",
    "logentry",
    "message",
    "request",
    "spans",
    "tags",
    "threads",
    "transaction",
)


class _State:
    """The process's one client: started by the first server, closed by the last to stop."""

    users = 0
    active = False


def default_release() -> str:
    """`betterworld-mesh@<installed version>` (the source tree's version when not installed)."""
    try:
        version = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = VERSION
    return f"{PACKAGE}@{version}"


def sentry_options(settings: Settings) -> dict[str, Any]:
    """The SDK options for these settings (no DSN: error tracking is off)."""
    return {
        "dsn": settings.sentry_dsn,
        "environment": settings.sentry_environment or settings.environment,
        "release": settings.sentry_release or default_release(),
        "traces_sample_rate": settings.sentry_traces_sample_rate,
        "shutdown_timeout": FLUSH_TIMEOUT_SECONDS,
        # Framework integrations would report on their own: the gRPC one every exception that
        # leaves a handler, the HTTP client ones every failed call (a 429 from a model API is
        # expected). Reports come from the two paths in this module only.
        "auto_enabling_integrations": False,
        # One asyncio loop serves many requests at once, so breadcrumbs would mix other
        # requests' steps (and their data) into an event.
        "max_breadcrumbs": 0,
        "ignore_errors": [DomainError],
        "before_send": scrub_event,
        "data_collection": {
            "user_info": False,
            "cookies": {"mode": "off"},
            "http_headers": {"request": {"mode": "off"}},
            "http_bodies": [],
            "url_query_params": {"mode": "off"},
            "graphql": {"document": False, "variables": False},
            "gen_ai": {"inputs": False, "outputs": False},
            "mcp": {"inputs": False, "outputs": False},
            "database_query_data": False,
            "queues": False,
            # Locals hold requests, passwords being hashed, keys being checked.
            "stack_frame_variables": False,
        },
    }


def start_error_tracking(settings: Settings, *, service: str) -> bool:
    """Starts the process's Sentry client when SENTRY_DSN is set (once: later servers of the
    same process share it); returns whether error tracking is on."""
    if not settings.sentry_dsn:
        return False
    if _State.users == 0:
        import sentry_sdk

        sentry_sdk.init(**sentry_options(settings))
        sentry_sdk.get_global_scope().set_tag("service", service)
        _State.active = True
        log.info(
            "error_tracking_started",
            environment=settings.sentry_environment or settings.environment,
            release=settings.sentry_release or default_release(),
        )
    _State.users += 1
    return True


async def stop_error_tracking(flush_seconds: float = FLUSH_TIMEOUT_SECONDS) -> None:
    """Sends what is queued (waiting at most `flush_seconds`); the last server of the process
    to stop closes the client."""
    if _State.users == 0:
        return
    import sentry_sdk

    _State.users -= 1
    client = sentry_sdk.get_client()
    if _State.users > 0:
        await asyncio.to_thread(client.flush, flush_seconds)
        return
    _State.active = False
    # The SDK's transport is a thread: waiting for it must not block the event loop.
    await asyncio.to_thread(client.close, flush_seconds)
    sentry_sdk.get_global_scope().set_client(None)


def is_active() -> bool:
    """Whether this process reports errors."""
    return _State.active


def report_unexpected(
    exc: BaseException,
    *,
    tags: Mapping[str, str] | None = None,
    context: tuple[str, Mapping[str, Any]] | None = None,
) -> None:
    """Sends one unexpected exception (never a domain error) with extra tags and one named
    context; does nothing when error tracking is off."""
    if not _State.active or isinstance(exc, DomainError):
        return
    import sentry_sdk

    contexts = {context[0]: dict(context[1])} if context else None
    sentry_sdk.capture_exception(exc, tags=dict(tags or {}), contexts=contexts)


def report_rpc_error(
    exc: BaseException,
    *,
    service: str,
    method: str,
    request_id: str,
    metadata: Mapping[str, str],
) -> None:
    """An RPC failed with an exception the error mapper turned into INTERNAL."""
    report_unexpected(
        exc,
        tags={"service": service, "grpc.method": method, "request_id": request_id},
        context=(
            "grpc",
            {
                "method": method,
                "request_id": request_id,
                "metadata": {
                    key: (value if key in _SAFE_METADATA else FILTERED)
                    for key, value in metadata.items()
                },
            },
        ),
    )


def report_job_crash(exc: BaseException, *, job: str, queue: str | None = None) -> None:
    """A job crashed: a periodic round raised, or a queue job failed its last attempt."""
    tags = {"job": job} if queue is None else {"job": job, "queue": queue}
    report_unexpected(exc, tags=tags)


Processor = Callable[[Any, str], Awaitable[Any]]


def reporting_crashes(queue: str, processor: Processor) -> Processor:
    """Wraps a bullmq processor so that a job whose last attempt raises is reported (earlier
    attempts are retried by the queue, so they are not crashes yet)."""

    async def process(job: Any, token: str) -> Any:
        try:
            return await processor(job, token)
        except Exception as exc:
            attempts = int((job.opts or {}).get("attempts", 1) or 1)
            if job.attemptsMade + 1 >= attempts:
                report_job_crash(exc, job=job.name or queue, queue=queue)
            raise

    return process


def scrub_event(event: dict[str, Any], hint: Mapping[str, Any]) -> dict[str, Any] | None:
    """`before_send`: drops domain errors and filters credentials and personal data out of the
    parts of an event that can carry request data."""
    exc_info = hint.get("exc_info")
    if exc_info and isinstance(exc_info[1], DomainError):
        return None
    event.pop("user", None)
    for section in _SCRUBBED_SECTIONS:
        if section in event:
            event[section] = _scrub(event[section])
    return event


def scrub_text(text: str) -> str:
    """Free text with secret `key=value` pairs, auth headers, JWTs, API keys and email
    addresses filtered out."""
    redacted: str = redact_value(text)
    redacted = _SECRET_PAIR.sub(lambda m: f"{m['key']}{m['sep']}{FILTERED}", redacted)
    return _SECRET_TEXT.sub(FILTERED, redacted)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {
            key: FILTERED if isinstance(key, str) and _SECRET_KEY.search(key) else _scrub(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_scrub(item) for item in value]
    return value
