"""Renders the Envoy front door: gRPC and transcoded JSON on one port, routed per gRPC service."""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.registry import REGISTRY, Registry
from tooling.edge.admin_allowlist import admin_methods, rbac_filter, validate_cidrs
from tooling.edge.tls import EdgeTls, downstream_transport_socket

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DESCRIPTOR_SET = REPO_ROOT / "gen" / "descriptor.pb"
COMPOSE_DESCRIPTOR_SET = "/etc/envoy/descriptor.pb"
COMPOSE_CONFIG_PATH = REPO_ROOT / "envoy" / "envoy.compose.yaml"
COMPOSE_TLS_CERT_FILE = "/etc/envoy/tls/tls.crt"
COMPOSE_TLS_KEY_FILE = "/etc/envoy/tls/tls.key"
"""Where `--tls` expects the certificate pair inside the Envoy container (a read-only mount)."""
# Inside the compose network Envoy must accept connections from the published port mapping.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104

READINESS_SERVICE = "betterworld.common.v1.ReadinessService"
HEALTH_SERVICE = "grpc.health.v1.Health"
REFLECTION_SERVICES = (
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
)
COMMON_GRPC_SERVICES = (READINESS_SERVICE, HEALTH_SERVICE, *REFLECTION_SERVICES)
"""Served by every upstream; Envoy sends them to the spec's readiness upstream."""

MIB = 1024 * 1024
# On every response: an API answers JSON, files and event streams, never pages to frame or
# scripts to run, so browsers get the strictest policy.
SECURITY_HEADERS = {
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}
UPLOAD_FRAMING_BYTES = 32 * 1024
"""Envoy's body limit on upload routes is the service's message limit less this: a little above
the file limit itself, which the service enforces to the byte (Envoy refuses what is clearly
too large before the service sees it; its own accounting is a few bytes off the raw body)."""
DEFAULT_CORS_ORIGINS = ("http://localhost:3000", "http://127.0.0.1:3000")

# Response headers the services set as metadata and browsers may read (DESIGN.md §5).
CORS_EXPOSE_HEADERS = (
    "x-request-id",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "retry-after",
    "x-bw-key-deprecated",
)
CORS_ALLOW_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
CORS_ALLOW_HEADERS = ("authorization", "content-type", "x-request-id")

# gRPC codes (google.rpc.Code) for the HTTP statuses Envoy itself produces, so its local
# replies have the same JSON shape as a service error transcoded from google.rpc.Status.
LOCAL_REPLY_GRPC_CODES: Mapping[int, int] = {
    400: 3,  # INVALID_ARGUMENT: bad JSON, unknown query parameter
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND: no API method at this path
    405: 12,  # UNIMPLEMENTED
    408: 4,  # DEADLINE_EXCEEDED: request headers/body too slow
    413: 8,  # RESOURCE_EXHAUSTED: body over the limit (what gRPC says for oversized messages)
    429: 8,  # RESOURCE_EXHAUSTED
    431: 3,  # INVALID_ARGUMENT: request headers too large
    500: 13,  # INTERNAL
    501: 12,  # UNIMPLEMENTED
    502: 14,  # UNAVAILABLE
    503: 14,  # UNAVAILABLE: no healthy upstream, overflow
    504: 4,  # DEADLINE_EXCEEDED: route timeout
}
UNKNOWN_GRPC_CODE = 2
# Stable ErrorInfo reasons of Envoy's own replies, by HTTP status.
LOCAL_REPLY_REASONS: Mapping[int, str] = {
    400: "MALFORMED_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ROUTE_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    413: "BODY_TOO_LARGE",
    429: "RATE_LIMITED",
    431: "HEADERS_TOO_LARGE",
    500: "EDGE_INTERNAL",
    501: "NOT_IMPLEMENTED",
    502: "UPSTREAM_UNREACHABLE",
    503: "SERVICE_UNAVAILABLE",
    504: "UPSTREAM_TIMEOUT",
}

RETRY_ON = "unavailable,reset,connect-failure"

_GRPC_CONTENT_TYPE = {
    "name": "content-type",
    "string_match": {"prefix": "application/grpc"},
}
_NOT_GRPC_CONTENT_TYPE = {
    **_GRPC_CONTENT_TYPE,
    "invert_match": True,
    # A GET has no content-type, and an absent header never matches, inverted or not.
    "treat_missing_header_as_empty": True,
}

