# Production image of every BetterWorld process (services, worker, migrations, backups, operator
# commands). Build: docker build -t betterworld-mesh .   Run: see docker-compose.yml.
# Stages: `build` installs the locked dependencies and the project into /app/.venv; `pgdg` takes
# the PostgreSQL project's apt signing key from Debian's own postgresql-common package (verified
# by apt, no download outside the archives); `runtime` adds PostgreSQL 16's client tools from that
# repository (pg_dump/pg_restore matching the server's major version, for `betterworld backup`
# and the snapshot `betterworld migrate` takes before a schema change) and runs as a non-root user.

FROM python:3.11-slim-bookworm AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /app
# Dependencies first, so code changes reuse this layer.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY services ./services
COPY tooling ./tooling
COPY gen ./gen
COPY migrations ./migrations
COPY alembic.ini ./
RUN uv sync --frozen --no-dev --no-editable
# The local embedding model, quantized for int8 arithmetic once here rather than at each start.
ENV XDG_CACHE_HOME=/app/.cache
RUN /app/.venv/bin/python -m services.core.embeddings.quantize

FROM python:3.11-slim-bookworm AS pgdg
# Unpinned on purpose: only its copy of the PGDG key leaves this stage, and apt checked it.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-common \
 && rm -rf /var/lib/apt/lists/*

FROM python:3.11-slim-bookworm AS runtime
COPY --from=pgdg /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
     /usr/share/keyrings/apt.postgresql.org.asc
# postgresql-client-16 is pinned by its major version (the server's, pgvector/pgvector:*-pg16);
# PGDG serves only the newest minor of it, so a minor pin would break the build at each release.
# hadolint ignore=DL3008
RUN echo "deb [signed-by=/usr/share/keyrings/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-16 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin betterworld
WORKDIR /app
COPY --from=build --chown=10001:10001 /app /app
# The backups directory exists in the image so a volume mounted there starts owned by the user.
RUN install -d -o 10001 -g 10001 /app/data /app/data/backups
ENV PATH=/app/.venv/bin:/usr/lib/postgresql/16/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    DATA_DIR=/app/data \
    XDG_CACHE_HOME=/app/.cache
USER 10001:10001
# gRPC: agent, content, guardrail, mission, worker; Prometheus: 9101-9105.
EXPOSE 50051-50055 9101-9105
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["betterworld", "health-probe", "--target", "127.0.0.1:50051"]
ENTRYPOINT ["betterworld"]
CMD ["serve", "agent"]
