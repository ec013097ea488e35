"""Server interceptors: request context + error mapping + metrics, authentication, rate limits.

Interceptors wrap unary handlers and the streaming RPCs of our contracts (uploads, downloads,
the activity feed), which declare policies like any other RPC; grpc's own streaming RPCs
(health Watch, reflection) pass through untouched. A server-streaming handler is adapted to a
coroutine that writes its messages, so every layer wraps one shape: `await inner(request,
context)`.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from grpc_status import rpc_status
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from services.core import errors
from services.core.context import (
    PrincipalKind,
    RequestState,
    begin_request,
    current,
    new_request_id,
    send_stream_headers,
    set_response_header,
)
from services.core.credentials.authenticator import Authenticator
from services.core.error_tracking import report_rpc_error
from services.core.logging import get_logger
from services.core.metrics import (
    GRPC_HANDLED,
    GRPC_HANDLING_SECONDS,
    GRPC_IN_FLIGHT,
    GRPC_STARTED,
    split_method,
)
from services.core.policy import Access, MethodPolicy, RateClass
from services.core.ratelimit import Decision, RateLimiter
from services.core.status import domain_error_status, internal_status

log = get_logger("betterworld.rpc")

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
# Envoy echoes whatever id a client sent, so the service keeps any id that is valid metadata
# (printable ASCII); only absent or unusable ids are replaced.
_REQUEST_ID = re.compile(r"^[\x20-\x7e]{1,1024}$")
_PEER = re.compile(r"^ipv4:(?P<v4>[0-9.]+):\d+$|^ipv6:\[(?P<v6>[0-9a-fA-F:.]+)\]:\d+$")


def _writer(generator: Callable[..., Any]) -> Behavior:
    """A server-streaming handler written as an async generator, as a coroutine that writes
    each message; the response headers go out before the first one."""

    async def behavior(request: Any, context: grpc.aio.ServicerContext) -> None:
        async for message in generator(request, context):
            await send_stream_headers(context)
            await context.write(message)

    return behavior


def _wrap(
    handler: grpc.RpcMethodHandler,
    make: Callable[[Behavior], Behavior],
    deserializer: Callable[[bytes], Any] | None = None,
) -> grpc.RpcMethodHandler:
    decode = deserializer or handler.request_deserializer
    if handler.unary_stream is not None:
        streamer: Any = handler.unary_stream
        if inspect.isasyncgenfunction(streamer):
            streamer = _writer(streamer)
        return grpc.unary_stream_rpc_method_handler(
            make(streamer),
            request_deserializer=decode,
            response_serializer=handler.response_serializer,
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            make(handler.stream_unary),  # type: ignore[arg-type]
            request_deserializer=decode,
            response_serializer=handler.response_serializer,
        )
    return grpc.unary_unary_rpc_method_handler(
        make(handler.unary_unary),  # type: ignore[arg-type]
        request_deserializer=decode,
        response_serializer=handler.response_serializer,
    )


class _Undecodable:
    """Stands in for a request whose bytes are not a valid message of the RPC's type."""


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any]:
    # gRPC answers INTERNAL when deserialization raises; a malformed request is the client's
    # error, so decode failures become a marker that the behavior turns into INVALID_ARGUMENT.
    def decode(data: bytes) -> Any:
        if deserializer is None:
            return data
        try:
            return deserializer(data)
        except Exception:
            return _Undecodable()

    return decode


def _metadata(context: grpc.aio.ServicerContext) -> dict[str, str]:
    return {
        key: value for key, value in (context.invocation_metadata() or ()) if isinstance(value, str)
    }


def _peer_ip(peer: str) -> str:
    match = _PEER.match(peer or "")
    if match is None:
        return "unknown"
    return match.group("v4") or match.group("v6") or "unknown"


def _is_dependency_outage(exc: BaseException) -> bool:
    """True for errors that mean PostgreSQL or Redis is unreachable, not a bug."""
    if isinstance(
        exc, (OperationalError, PoolTimeoutError, RedisConnectionError, RedisTimeoutError)
    ):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (ConnectionError, TimeoutError, OSError))