# DESIGN.md §8: a servicer marks creations (201) and "not ready" (503) with initial metadata.
# Only JSON responses take the marker as their status: on a gRPC response it breaks clients.
# Only a 200 is replaced, so an error status the transcoder derived from grpc-status stands
# (a servicer may send the marker and then fail). JSON responses also lose the gRPC headers
# the transcoder copies from the trailers (grpc-status: 0 and friends): noise for web clients.
LUA_STATUS_MARKER = """\
function envoy_on_response(handle)
  local headers = handle:headers()
  local marker = headers:get("x-http-status")
  headers:remove("x-http-status")
  local content_type = headers:get("content-type") or ""
  if string.sub(content_type, 1, 16) ~= "application/json" then
    return
  end
  headers:remove("grpc-status")
  headers:remove("grpc-message")
  headers:remove("grpc-accept-encoding")
  local status = headers:get(":status") or ""
  -- A success may say which 2xx it is (201); an error may refine its 4xx (409 for a conflict).
  if marker ~= nil and string.match(marker, "^[2-5]%d%d$") ~= nil
      and (status == "200" or (string.sub(status, 1, 1) == "4"
        and string.sub(marker, 1, 1) == "4")) then
    headers:replace(":status", marker)
  end
end
"""


READINESS_METHOD = f"/{READINESS_SERVICE}/GetReadiness"


@dataclass(frozen=True)
class Upstream:
    """One service process group Envoy forwards to."""

    name: str
    """Cluster name, also the service name (e.g. "agent")."""
    host: str
    """IP literal (static cluster) or DNS name (strict DNS: every A record is a host)."""
    ports: tuple[int, ...]
    """gRPC ports on `host`, one per process of the service (`serve --processes N`)."""
    grpc_services: tuple[str, ...]
    """Fully-qualified gRPC services routed here, besides the common ones every upstream has."""


@dataclass(frozen=True, kw_only=True)
class EnvoySpec:
    """Everything that varies between renderings of the front-door config."""

    listen_host: str = "127.0.0.1"
    """Address of the single listener (HTTP/1.1 and h2c)."""
    listen_port: int = 8080
    """Port of the single listener."""
    admin_host: str = "127.0.0.1"
    """Address of Envoy's admin interface; keep it private."""
    admin_port: int = 9901
    """Port of Envoy's admin interface."""
    descriptor_set: str
    """Path, as Envoy sees it, of the descriptor set (gen/descriptor.pb) the transcoder loads."""
    upstreams: tuple[Upstream, ...]
    """The services behind Envoy; every one is health-checked and counts for /health."""
    readiness_upstream: str | None = None
    """Upstream that answers /ready, health and reflection; the first upstream when None."""
    cors_allowed_origins: tuple[str, ...] = ()
    """Browser origins (exact, e.g. "https://app.example.org") allowed by CORS."""
    request_timeout_s: float = 15.0
    """Route timeout for unary RPCs (gRPC and JSON alike) unless route_timeouts says otherwise."""
    route_timeouts: tuple[tuple[str, float], ...] = ()
    """Overrides: (`/package.Service/` or `/package.Service/Method`, seconds); 0 disables."""
    idempotent_methods: tuple[str, ...] = (READINESS_METHOD,)
    """Read-only RPCs (`/package.Service/Method`) retried on unavailable/reset/connect-failure."""
    num_retries: int = 2
    """Retries for idempotent RPCs, health and reflection."""
    max_request_bytes: int = MIB
    """Largest JSON request body; larger ones get 413. gRPC limits are the services' own."""
    upload_routes: tuple[tuple[str, int], ...] = ()
    """(HTTP path template, body limit in bytes) of the routes whose body is a raw file."""
    access_log: bool = True
    """Write one JSON access-log line per request to Envoy's stdout."""
    tls: EdgeTls | None = None
    """Serve HTTPS and gRPC over TLS (ALPN h2, http/1.1) with this certificate; plain
    connections then fail. None: HTTP/1.1 and h2c without TLS."""
    admin_allow_cidrs: tuple[str, ...] = ()
    """Client networks allowed to reach the admin RPCs; others get 403. Empty: no limit."""
    admin_methods: tuple[str, ...] = ()
    """gRPC paths of the admin RPCs (those bound under /api/v1/admin/) the allow-list guards."""

    def __post_init__(self) -> None:
        names = [upstream.name for upstream in self.upstreams]
        if not names:
            raise ValueError("at least one upstream is needed")
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate upstream names: {names}")
        if self.readiness_upstream is not None and self.readiness_upstream not in names:
            raise ValueError(f"readiness_upstream {self.readiness_upstream!r} is not an upstream")
        owners: dict[str, str] = {}
        for upstream in self.upstreams:
            if not upstream.ports or len(set(upstream.ports)) != len(upstream.ports):
                raise ValueError(
                    f"upstream {upstream.name!r} needs distinct ports, not {upstream.ports}"
                )
            for service in upstream.grpc_services:
                if service in COMMON_GRPC_SERVICES or service in owners:
                    raise ValueError(f"gRPC service {service} is routed twice")
                owners[service] = upstream.name
        # Health and reflection have fixed routes (retried, no timeout: they are streams).
        unary = set(owners) | {READINESS_SERVICE}
        for method in self.idempotent_methods:
            if _service_of(method) not in unary or method.count("/") != 2 or method[-1] == "/":
                raise ValueError(f"idempotent method {method!r} is not a routed /Service/Method")
        for path, seconds in self.route_timeouts:
            if _service_of(path) not in unary or seconds < 0 or path.count("/") != 2:
                raise ValueError(f"route timeout {path!r}={seconds} is not for a routed service")
        if self.request_timeout_s <= 0 or self.max_request_bytes <= 0 or self.num_retries < 0:
            raise ValueError("timeouts, body limit and retries must be positive")
        validate_cidrs(self.admin_allow_cidrs)

    @property
    def readiness_cluster(self) -> str:
        """Cluster that answers the common services (readiness, health, reflection).

        It is the readiness upstream's *ops* cluster: the same hosts without active health
        checks, so that during an outage /ready still reaches a service and reports which
        dependency failed instead of Envoy's "no healthy upstream".
        """
        return ops_cluster_name(self.readiness_upstream or self.upstreams[0].name)


