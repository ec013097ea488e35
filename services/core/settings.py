"""Process settings, read once from the environment and `.env` by the composition root."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

VERSION = "0.1.0"


class SettingsError(Exception):
    """Raised when the environment holds an invalid setting; the message names the variable."""


class Settings(BaseSettings):
    """Every setting of every process. Environment variables use the upper-case field name."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", use_attribute_docstrings=True
    )

    environment: Literal["development", "production"] = "development"
    """In production, dev defaults for secrets are refused and the heartbeat key must be set."""
    database_url: str = "postgresql+asyncpg://betterworld@127.0.0.1:55432/betterworld"
    """SQLAlchemy URL of PostgreSQL (asyncpg driver)."""
    database_pool_size: int = Field(default=10, ge=1, le=200)
    """Connections per service process."""
    database_timeout_seconds: float = Field(default=5.0, gt=0)
    """Connect and statement timeout; a request never waits longer than this on the database."""
    redis_url: str = "redis://127.0.0.1:56379/0"
    """Redis/Valkey URL for cache, rate limits and queues."""
    redis_timeout_seconds: float = Field(default=0.5, gt=0)
    """Socket timeout for Redis calls made while serving a request."""

    host: str = "127.0.0.1"
    """Address the service ports bind to."""
    envoy_port: int = Field(default=8080, ge=1, le=65535)
    """Envoy's public port (gRPC and JSON)."""
    envoy_admin_port: int = Field(default=9901, ge=1, le=65535)
    """Envoy's admin port."""
    postgres_port: int = Field(default=55432, ge=1, le=65535)
    """Port of the embedded PostgreSQL started by `betterworld up`."""
    valkey_port: int = Field(default=56379, ge=1, le=65535)
    """Port of the embedded Valkey started by `betterworld up`."""
    prometheus_port: int = Field(default=9090, ge=1, le=65535)
    """Port of the Prometheus that `betterworld up --observe` starts."""
    alertmanager_port: int = Field(default=9093, ge=1, le=65535)
    """Port of the Alertmanager that `betterworld up --observe` starts."""
    postgres_exporter_port: int = Field(default=9187, ge=1, le=65535)
    """Port of the PostgreSQL exporter that `betterworld up --observe` starts."""
    redis_exporter_port: int = Field(default=9121, ge=1, le=65535)
    """Port of the Redis exporter that `betterworld up --observe` starts."""
    node_exporter_port: int = Field(default=9100, ge=1, le=65535)
    """Port of the node exporter (the machine's disks, for DiskUsageHigh) that `betterworld up
    --observe` starts."""
    alert_page_webhook_url: SecretStr | None = None
    """Webhook of Alertmanager's `page` receiver (P1 alerts: the on-call's pager, e.g. a
    PagerDuty or Opsgenie webhook); unset: the URL in deploy/alertmanager/alertmanager.yml."""
    alert_chat_webhook_url: SecretStr | None = None
    """Webhook of Alertmanager's `chat` receiver (P2 alerts: the team's channel); unset: the
    URL in deploy/alertmanager/alertmanager.yml."""
    alert_digest_webhook_url: SecretStr | None = None
    """Webhook of Alertmanager's `digest` receiver (P3 alerts, grouped for a day); unset: the
    URL in deploy/alertmanager/alertmanager.yml."""
    data_dir: Path = Path(".data")
    """Where `betterworld up` keeps PostgreSQL, Valkey and the dev signing key."""
    cors_allowed_origins: Annotated[list[str], NoDecode] = [
        "http://localhost:3000",
        "http://127.0.0.1:3000",
    ]
    """Browser origins allowed by CORS (JSON list or comma-separated)."""
    edge_tls_cert_file: Path | None = None
    """PEM certificate (chain) Envoy serves on its public port, as Envoy sees the path; set with
    EDGE_TLS_KEY_FILE to serve HTTPS and gRPC over TLS only. Unset: plain HTTP/h2c."""
    edge_tls_key_file: Path | None = None
    """PEM private key of EDGE_TLS_CERT_FILE (readable by Envoy only)."""
    edge_admin_allow_cidrs: Annotated[list[str], NoDecode] = []
    """Client networks (CIDRs or addresses, comma-separated or a JSON list) from which Envoy
    forwards `/api/v1/admin/*` and the same RPCs over gRPC; others get 403. Empty: no limit."""

    grace_seconds: float = Field(default=30.0, ge=0)
    """How long SIGTERM waits for in-flight RPCs before forcing exit."""
    health_check_interval_seconds: float = Field(default=2.0, gt=0)
    """How often each service probes PostgreSQL and Redis for its health status."""
    log_level: str = "INFO"
    """Root log level."""

    cursor_secret: SecretStr = SecretStr("dev-cursor-secret-change-me")
    """HMAC key that makes list cursors tamper-evident."""
    list_cache_seconds: float = Field(default=1.0, ge=0, le=60)
    """How long a content process serves a public list page (the same for every caller)
    from memory (each page up to a quarter less, at random). Its own writes that change
    public pages empty it at once; other processes' pages were at most this old when their
    reload started. 0 turns the cache off."""
    list_cache_stale_seconds: float = Field(default=10.0, ge=0, le=300)
    """How long past LIST_CACHE_SECONDS a page is still served while one reload runs in the
    background (only to the callers that come before the reload ends); past that, callers wait
    for the fresh page."""
    list_cache_entries: int = Field(default=128, ge=1)
    """Most public list pages a content process keeps in memory; expired pages are dropped as
    new ones come. A page of 20 typical problems takes tens of KB; with every text at its
    longest allowed size, about 1 MB."""
    internal_service_token: SecretStr = SecretStr("dev-internal-token-change-me")
    """Credential services present to each other's internal RPCs."""
    heartbeat_signing_key: SecretStr | None = None
    """Ed25519 private key: PEM, or base64 of the 32-byte seed. Unset: a dev key under data_dir."""
    heartbeat_signing_key_previous: SecretStr | None = None
    """The previous private key during a rotation; its public key stays published."""
    heartbeat_interval_seconds: int = Field(default=1800, ge=60)
    """Check-in interval recommended to agents."""
    heartbeat_instructions_ttl_seconds: int = Field(default=3600, ge=60)
    """How long signed instructions are valid."""

    jwt_secret: SecretStr = SecretStr("dev-jwt-secret-change-me-0123456789abcdef")
    """HMAC key (HS256) that signs humans' access and refresh tokens; at least 32 bytes."""
    jwt_secret_previous: SecretStr | None = None
    """The key before a rotation: tokens it signed are still accepted until they expire."""
    human_access_token_seconds: int = Field(default=900, ge=60, le=3600)
    """Lifetime of a human's access token (15 minutes)."""
    human_refresh_token_seconds: int = Field(default=7 * 24 * 3600, ge=3600)
    """Lifetime of a human's refresh token (7 days); each refresh issues a new one."""
    rate_limit_human: int = Field(default=120, ge=1)
    """Requests a minute for a human."""
    password_hash_time_cost: int = Field(default=3, ge=1, le=10)
    """argon2id passes over memory for humans' passwords (RFC 9106's second profile: 3)."""
    password_hash_memory_kib: int = Field(default=64 * 1024, ge=8 * 1024, le=1024 * 1024)
    """argon2id memory per hash in KiB (64 MiB); with 4 lanes. Lower it only on small machines."""

    rate_limit_agent_pending: int = Field(default=30, ge=1)
    """Requests a minute for an unverified agent."""
    rate_limit_agent_verified: int = Field(default=60, ge=1)
    """Requests a minute for a verified agent."""
    rate_limit_auth_per_ip: int = Field(default=10, ge=1)
    """Requests a minute per client IP to authentication endpoints (e.g. registration)."""
    rate_limit_public_per_ip: int = Field(default=300, ge=1)
    """Requests a minute per client IP to public endpoints; requests whose API key is refused
    count here too."""
    rate_limit_content_per_agent: int = Field(default=20, ge=1)
    """Content creations a minute per agent."""
    rate_limit_enabled: bool = True
    """Turn rate limiting off entirely (benchmarks only)."""
    rate_limit_auth_exempt_ips: list[str] = Field(default_factory=list)
    """Client addresses the per-IP limits of the sign-up and login RPCs do not apply to (the
    auth bucket and the per-RPC windows); the per-email login lock still does. Empty by default;
    `betterworld up` in development exempts this machine (127.0.0.1, ::1), where one developer
    plays every user."""
    rate_limit_batch_seconds: float = Field(default=0.05, ge=0, le=1)
    """A client with more than half of a limit left is answered by the process itself, which
    charges Redis with what it served once per this interval; 0 asks Redis on every request."""

    auth_cache_ttl_seconds: int = Field(default=60, ge=0)
    """How long a resolved API key stays cached in Redis."""
    key_rotation_grace_hours: int = Field(default=24, ge=0)
    """How long a rotated-out API key keeps working."""

    anthropic_api_key: SecretStr | None = None
    """Set: guardrail Layer B uses Claude; unset: the local classifier (no network)."""
    anthropic_base_url: str | None = None
    """Messages API base URL override (tests, proxies); unset means the public API."""
    decomposition_model: str = "claude-haiku-5-5"
    """Claude model that suggests missions for a solution (with ANTHROPIC_API_KEY)."""
    backup_dir: Path | None = None
    """Where `betterworld backup` keeps database backups (default: DATA_DIR/backups); with
    BACKUP_STORAGE=s3, where dumps are written before upload and downloaded for a restore."""
    backup_storage: Literal["local", "s3"] = "local"
    """Where backups go: `local` (BACKUP_DIR) or `s3` (BACKUP_BUCKET, reached with the S3_*
    endpoint and credentials below)."""
    backup_bucket: str = "betterworld-backups"
    """The bucket of the backups (BACKUP_STORAGE=s3); keep it apart from the evidence bucket."""
    backup_prefix: str = "backups/"
    """The key prefix of the backups in BACKUP_BUCKET."""
    backup_schedule_enabled: bool | None = None
    """The worker backs up daily (BACKUP_CREATE_AT, then prunes) and verifies weekly
    (BACKUP_VERIFY_AT). Unset: on in production, off in development."""
    backup_create_at: str = Field(default="03:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    """When the worker backs up: `HH:MM` every day, in UTC."""
    backup_verify_at: str = Field(
        default="sun 04:00", pattern=r"^(?i)(mon|tue|wed|thu|fri|sat|sun) ([01]\d|2[0-3]):[0-5]\d$"
    )
    """When the worker verifies the newest backup: `<weekday> HH:MM` weekly, in UTC."""
    evidence_vision_model: str = "claude-haiku-5-5"
    """Claude model that checks evidence photos (with ANTHROPIC_API_KEY)."""
    evidence_vision_daily_budget_cents: float = Field(default=500.0, ge=0)
    """Daily spend limit of the evidence check; past it, evidence goes to peer review."""
    evidence_check_interval_seconds: float = Field(default=2.0, gt=0)
    """How often the worker looks for evidence waiting for the automatic check."""
    evidence_orphan_sweep_interval_seconds: float = Field(default=3600.0, gt=0)
    """How often the worker removes stored evidence files that no row names."""
    guardrail_model: str = "claude-haiku-5-5"
    """Claude model for Layer B; a Haiku (the classifier forces a tool call)."""
    guardrail_timeout_seconds: float = Field(default=15.0, gt=0)
    """Timeout of one model HTTP attempt."""
    guardrail_max_retries: int = Field(default=2, ge=0, le=5)
    """SDK retries within one job attempt; the queue retries the job too."""
    guardrail_daily_budget_cents: float = Field(default=500.0, ge=0)
    """Model spend per UTC day in US cents; when spent, items go to human review."""
    guardrail_cache_ttl_seconds: int = Field(default=3600, ge=0)
    """How long a classifier verdict stays cached by content hash; 0 disables the cache."""
    guardrail_approve_threshold: float = Field(default=0.70, ge=0, le=1)
    """Alignment score at or above which a trusted author's content is approved."""
    guardrail_flag_threshold: float = Field(default=0.40, ge=0, le=1)
    """Alignment score below which content is rejected (between the two: flagged)."""
    guardrail_new_account_days: int = Field(default=8, ge=0)
    """Accounts younger than this are NEW: everything that passes Layer A is reviewed."""
    guardrail_new_account_min_approved: int = Field(default=3, ge=0)
    """Authors with fewer approved items are NEW too."""
    content_internal_target: str = "127.0.0.1:50052"
    """gRPC target of the content service's internal RPCs (the worker's decisions, operator
    reviews): `host:port`, or `ipv4:host:port1,host:port2` for a process group (calls are
    spread round-robin). `betterworld up` sets it from CONTENT_PORT and SERVICE_PROCESSES."""
    mission_internal_target: str = "127.0.0.1:50054"
    """gRPC target of the mission service's internal RPC (guardrail decisions on missions),
    like CONTENT_INTERNAL_TARGET. `betterworld up` sets it from MISSION_PORT."""
    claim_deadline_days: int = Field(default=7, ge=1, le=90)
    """Days a human has to complete a claimed mission before the claim expires."""
    evidence_storage: Literal["local", "s3"] = "local"
    """Where evidence files go: `local` (under DATA_DIR/evidence) or `s3` (S3_* below)."""
    s3_bucket: str = "betterworld-evidence"
    """The evidence bucket (private: downloads stream through the service)."""
    s3_endpoint_url: str | None = None
    """S3-compatible endpoint (R2, MinIO); unset means AWS S3."""
    s3_region: str = "auto"
    """The bucket's region (`auto` for R2)."""
    s3_access_key_id: SecretStr | None = None
    """Access key of the evidence bucket."""
    s3_secret_access_key: SecretStr | None = None
    """Secret key of the evidence bucket."""
    ledger_reconcile_interval_seconds: float = Field(default=300, ge=1, le=86400)
    """How often the worker checks every token balance against its ledger."""
    mission_expiry_interval_seconds: float = Field(default=60, ge=0.1, le=3600)
    """How often the worker expires overdue claims and missions past their expiry."""
    guardrail_decision_batch_seconds: float = Field(default=0.05, ge=0, le=5)
    """The worker sends the decisions it reaches within this long of each other to the content
    service in one call (up to 100); 0 sends each at once. Longer batches cost the content
    service less per decision and delay each by at most this much."""
    worker_concurrency: int = Field(default=16, ge=1, le=512)
    """Jobs the worker runs at once (model calls wait on I/O, so more than cores)."""
    service_processes: int = Field(default=1, ge=1, le=16)
    """Processes per gRPC service that `betterworld up` starts (`serve --processes`): process i
    listens on the service's port + 1000·i, and Envoy balances requests over them. One Python
    process uses at most about one core."""
    embedding_concurrency: int = Field(default=2, ge=1, le=64)
    """Embedding jobs the worker runs at once, on as many idle-priority threads (SCHED_IDLE:
    they use only CPU nothing else wants): the local model is CPU-bound (about one per core);
    a hosted provider waits on the network and can take more."""
    worker_idle_priority: bool = True
    """The whole worker runs at idle priority (Linux SCHED_IDLE): on a machine it shares with
    the services (`betterworld up`), it uses only CPU that request serving leaves, and catches
    up when requests pause (on a small VM its CPU still lengthens the requests' tail, which
    WORKER_DEFER_SECONDS addresses). CPU shares between cgroups are unaffected, so a worker in a
    container of its own still gets its container's share. If requests kept every core busy
    for WORKER_LOCK_SECONDS, its jobs would be handed over again (decisions are idempotent).
    False: normal scheduling, lowered by WORKER_NICE."""
    worker_nice: int = Field(default=10, ge=0, le=19)
    """Niceness the worker adds to itself when it does not run at idle priority (or the OS has
    no SCHED_IDLE). 0 keeps the normal priority."""
    worker_lock_seconds: float = Field(default=30.0, gt=0)
    """A job whose worker stops renewing its lock this long (a crash) is handed to another."""
    worker_defer_seconds: float = Field(default=30.0, ge=0, le=3600)
    """While other processes keep the machine busy (WORKER_DEFER_ABOVE), each queue consumer
    starts one job at a time, and a job waits at most this long from when it was queued; after
    that it runs whatever the load. On a machine the worker shares with the services this keeps
    request latency steady through bursts of this length. 0 never defers: set it so when the
    worker has cores of its own. Linux only (the load comes from /proc/stat)."""
    worker_defer_above: float = Field(default=0.3, gt=0, le=1)
    """The machine is busy while the processes other than the worker use more than this
    fraction of all its cores (0.3 on 2 cores: 0.6 cores)."""
    sweep_interval_seconds: float = Field(default=60.0, gt=0)
    """How often the worker looks for content whose evaluation was lost."""
    sweep_pending_after_seconds: float = Field(default=300.0, gt=0)
    """Content PENDING longer than this, with no live job, is queued again."""
    worker_port: int = Field(default=50055, ge=0, le=65535)
    """gRPC port of the worker: health and readiness only, for probes (0 picks a free port)."""
    metrics_port_worker: int = Field(default=9105, ge=0, le=65535)
    """Prometheus port of the worker (0 disables it)."""
    embedding_provider: str = "local"
    """Search embeddings: "local" (all-MiniLM-L6-v2 int8 ONNX, 384 dims, no network) or "voyage"
    (hosted; other dimensions need the resize migration first, then `embeddings backfill`)."""
    voyage_api_key: SecretStr | None = None
    """Voyage AI API key; required when EMBEDDING_PROVIDER=voyage, unused otherwise."""
    voyage_model: str = "voyage-3.5"
    """Voyage embedding model used when EMBEDDING_PROVIDER=voyage (voyage-3.5: 1024 dims)."""
    voyage_base_url: str | None = None
    """Voyage API base URL override (tests, proxies); unset means the public API."""
    voyage_dimensions: int | None = Field(default=None, ge=1)
    """Voyage output_dimension (256/512/1024/2048 on models that offer it); unset: the default."""
    voyage_timeout_seconds: float = Field(default=30.0, gt=0)
    """Timeout of one Voyage HTTP attempt."""
    voyage_max_retries: int = Field(default=3, ge=0, le=10)
    """Retries of a Voyage request after 429, 5xx, a timeout or a dropped connection."""
    voyage_batch_size: int = Field(default=128, ge=1, le=1000)
    """Texts per Voyage request at most (the API allows 1000); large inputs split further."""
    smtp_host: str | None = None
    """SMTP server for verification emails; unset writes them to the outbox table and the log."""
    smtp_port: int = 587
    """SMTP port."""
    smtp_username: str | None = None
    """SMTP user."""
    smtp_password: SecretStr | None = None
    """SMTP password."""
    smtp_from: str = "BetterWorld <no-reply@betterworld.local>"
    """Sender of verification emails."""
    sentry_dsn: str = ""
    """Sentry DSN (`https://<public key>@<host>/<project id>`): set, the services and the
    worker report unexpected errors (never a client's error) to it; empty: off."""
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0, le=1)
    """Fraction of traces the Sentry SDK keeps (0: none). Errors are sent whatever its value;
    the processes record no spans of their own yet, so today it changes nothing."""
    sentry_environment: str | None = Field(default=None, pattern=r"^[^/\s]{1,64}$")
    """The environment Sentry files events under (e.g. `staging`); unset: ENVIRONMENT."""
    sentry_release: str | None = Field(default=None, pattern=r"^[^/\s]{1,200}$")
    """The release Sentry files events under (e.g. the deployed git SHA); unset:
    `betterworld-mesh@<package version>`."""

    @field_validator("sentry_dsn")
    @classmethod
    def _valid_sentry_dsn(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        # Imported only when a DSN is set: the SDK takes a quarter of a second to import.
        from sentry_sdk.utils import BadDsn, Dsn

        try:
            Dsn(value)
        except BadDsn as exc:
            # The DSN itself is not echoed: it may carry a secret key.
            raise ValueError(f"not a Sentry DSN ({exc})") from None
        return value

    @model_validator(mode="after")
    def _no_dev_secrets_in_production(self) -> Settings:
        for name in ("jwt_secret", "jwt_secret_previous"):
            secret = getattr(self, name)
            if secret is not None and len(secret.get_secret_value().encode()) < 32:
                raise ValueError(f"{name.upper()} must be at least 32 bytes (an HS256 key)")
        if self.environment != "production":
            return self
        for name in ("cursor_secret", "internal_service_token", "jwt_secret"):
            if getattr(self, name).get_secret_value().startswith("dev-"):
                raise ValueError(f"{name.upper()} must be set to a real secret in production")
        if self.heartbeat_signing_key is None:
            raise ValueError("HEARTBEAT_SIGNING_KEY must be set in production")
        return self

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("edge_admin_allow_cidrs", mode="before")
    @classmethod
    def _split_cidrs(cls, value: object) -> object:
        return cls._split_origins(value)

    @field_validator("edge_admin_allow_cidrs")
    @classmethod
    def _valid_cidrs(cls, value: list[str]) -> list[str]:
        networks = []
        for item in value:
            try:
                networks.append(str(ipaddress.ip_network(item, strict=True)))
            except ValueError as exc:
                raise ValueError(f"{item!r} is not a network (e.g. 10.0.0.0/8): {exc}") from None
        return networks

    @model_validator(mode="after")
    def _edge_tls_pair(self) -> Settings:
        if (self.edge_tls_cert_file is None) != (self.edge_tls_key_file is None):
            missing = (
                "EDGE_TLS_KEY_FILE" if self.edge_tls_key_file is None else "EDGE_TLS_CERT_FILE"
            )
            raise ValueError(
                f"{missing} must be set too: Envoy serves TLS with both EDGE_TLS_CERT_FILE and "
                "EDGE_TLS_KEY_FILE, or neither"
            )
        return self

    @model_validator(mode="after")
    def _asyncpg_ssl_spelling(self) -> Settings:
        # asyncpg takes libpq's `sslmode` only inside a DSN; SQLAlchemy hands URL query
        # parameters to asyncpg.connect() as keywords, where the same setting is `ssl`.
        url = urlsplit(self.database_url)
        if not url.scheme.endswith("+asyncpg") or "sslmode=" not in url.query:
            return self
        query = [
            ("ssl" if key == "sslmode" else key, item)
            for key, item in parse_qsl(url.query, keep_blank_values=True)
        ]
        self.database_url = urlunsplit(url._replace(query=urlencode(query)))
        return self

    def service_ports(self, service: str) -> tuple[int, int]:
        """(gRPC port, metrics port) of a registered service: `<NAME>_PORT` and
        `METRICS_PORT_<NAME>`, with the defaults its definition declares."""
        try:
            grpc_port = getattr(self, f"{service}_port")
            metrics_port = getattr(self, f"metrics_port_{service}")
        except AttributeError:
            raise SettingsError(f"no ports for {service!r}: not a registered service") from None
        return int(grpc_port), int(metrics_port)


def settings_type(ports: Mapping[str, tuple[int, int]]) -> type[Settings]:
    """`Settings` with `<name>_port` and `metrics_port_<name>` fields for each service, so each
    reads its environment variable; `ports` maps names to (gRPC, metrics) default ports."""
    return _settings_type(tuple(sorted(ports.items())))


@cache
def _settings_type(ports: tuple[tuple[str, tuple[int, int]], ...]) -> type[Settings]:
    fields: dict[str, Any] = {}
    for name, (grpc_port, metrics_port) in ports:
        fields[f"{name}_port"] = (
            int,
            Field(
                default=grpc_port,
                ge=0,
                le=65535,
                description=f"gRPC port of the {name} service (0 picks a free port).",
            ),
        )
        fields[f"metrics_port_{name}"] = (
            int,
            Field(
                default=metrics_port,
                ge=0,
                le=65535,
                description=f"Prometheus port of the {name} service (0 disables it).",
            ),
        )
    return create_model("Settings", __base__=Settings, **fields)


def load_settings(settings_cls: type[Settings] = Settings, **overrides: object) -> Settings:
    """Reads settings once; raises SettingsError naming each bad variable."""
    try:
        return settings_cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None