class _WrappingInterceptor(grpc.aio.ServerInterceptor):
    """Applies `wrap` to unary-unary handlers and to our contracts' server- and client-streaming
    ones (`streaming`: the methods with a declared policy); passes the rest through.

    gRPC asks the interceptors for a handler on every call; the wrapped handler of a method is
    built once and reused (profiling showed rebuilding it per call as a visible cost).
    """

    def __init__(self, streaming: frozenset[str] = frozenset()) -> None:
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}
        self._streaming = streaming

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or handler.stream_stream is not None:
            return handler
        if handler.unary_unary is None and method not in self._streaming:
            return handler
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self.wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """The handler to serve `method` with."""
        raise NotImplementedError


class RequestContextInterceptor(_WrappingInterceptor):
    """Outermost: request id, client IP, metrics, the access log and the one error mapping."""

    def __init__(self, *, service: str, streaming: frozenset[str] = frozenset()) -> None:
        super().__init__(streaming)
        self._service = service

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """Adds request context, metrics, the access log and error mapping."""
        return _wrap(
            handler,
            lambda inner: self._behavior(method, inner),
            _tolerant(handler.request_deserializer),
        )

    def _behavior(self, method: str, inner: Behavior) -> Behavior:
        grpc_service, grpc_method = split_method(method)
        labels = ("stream" if method in self._streaming else "unary", grpc_service, grpc_method)
        in_flight = GRPC_IN_FLIGHT.labels(labels[0], grpc_service)  # looked up once per method

        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
            metadata = _metadata(context)
            supplied_id = metadata.get("x-request-id", "")
            request_id = supplied_id if _REQUEST_ID.match(supplied_id) else new_request_id()
            # Envoy overwrites x-bw-client-ip with the address it saw; direct callers are on the
            # private network, where the peer address is the truth.
            client_ip = metadata.get("x-bw-client-ip") or _peer_ip(context.peer())
            state = begin_request(request_id, method, client_ip)
            state.response_headers["x-request-id"] = request_id
            GRPC_STARTED.labels(*labels).inc()
            in_flight.inc()
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                if isinstance(request, _Undecodable):
                    raise errors.InvalidArgument.one(
                        "request", "is not a valid protobuf message for this method"
                    )
                response = await inner(request, context)
                if not state.headers_sent:
                    await context.send_initial_metadata(tuple(state.response_headers.items()))
                return response
            except errors.DomainError as exc:
                code, status = domain_error_status(
                    exc, service=self._service, request_id=request_id
                )
                if exc.http_status is not None:
                    state.response_headers["x-http-status"] = str(exc.http_status)
                await self._abort(context, code, status, state.response_headers)
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception as exc:
                if isinstance(exc, grpc.aio.AbortError):
                    raise
                if _is_dependency_outage(exc):
                    log.warning("dependency_unavailable", method=method, error=type(exc).__name__)
                    code, status = domain_error_status(
                        errors.Unavailable(
                            "a dependency is temporarily unavailable; retry shortly",
                            reason="DEPENDENCY_UNAVAILABLE",
                        ),
                        service=self._service,
                        request_id=request_id,
                    )
                else:
                    log.exception("unhandled_error", method=method)
                    report_rpc_error(
                        exc,
                        service=self._service,
                        method=method,
                        request_id=request_id,
                        metadata=metadata,
                    )
                    code = grpc.StatusCode.INTERNAL
                    status = internal_status(service=self._service, request_id=request_id)
                await self._abort(context, code, status, state.response_headers)
            finally:
                in_flight.dec()
                elapsed = time.perf_counter() - started
                GRPC_HANDLED.labels(*labels, code.name).inc()
                GRPC_HANDLING_SECONDS.labels(*labels).observe(elapsed)
                principal = state.principal
                log.info(
                    "rpc",
                    method=method,
                    code=code.name,
                    duration_ms=round(elapsed * 1000, 3),
                    client_ip=client_ip,
                    principal=f"{principal.kind.value}:{principal.id}" if principal else None,
                )

        return behavior

    @staticmethod
    async def _abort(
        context: grpc.aio.ServicerContext,
        code: grpc.StatusCode,
        status: Any,
        headers: Mapping[str, str],
    ) -> None:
        rich = rpc_status.to_status(status)
        await context.abort(
            code, status.message, trailing_metadata=tuple(headers.items()) + rich.trailing_metadata
        )