def local_spec(
    *,
    service_ports: Mapping[str, int | Sequence[int]] | None = None,
    listen_port: int = 8080,
    admin_port: int = 9901,
    host: str = "127.0.0.1",
    descriptor_set: str | Path = DEFAULT_DESCRIPTOR_SET,
    cors_allowed_origins: tuple[str, ...] = DEFAULT_CORS_ORIGINS,
    request_timeout_s: float = 15.0,
    access_log: bool = True,
    tls: EdgeTls | None = None,
    admin_allow_cidrs: tuple[str, ...] = (),
    registry: Registry = REGISTRY,
) -> EnvoySpec:
    """Spec for the local stack, all on ``host``; ``service_ports`` (name: gRPC port, or the
    ports of its processes) picks the services and defaults to the agent service alone."""
    ports = dict(service_ports) if service_ports is not None else {"agent": 50051}
    return _registry_spec(
        registry,
        {
            name: (host, (port,) if isinstance(port, int) else tuple(port))
            for name, port in ports.items()
        },
        listen=(host, listen_port),
        admin=(host, admin_port),
        descriptor_set=str(descriptor_set),
        cors_allowed_origins=cors_allowed_origins,
        request_timeout_s=request_timeout_s,
        access_log=access_log,
        tls=tls,
        admin_allow_cidrs=admin_allow_cidrs,
    )


def compose_spec(
    services: Sequence[str] | None = None,
    *,
    cors_allowed_origins: tuple[str, ...] = DEFAULT_CORS_ORIGINS,
    tls: EdgeTls | None = None,
    admin_allow_cidrs: tuple[str, ...] = (),
    registry: Registry = REGISTRY,
) -> EnvoySpec:
    """Spec for docker-compose: upstreams by compose service name on their default ports
    (every registered service unless `services` picks some); `tls` paths are the container's."""
    names = registry.names if services is None else tuple(services)
    return _registry_spec(
        registry,
        {name: (name, (registry.get(name).port,)) for name in names},
        listen=(ALL_INTERFACES, 8080),
        admin=(ALL_INTERFACES, 9901),
        descriptor_set=COMPOSE_DESCRIPTOR_SET,
        cors_allowed_origins=cors_allowed_origins,
        request_timeout_s=15.0,
        access_log=True,
        tls=tls,
        admin_allow_cidrs=admin_allow_cidrs,
    )


