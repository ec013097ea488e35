# Production image of every BetterWorld process (services, migrations, operator commands).
# Build: docker build -t betterworld-mesh .   Run: see docker-compose.yml.

FROM python:3.11-slim AS build
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

FROM python:3.11-slim AS runtime
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin betterworld
WORKDIR /app
COPY --from=build --chown=betterworld:betterworld /app /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    DATA_DIR=/app/data \
    XDG_CACHE_HOME=/app/.cache
USER betterworld
EXPOSE 50051 9101
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["betterworld", "health-probe", "--target", "127.0.0.1:50051"]
ENTRYPOINT ["betterworld"]
CMD ["serve", "agent"]