class AuthInterceptor(_WrappingInterceptor):
    """Resolves the bearer credential and enforces each RPC's declared access.

    A request whose credential is refused is charged to its IP's public bucket (the anonymous
    requests' limit): bad keys cost a lookup each, and without this nothing would bound them.
    Past the limit the answer is RESOURCE_EXHAUSTED instead of UNAUTHENTICATED.
    """

    def __init__(
        self,
        *,
        authenticator: Authenticator,
        policies: Mapping[str, MethodPolicy],
        limiter: RateLimiter | None = None,
        failures_per_ip: int = 0,
        streaming: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(streaming)
        self._authenticator = authenticator
        self._policies = policies
        self._limiter = limiter
        self._failures_per_ip = failures_per_ip

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """Authenticates and checks the method's access policy before the handler runs."""
        policy = self._policies.get(method)
        return _wrap(handler, lambda inner: self._behavior(policy, inner))

    def _behavior(self, policy: MethodPolicy | None, inner: Behavior) -> Behavior:
        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if policy is None:
                # Deny by default: an RPC without a declared policy is never served.
                raise errors.PermissionDenied(
                    "this method is not available", reason="METHOD_DENIED"
                )
            try:
                token = _bearer(_metadata(context).get("authorization"))
                principal = await self._authenticator.authenticate(token) if token else None
            except errors.Unauthenticated:
                await self._charge_failure()
                raise
            state = _state()
            state.principal = principal
            if principal is not None and principal.key_deprecated:
                set_response_header("x-bw-key-deprecated", "true")
            _require(policy.access, principal)
            return await inner(request, context)

        return behavior

    async def _charge_failure(self) -> None:
        if self._limiter is None or not self._failures_per_ip:
            return
        decision = await self._limiter.hit(
            f"public:{_state().client_ip}", limit=self._failures_per_ip
        )
        if decision is not None and not decision.allowed:
            raise _exhausted(decision, "public", "public requests per IP (a refused key counts)")


def _exhausted(decision: Decision, bucket_kind: str, subject: str) -> errors.ResourceExhausted:
    """The error for a refused request, its X-RateLimit-*/Retry-After headers already set."""
    for name, value in decision.headers().items():
        set_response_header(name, value)
    return errors.ResourceExhausted(
        f"rate limit exceeded: {decision.limit} {subject} a minute",
        retry_after_seconds=decision.retry_after_seconds,
        violations=[
            errors.QuotaViolation(
                subject=bucket_kind, description=f"{decision.limit} {subject} a minute"
            )
        ],
    )


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthenticated(
            "the authorization header must be 'Bearer <api key>'", reason="AUTHORIZATION_MALFORMED"
        )
    return token.strip()


def _require(access: Access, principal: Any) -> None:
    if access is Access.PUBLIC:
        return
    if principal is None:
        if access is Access.HUMAN:
            raise errors.Unauthenticated(
                "this method needs a human's access token: send 'authorization: Bearer <token>'",
                reason="TOKEN_MISSING",
            )
        raise errors.Unauthenticated(
            "this method needs an API key: send 'authorization: Bearer <api key>'",
            reason="API_KEY_MISSING",
        )
    needed = {
        Access.AGENT: PrincipalKind.AGENT,
        Access.HUMAN: PrincipalKind.HUMAN,
        Access.OPERATOR: PrincipalKind.OPERATOR,
        Access.INTERNAL: PrincipalKind.INTERNAL,
    }[access]
    if principal.kind is not needed:
        raise errors.PermissionDenied(
            f"this method needs {'a' if needed is PrincipalKind.HUMAN else 'an'} {needed.value} "
            "credential",
            reason=f"{needed.name}_REQUIRED",
        )


def _state() -> RequestState:
    state = current()
    assert state is not None, "RequestContextInterceptor must run first"
    return state


class RateLimitInterceptor(_WrappingInterceptor):
    """Draws each request from its buckets; X-RateLimit-* headers on every limited response."""

    def __init__(
        self,
        *,
        limiter: RateLimiter,
        policies: Mapping[str, MethodPolicy],
        auth_per_ip: int,
        public_per_ip: int,
        content_per_agent: int,
        streaming: frozenset[str] = frozenset(),
        auth_exempt_ips: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(streaming)
        self._limiter = limiter
        self._policies = policies
        self._auth_per_ip = auth_per_ip
        self._public_per_ip = public_per_ip
        self._content_per_agent = content_per_agent
        self._auth_exempt_ips = auth_exempt_ips

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """Draws from the method's buckets before the handler runs."""
        policy = self._policies.get(method)
        if policy is None or policy.rate is RateClass.NONE:
            return handler
        return _wrap(handler, lambda inner: self._behavior(method, policy, inner))

    def _buckets(self, policy: MethodPolicy) -> list[tuple[str, int, str]]:
        state = _state()
        principal = state.principal
        if policy.rate is RateClass.AUTH_IP:
            if state.client_ip in self._auth_exempt_ips:
                return []
            return [(f"auth:{state.client_ip}", self._auth_per_ip, "auth requests per IP")]
        if principal is None:
            return [(f"public:{state.client_ip}", self._public_per_ip, "public requests per IP")]
        if principal.kind is PrincipalKind.HUMAN:
            limit = principal.rate_limit_per_minute or 120
            return [(f"human:{principal.id}", limit, "requests per human")]
        if principal.kind is not PrincipalKind.AGENT:
            return []  # operators and services are trusted callers
        buckets = [
            (f"agent:{principal.id}", principal.rate_limit_per_minute or 60, "requests per agent")
        ]
        if policy.creation:
            buckets.append(
                (f"create:{principal.id}", self._content_per_agent, "content creations per agent")
            )
        return buckets

    async def _window(self, method: str, window: tuple[int, int]) -> None:
        """The RPC's own bucket per client IP (`MethodPolicy.window`)."""
        limit, seconds = window
        name = method.rsplit("/", 1)[-1]
        decision = await self._limiter.hit(
            f"window:{method}:{_state().client_ip}", limit=limit, period_seconds=seconds
        )
        if decision is not None and not decision.allowed:
            for header, value in decision.headers().items():
                set_response_header(header, value)
            subject = f"{name} calls per IP every {seconds} s"
            raise errors.ResourceExhausted(
                f"rate limit exceeded: {limit} {subject}",
                retry_after_seconds=decision.retry_after_seconds,
                violations=[
                    errors.QuotaViolation(subject="window", description=f"{limit} {subject}")
                ],
            )

    def _behavior(self, method: str, policy: MethodPolicy, inner: Behavior) -> Behavior:
        async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if policy.window is not None and _state().client_ip not in self._auth_exempt_ips:
                await self._window(method, policy.window)
            buckets = self._buckets(policy)
            limits = [(bucket, limit) for bucket, limit, _ in buckets]
            decisions = await self._limiter.hit_all(limits)
            shown: Decision | None = None
            for (bucket, _, subject), decision in zip(buckets, decisions or (), strict=False):
                if shown is None or decision.remaining < shown.remaining or not decision.allowed:
                    shown = decision
                if not decision.allowed:
                    raise _exhausted(decision, bucket.split(":", 1)[0], subject)
            if shown is not None:
                for name, value in shown.headers().items():
                    set_response_header(name, value)
            return await inner(request, context)

        return behavior