def _registry_spec(
    registry: Registry,
    addresses: Mapping[str, tuple[str, tuple[int, ...]]],
    *,
    listen: tuple[str, int],
    admin: tuple[str, int],
    descriptor_set: str,
    cors_allowed_origins: tuple[str, ...],
    request_timeout_s: float,
    access_log: bool,
    tls: EdgeTls | None,
    admin_allow_cidrs: tuple[str, ...],
) -> EnvoySpec:
    upstreams = tuple(
        Upstream(
            name=name, host=host, ports=ports, grpc_services=registry.get(name).routed_services
        )
        for name, (host, ports) in addresses.items()
    )
    idempotent = tuple(m for name in addresses for m in registry.get(name).read_only_methods)
    streams = tuple(
        (m, 0.0) for name in addresses for m in registry.get(name).server_streaming_methods
    )
    uploads = tuple(
        (path, registry.get(name).max_message_bytes - UPLOAD_FRAMING_BYTES)
        for name in addresses
        for path in registry.get(name).upload_paths
    )
    return EnvoySpec(
        listen_host=listen[0],
        listen_port=listen[1],
        admin_host=admin[0],
        admin_port=admin[1],
        descriptor_set=descriptor_set,
        upstreams=upstreams,
        readiness_upstream="agent" if "agent" in addresses else None,
        cors_allowed_origins=cors_allowed_origins,
        request_timeout_s=request_timeout_s,
        idempotent_methods=(READINESS_METHOD, *idempotent),
        route_timeouts=streams,
        upload_routes=uploads,
        access_log=access_log,
        tls=tls,
        admin_allow_cidrs=admin_allow_cidrs,
        admin_methods=tuple(m for name in addresses for m in admin_methods(registry.get(name))),
    )


def render_envoy_config(spec: EnvoySpec) -> dict[str, Any]:
    """The complete bootstrap config (a JSON-able dict) for ``spec``."""
    return {
        "admin": {"address": _address(spec.admin_host, spec.admin_port)},
        "static_resources": {
            "listeners": [_listener(spec)],
            "clusters": [
                *(_cluster(upstream) for upstream in spec.upstreams),
                *(_cluster(upstream, ops=True) for upstream in spec.upstreams),
            ],
        },
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    # Without a limit Envoy warns at start-up; far above any real load.
                    "typed_config": _typed(
                        "envoy.extensions.resource_monitors.downstream_connections.v3."
                        "DownstreamConnectionsConfig",
                        max_active_downstream_connections=50000,
                    ),
                }
            ]
        },
    }


def dump(config: dict[str, Any]) -> str:
    """JSON text of ``config`` (Envoy reads it as YAML too), with a trailing newline."""
    return json.dumps(config, indent=2) + "\n"


def transcoded_services(spec: EnvoySpec) -> list[str]:
    """The gRPC services whose google.api.http bindings the transcoder serves."""
    services = {READINESS_SERVICE}
    for upstream in spec.upstreams:
        services.update(upstream.grpc_services)
    return sorted(services)


def _duration(seconds: float) -> str:
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{text}s"


def _address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _typed(type_name: str, **fields: Any) -> dict[str, Any]:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


def _service_of(path: str) -> str:
    return path.strip("/").split("/", 1)[0]


def _listener(spec: EnvoySpec) -> dict[str, Any]:
    manager: dict[str, Any] = _typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix="front_door",
        codec_type="AUTO",
        # The client address is the TCP peer: nothing in front of Envoy is trusted, so a
        # client-sent X-Forwarded-For never becomes the address (services read x-bw-client-ip).
        use_remote_address=True,
        xff_num_trusted_hops=0,
        generate_request_id=True,
        preserve_external_request_id=True,
        always_set_request_id_in_response=True,
        normalize_path=True,
        # Request headers (the URL included) up to 16 KiB; larger is 431. The services accept
        # 64 KiB of metadata, so whatever Envoy forwards (plus x-envoy-original-path) fits.
        max_request_headers_kb=16,
        merge_slashes=True,
        route_config=_route_config(spec),
        http_filters=_http_filters(spec),
        local_reply_config=_local_reply_config(),
    )
    if spec.access_log:
        manager["access_log"] = [_access_log()]
    chain: dict[str, Any] = {
        "filters": [
            {
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": manager,
            }
        ]
    }
    if spec.tls is not None:
        chain["transport_socket"] = downstream_transport_socket(spec.tls)
    return {
        "name": "front_door",
        "address": _address(spec.listen_host, spec.listen_port),
        "filter_chains": [chain],
    }


def _http_filters(spec: EnvoySpec) -> list[dict[str, Any]]:
    # Decode order is top to bottom, encode order bottom to top: the Lua marker filter sits
    # before the transcoder so that on the response it runs after the transcoder has turned
    # the gRPC response into JSON (content-type application/json, status from grpc-status).
    return [
        {
            "name": "envoy.filters.http.health_check",
            "typed_config": _typed(
                "envoy.extensions.filters.http.health_check.v3.HealthCheck",
                pass_through_mode=False,
                headers=[{"name": ":path", "string_match": {"exact": "/health"}}],
                cluster_min_healthy_percentages={
                    upstream.name: {"value": 100} for upstream in spec.upstreams
                },
            ),
        },
        {
            "name": "envoy.filters.http.cors",
            "typed_config": _typed("envoy.extensions.filters.http.cors.v3.Cors"),
        },
        {
            "name": "envoy.filters.http.lua",
            "typed_config": _typed(
                "envoy.extensions.filters.http.lua.v3.Lua",
                default_source_code={"inline_string": LUA_STATUS_MARKER},
            ),
        },
        {
            # Runs on the route matched *before* transcoding: JSON requests hit the catch-all
            # route (buffer on, 413 over the limit); gRPC requests hit a gRPC route, where the
            # buffer is disabled because reflection and health Watch are streams.
            "name": "envoy.filters.http.buffer",
            "typed_config": _typed(
                "envoy.extensions.filters.http.buffer.v3.Buffer",
                max_request_bytes=spec.max_request_bytes,
            ),
        },
        {
            "name": "envoy.filters.http.grpc_json_transcoder",
            "typed_config": _transcoder(spec),
        },
        # After the transcoder: it judges JSON requests by the RPC they became.
        *(
            [rbac_filter(spec.admin_allow_cidrs, spec.admin_methods)]
            if spec.admin_allow_cidrs
            else []
        ),
        {
            "name": "envoy.filters.http.router",
            # No x-envoy-upstream-service-time etc. in responses.
            "typed_config": _typed(
                "envoy.extensions.filters.http.router.v3.Router",
                suppress_envoy_headers=True,
            ),
        },
    ]


def _transcoder(spec: EnvoySpec) -> dict[str, Any]:
    return _typed(
        "envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
        proto_descriptor=spec.descriptor_set,
        services=transcoded_services(spec),
        print_options={
            "add_whitespace": False,
            "always_print_primitive_fields": True,
            "always_print_enums_as_ints": False,
            "preserve_proto_field_names": False,
            # Server streams (the activity feed) as Server-Sent Events, which a browser follows
            # with EventSource: `data: {json}` and a blank line per message. Raw file downloads
            # (HttpBody) are not affected.
            "stream_sse_style_delimited": True,
        },
        # The default: after rewriting a JSON request into a gRPC one (POST /pkg.Service/Method,
        # content-type application/grpc) the transcoder clears the route cache, so the route is
        # chosen on the gRPC path, by the same routes as native gRPC calls.
        match_incoming_request_route=False,
        auto_mapping=False,
        # An unknown query parameter is a client bug: reject it (400, JSON body) instead of
        # silently dropping it or, the filter's default, forwarding the request untranscoded.
        ignore_unknown_query_parameters=False,
        convert_grpc_status=True,
        case_insensitive_enum_parsing=True,
        query_param_unescape_plus=True,
        request_validation_options={
            "reject_unknown_method": True,
            "reject_unknown_query_parameters": True,
            "reject_binding_body_field_collisions": True,
        },
    )


def _route_config(spec: EnvoySpec) -> dict[str, Any]:
    return {
        "name": "front_door",
        "virtual_hosts": [
            {
                "name": "betterworld",
                "domains": ["*"],
                "routes": _routes(spec),
                # Services trust only this header for the client address (rate limits per IP).
                "request_headers_to_add": [
                    {
                        "header": {
                            "key": "x-bw-client-ip",
                            "value": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
                        },
                        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                    }
                ],
                "typed_per_filter_config": {"envoy.filters.http.cors": _cors_policy(spec)},
                "response_headers_to_add": [
                    {
                        "header": {"key": name, "value": value},
                        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                    }
                    for name, value in SECURITY_HEADERS.items()
                ],
            }
        ],
    }


def _cors_policy(spec: EnvoySpec) -> dict[str, Any]:
    return _typed(
        "envoy.extensions.filters.http.cors.v3.CorsPolicy",
        allow_origin_string_match=[{"exact": origin} for origin in spec.cors_allowed_origins],
        allow_methods=",".join(CORS_ALLOW_METHODS),
        allow_headers=",".join(CORS_ALLOW_HEADERS),
        expose_headers=",".join(CORS_EXPOSE_HEADERS),
        max_age="600",
        # A preflight from any other origin is answered by Envoy without CORS headers (the
        # browser then blocks the call) rather than reaching the transcoder as an unknown method.
        forward_not_matching_preflights=False,
    )


def _routes(spec: EnvoySpec) -> list[dict[str, Any]]:
    # Route matching happens twice for a JSON request: first on the original request (the
    # route the CORS and buffer filters see), then, because the transcoder rewrites it into
    # POST /package.Service/Method with content-type application/grpc and clears the route
    # cache, again on the gRPC request (the route the router uses). So the gRPC routes serve
    # JSON and native gRPC alike, and the JSON route below only carries CORS and the buffer.
    #
    # Retries: after transcoding every request is a POST. The transcoder keeps the original
    # method in x-envoy-original-method, but a gRPC client can send that header itself (Envoy
    # does not strip it) and a gRPC read has no HTTP method at all; so read RPCs get exact
    # per-method routes with a retry policy, for both kinds of clients.
    timeouts = dict(spec.route_timeouts)
    cluster_of = {READINESS_SERVICE: spec.readiness_cluster}
    for upstream in spec.upstreams:
        cluster_of.update(dict.fromkeys(upstream.grpc_services, upstream.name))

    def timeout_for(path: str) -> float:
        default = timeouts.get(f"/{_service_of(path)}/", spec.request_timeout_s)
        return timeouts.get(path, default)

    idempotent = set(spec.idempotent_methods)
    methods = [*spec.idempotent_methods, *(p for p in timeouts if not p.endswith("/"))]
    routes = [
        _grpc_route(
            {"path": method},
            cluster_of[_service_of(method)],
            timeout_for(method),
            retry=method in idempotent,
            spec=spec,
        )
        for method in dict.fromkeys(methods)
    ]
    routes += [
        _grpc_route(
            {"prefix": f"/{service}/"},
            cluster_of[service],
            timeout_for(f"/{service}/"),
            retry=False,
            spec=spec,
        )
        for service in sorted(cluster_of)
    ]
    # Health (Check, and Watch that never ends) and reflection (a bidirectional stream) are
    # reads and streams: retried, no route timeout (the stream idle timeout still applies).
    routes += [
        _grpc_route({"prefix": f"/{service}/"}, spec.readiness_cluster, 0, retry=True, spec=spec)
        for service in (HEALTH_SERVICE, *REFLECTION_SERVICES)
    ]
    # Raw file uploads: the same, with the buffer raised to the service's own file limit, so
    # Envoy answers 413 as soon as a body passes it, before the service sees any of it.
    routes += [
        {
            "name": f"upload:{template}",
            "match": {
                "safe_regex": {"regex": _template_regex(template)},
                "headers": [_NOT_GRPC_CONTENT_TYPE],
            },
            "route": {
                "cluster": spec.readiness_cluster,
                "timeout": _duration(spec.request_timeout_s),
            },
            "typed_per_filter_config": {
                "envoy.filters.http.buffer": _typed(
                    "envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
                    buffer={"max_request_bytes": limit},
                )
            },
        }
        for template, limit in spec.upload_routes
    ]
    # Every non-gRPC request. The transcoder either rewrites it (and the router re-matches it
    # above) or rejects it (404/400), so this route never forwards anything; it exists because
    # the CORS filter only acts on a route with a route entry (not on a direct response).
    routes.append(
        {
            "name": "json",
            "match": {"prefix": "/", "headers": [_NOT_GRPC_CONTENT_TYPE]},
            "route": {
                "cluster": spec.readiness_cluster,
                "timeout": _duration(spec.request_timeout_s),
            },
        }
    )
    # gRPC calls to services Envoy does not route (internal services): 404, which gRPC
    # clients see as UNIMPLEMENTED.
    routes.append(
        {
            "name": "not_routed",
            "match": {"prefix": "/"},
            "direct_response": {"status": 404},
        }
    )
    return routes


def _template_regex(template: str) -> str:
    """`/api/v1/missions/{mission_id}/evidence` as a path regex (a variable is one segment)."""
    parts = re.split(r"\{[^}]*\}", template)
    return "^" + "[^/]+".join(re.escape(p) for p in parts) + "$"


def _grpc_route(
    match: dict[str, Any],
    cluster: str,
    timeout_s: float,
    *,
    retry: bool,
    spec: EnvoySpec,
) -> dict[str, Any]:
    action: dict[str, Any] = {"cluster": cluster, "timeout": _duration(timeout_s)}
    if retry and spec.num_retries:
        action["retry_policy"] = {
            "retry_on": RETRY_ON,
            "num_retries": spec.num_retries,
            "retry_host_predicate": [
                {
                    "name": "envoy.retry_host_predicates.previous_hosts",
                    "typed_config": _typed(
                        "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
                    ),
                }
            ],
            "host_selection_retry_max_attempts": 3,
        }
    return {
        "name": (match.get("path") or match["prefix"]).strip("/"),
        "match": {**match, "headers": [_GRPC_CONTENT_TYPE]},
        "route": action,
        "typed_per_filter_config": {
            "envoy.filters.http.buffer": _typed(
                "envoy.extensions.filters.http.buffer.v3.BufferPerRoute", disabled=True
            )
        },
    }


def _local_reply_config() -> dict[str, Any]:
    # Envoy decides once, on the request as it arrived, whether a local reply is a gRPC
    # trailers-only response; the mappers must not touch those (the JSON would land in
    # grpc-message). They see the current request headers, though, in which the transcoder
    # has already set content-type application/grpc: a transcoded request is recognised by the
    # x-envoy-original-path header the transcoder adds (Envoy strips it from client requests).
    not_grpc_request = {
        "or_filter": {
            "filters": [
                {"header_filter": {"header": _NOT_GRPC_CONTENT_TYPE}},
                {
                    "header_filter": {
                        "header": {
                            "name": "x-envoy-original-path",
                            "present_match": True,
                        }
                    }
                },
            ]
        }
    }

    def mapper(
        status: int,
        code: int,
        *,
        op: str = "EQ",
        message: str = "%LOCAL_REPLY_BODY%",
        extra: tuple[dict[str, Any], ...] = (),
    ) -> dict[str, Any]:
        status_filter = {
            "status_code_filter": {
                "comparison": {
                    "op": op,
                    "value": {
                        "default_value": status,
                        "runtime_key": f"bw.local_reply.{status}",
                    },
                }
            }
        }
        return {
            "filter": {"and_filter": {"filters": [status_filter, not_grpc_request, *extra]}},
            "body_format_override": {
                "json_format": {
                    "code": code,
                    "message": message,
                    # Like every service error (DESIGN.md §3), Envoy's own carry an ErrorInfo.
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": LOCAL_REPLY_REASONS.get(status, "EDGE_ERROR"),
                            "domain": "edge.betterworld",
                            "metadata": {"requestId": "%REQ(X-REQUEST-ID)%"},
                        }
                    ],
                }
            },
        }

    health = {"header_filter": {"header": {"name": ":path", "string_match": {"exact": "/health"}}}}
    return {
        "mappers": [
            # The health check filter's 503 has an empty body.
            mapper(
                503,
                14,
                message="an upstream cluster has no healthy host",
                extra=(health,),
            ),
            *(mapper(status, code) for status, code in LOCAL_REPLY_GRPC_CODES.items()),
            mapper(400, UNKNOWN_GRPC_CODE, op="GE"),
        ]
    }


def _access_log() -> dict[str, Any]:
    return {
        "name": "envoy.access_loggers.stdout",
        "typed_config": _typed(
            "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            log_format={
                "json_format": {
                    "time": "%START_TIME%",
                    "request_id": "%REQ(X-REQUEST-ID)%",
                    "client_ip": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
                    "method": "%REQ(:METHOD)%",
                    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
                    "grpc_path": "%REQ(:PATH)%",
                    "protocol": "%PROTOCOL%",
                    "status": "%RESPONSE_CODE%",
                    "grpc_status": "%GRPC_STATUS_NUMBER%",
                    "flags": "%RESPONSE_FLAGS%",
                    "details": "%RESPONSE_CODE_DETAILS%",
                    "bytes_in": "%BYTES_RECEIVED%",
                    "bytes_out": "%BYTES_SENT%",
                    "duration_ms": "%DURATION%",
                    "upstream": "%UPSTREAM_HOST%",
                    "user_agent": "%REQ(USER-AGENT)%",
                }
            },
        ),
    }


def ops_cluster_name(upstream: str) -> str:
    """Name of the health-check-free cluster of an upstream."""
    return f"{upstream}_ops"


def _cluster(upstream: Upstream, *, ops: bool = False) -> dict[str, Any]:
    name = ops_cluster_name(upstream.name) if ops else upstream.name
    try:
        ipaddress.ip_address(upstream.host)
        discovery: dict[str, Any] = {"type": "STATIC"}
    except ValueError:
        # Every A record is a host: `docker compose up --scale agent=3` spreads the load.
        discovery = {"type": "STRICT_DNS", "dns_lookup_family": "V4_PREFERRED"}
    cluster: dict[str, Any] = {
        "name": name,
        **discovery,
        "connect_timeout": "1s",
        # Requests differ in cost (a create embeds, a cached list page does not): the host
        # with fewer requests in flight answers sooner.
        "lb_policy": "LEAST_REQUEST",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": _address(upstream.host, port)}}
                        for port in upstream.ports
                    ]
                }
            ],
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": _typed(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                explicit_http_config={"http2_protocol_options": {}},
            )
        },
        "health_checks": [
            {
                "timeout": "1s",
                "interval": "2s",
                # Without it an idle cluster is checked only once a minute.
                "no_traffic_interval": "2s",
                "unhealthy_threshold": 2,
                "healthy_threshold": 1,
                "grpc_health_check": {"service_name": ""},
            }
        ],
        # 0: never send traffic to hosts that fail health checks, even when all of them do.
        "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
        "outlier_detection": {
            "consecutive_5xx": 5,
            "base_ejection_time": "10s",
            "max_ejection_percent": 50,
        },
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_connections": 10000,
                    "max_pending_requests": 10000,
                    "max_requests": 10000,
                    # Retries may add at most 20 % to the requests in flight.
                    "retry_budget": {
                        "budget_percent": {"value": 20},
                        "min_retry_concurrency": 3,
                    },
                }
            ]
        },
    }
    if ops:
        # Readiness, health and reflection must reach the service even while it reports
        # NOT_SERVING, so this cluster neither health-checks nor ejects hosts.
        for key in ("health_checks", "common_lb_config", "outlier_detection"):
            del cluster[key]
    return cluster


def main(argv: Sequence[str] | None = None) -> int:
    """Print (or write) the compose rendering; `--services` picks the upstream set."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument(
        "--services", default=",".join(REGISTRY.names), help="comma-separated: agent,content"
    )
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    parser.add_argument(
        "--tls",
        action="store_true",
        help=f"serve TLS with {COMPOSE_TLS_CERT_FILE} and {COMPOSE_TLS_KEY_FILE} (mounted)",
    )
    parser.add_argument(
        "--admin-allow-cidrs",
        default="",
        help="comma-separated networks allowed to reach /api/v1/admin/ (default: any)",
    )
    args = parser.parse_args(argv)
    spec = compose_spec(
        tuple(args.services.split(",")),
        tls=EdgeTls(cert_file=COMPOSE_TLS_CERT_FILE, key_file=COMPOSE_TLS_KEY_FILE)
        if args.tls
        else None,
        admin_allow_cidrs=tuple(c.strip() for c in args.admin_allow_cidrs.split(",") if c.strip()),
    )
    text = dump(render_envoy_config(spec))
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
