"""Voyage AI hosted embeddings (`EMBEDDING_PROVIDER=voyage`) over `POST {base}/v1/embeddings`.

Why plain httpx and not the official `voyageai` package: voyageai 0.5.0 would add about twenty
packages to every service image (langchain-core, langsmith, huggingface-hub, pillow, requests,
tenacity, ...) for one JSON POST; its retry waits are fixed (1-16 s exponential, not settable, so
tests of the retry path would take seconds); it retries 502-504 but not 500; and it is untyped.
httpx is already a dependency, and the endpoint is small and stable: the request and response
shapes, the `{"detail": ...}` error body and the base64 float32 encoding used here are the ones
that client sends and parses. Tests run this module against a local fake of the API
(`tests/fakes/voyage_api.py`) through `VOYAGE_BASE_URL`.

The API's per-request limits are respected by batching: at most 1000 texts (and at most
VOYAGE_BATCH_SIZE) and at most the model's token budget per request. Token counts are estimated
from above by UTF-8 bytes (a byte-level tokenizer never makes more tokens than bytes), so a batch
never exceeds the budget; one text larger than the budget goes alone (the API truncates it).
"""

from __future__ import annotations

import base64
import binascii
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx
import numpy as np
import numpy.typing as npt
from prometheus_client import Counter
from pydantic import SecretStr

from services.core.embeddings.provider import EmbeddingConfigError, EmbeddingError, Vectors
from services.core.logging import get_logger

if TYPE_CHECKING:
    from services.core.settings import Settings

log = get_logger(__name__)
TOKENS_BILLED = Counter(
    "embedding_tokens_total",
    "Tokens a hosted embedding provider billed, as its API reports them",
    ["provider", "model"],
)

InputType = Literal["document", "query"]
"""Voyage prepends a retrieval prompt of this kind; stored texts are documents, searches queries."""

DEFAULT_MODEL = "voyage-3.5"
DEFAULT_BASE_URL = "https://api.voyageai.com/v1"
MONGODB_BASE_URL = "https://ai.mongodb.com/v1"
"""Keys issued by MongoDB Atlas (prefix `al-`) are served there, as the official client does."""
API_MAX_TEXTS = 1000
"""Most texts the API accepts in one request."""
FLEXIBLE_DIMENSIONS = (256, 512, 1024, 2048)
"""output_dimension values of the models that accept one."""
UNKNOWN_MODEL_BATCH_TOKENS = 120_000
"""Token budget assumed for a model not in MODELS (the smallest budget of any model)."""
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_DETAIL_CHARS = 300


@dataclass(frozen=True)
class ModelSpec:
    """What the API documents for one embedding model."""

    dimensions: int
    """Default output dimension."""
    batch_tokens: int
    """Most tokens of all texts of one request."""
    flexible: bool
    """Accepts output_dimension (one of FLEXIBLE_DIMENSIONS)."""


MODELS: dict[str, ModelSpec] = {
    "voyage-3.5": ModelSpec(1024, 320_000, flexible=True),
    "voyage-3.5-lite": ModelSpec(1024, 1_000_000, flexible=True),
    "voyage-3-large": ModelSpec(1024, 120_000, flexible=True),
    "voyage-code-3": ModelSpec(1024, 120_000, flexible=True),
    "voyage-3": ModelSpec(1024, 320_000, flexible=False),
    "voyage-3-lite": ModelSpec(512, 1_000_000, flexible=False),
    "voyage-finance-2": ModelSpec(1024, 120_000, flexible=False),
    "voyage-law-2": ModelSpec(1024, 120_000, flexible=False),
    "voyage-multilingual-2": ModelSpec(1024, 120_000, flexible=False),
    "voyage-code-2": ModelSpec(1536, 120_000, flexible=False),
    "voyage-large-2": ModelSpec(1536, 120_000, flexible=False),
    "voyage-2": ModelSpec(1024, 320_000, flexible=False),
}


def estimate_tokens(text: str) -> int:
    """An upper bound of the tokens of `text` (UTF-8 bytes, plus start and end tokens)."""
    return len(text.encode("utf-8", "surrogatepass")) + 2


def _endpoint(base_url: str) -> str:
    """`{base}/v1/embeddings`; a base that already ends in /v1 (as in Voyage's docs) works too."""
    base = base_url.rstrip("/")
    if base.endswith("/v1"):
        return f"{base}/embeddings"
    return f"{base}/v1/embeddings"


class VoyageEmbeddings:
    """Voyage AI embeddings: batched, retried with backoff, checked and L2-normalized.

    Blocking (call from a thread in async code) and thread-safe; one HTTP connection pool per
    instance, nothing is sent before the first `embed`. `embed` embeds documents (what is stored),
    `embed_queries` search queries; Voyage tunes the two for retrieval against each other.

    A request that gets 408, 429 or 5xx, times out or loses its connection is retried up to
    `max_retries` times after an exponential backoff with jitter (`backoff_seconds` doubling up
    to `max_backoff_seconds`; a Retry-After header is honoured up to that cap). Other errors,
    and answers that are not the vectors asked for, raise EmbeddingError at once.
    """

    def __init__(
        self,
        *,
        api_key: SecretStr | str | None,
        model: str = DEFAULT_MODEL,
        dimensions: int | None = None,
        base_url: str | None = None,
        timeout_seconds: float = 30.0,
        max_retries: int = 3,
        batch_size: int = 128,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 8.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        secret = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        secret = (secret or "").strip()
        if not secret:
            raise EmbeddingConfigError(
                "VOYAGE_API_KEY must be set when EMBEDDING_PROVIDER=voyage "
                "(or use EMBEDDING_PROVIDER=local, which needs no key)"
            )
        if not secret.isascii() or not secret.isprintable():
            raise EmbeddingConfigError(
                "VOYAGE_API_KEY contains characters an HTTP header cannot carry"
            )
        if not model.strip():
            raise EmbeddingConfigError("VOYAGE_MODEL must name a Voyage embedding model")
        if max_retries < 0:
            raise EmbeddingConfigError("VOYAGE_MAX_RETRIES must be 0 or more")
        if timeout_seconds <= 0:
            raise EmbeddingConfigError("VOYAGE_TIMEOUT_SECONDS must be positive")
        if not 1 <= batch_size <= API_MAX_TEXTS:
            raise EmbeddingConfigError(f"VOYAGE_BATCH_SIZE must be between 1 and {API_MAX_TEXTS}")

        spec = MODELS.get(model)
        self._output_dimension: int | None = None
        if spec is None:
            if dimensions is None:
                raise EmbeddingConfigError(
                    f"Voyage model {model!r} is not one this service knows the size of: "
                    f"set VOYAGE_DIMENSIONS to its output dimension (known: {', '.join(MODELS)})"
                )
            self._output_dimension = dimensions
        elif dimensions is not None and dimensions != spec.dimensions:
            if not spec.flexible or dimensions not in FLEXIBLE_DIMENSIONS:
                allowed = (
                    ", ".join(str(d) for d in FLEXIBLE_DIMENSIONS)
                    if spec.flexible
                    else str(spec.dimensions)
                )
                raise EmbeddingConfigError(
                    f"VOYAGE_DIMENSIONS={dimensions} is not available for Voyage model "
                    f"{model!r} (allowed: {allowed})"
                )
            self._output_dimension = dimensions

        default_dims = spec.dimensions if spec is not None else None
        self.model = model
        self.dimensions: int = self._output_dimension or (spec.dimensions if spec else 0)
        suffix = "" if self.dimensions == default_dims else f":{self.dimensions}"
        self.model_id: str = f"voyage:{model}{suffix}"
        self._batch_tokens = spec.batch_tokens if spec is not None else UNKNOWN_MODEL_BATCH_TOKENS
        self._batch_size = batch_size
        self._timeout = timeout_seconds
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._secret = secret
        if base_url is None:
            base_url = MONGODB_BASE_URL if secret.startswith("al-") else DEFAULT_BASE_URL
        self._url = _endpoint(base_url)
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_seconds),
            headers={"authorization": f"Bearer {secret}", "user-agent": "betterworld-mesh"},
            transport=transport,
            follow_redirects=False,
        )
        self._tokens = TOKENS_BILLED.labels("voyage", model)

    @classmethod
    def from_settings(cls, settings: Settings) -> VoyageEmbeddings:
        """Built from the VOYAGE_* settings."""
        return cls(
            api_key=settings.voyage_api_key,
            model=settings.voyage_model,
            dimensions=settings.voyage_dimensions,
            base_url=settings.voyage_base_url,
            timeout_seconds=settings.voyage_timeout_seconds,
            max_retries=settings.voyage_max_retries,
            batch_size=settings.voyage_batch_size,
        )

    def __repr__(self) -> str:
        return f"VoyageEmbeddings(model={self.model!r}, dimensions={self.dimensions})"

    def close(self) -> None:
        """Closes the connection pool."""
        self._client.close()

    def embed(self, texts: Sequence[str], *, input_type: InputType | None = "document") -> Vectors:
        """One unit-length float32 row per text, in order; empty input gives (0, dimensions).

        `input_type` None sends no retrieval prompt. Raises EmbeddingError when the API fails
        after the retries or answers something that is not the vectors asked for.
        """
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts, not one str")
        texts = list(texts)
        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for start, end in self._batches(texts):
            out[start:end] = self._embed_batch(texts[start:end], input_type)
        return out

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """Embeds search queries (input_type "query"), to match against stored documents."""
        return self.embed(texts, input_type="query")

    def _batches(self, texts: list[str]) -> Iterator[tuple[int, int]]:
        start, tokens = 0, 0
        for i, text in enumerate(texts):
            cost = estimate_tokens(text)
            if i > start and (i - start >= self._batch_size or tokens + cost > self._batch_tokens):
                yield start, i
                start, tokens = i, 0
            tokens += cost
        if start < len(texts):
            yield start, len(texts)

    def _embed_batch(self, texts: list[str], input_type: InputType | None) -> Vectors:
        payload: dict[str, Any] = {
            "input": texts,
            "model": self.model,
            "input_type": input_type,
            "truncation": True,
            "encoding_format": "base64",
        }
        if self._output_dimension is not None:
            payload["output_dimension"] = self._output_dimension
        body = self._post(payload)
        vectors = self._parse(body, len(texts))
        usage = body.get("usage")
        tokens = usage.get("total_tokens") if isinstance(usage, dict) else None
        if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0:
            self._tokens.inc(tokens)
        return vectors

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The JSON object of a 200 answer, retrying what a retry can fix."""
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                response = self._client.post(self._url, json=payload)
            except httpx.TimeoutException:
                problem = f"no answer within {self._timeout:g}s"
            except httpx.TransportError as exc:
                problem = f"connection failed ({type(exc).__name__})"
            else:
                if response.status_code == 200:
                    return self._json(response)
                problem = f"HTTP {response.status_code}{self._detail(response)}"
                if response.status_code not in RETRYABLE_STATUS:
                    hint = " (check VOYAGE_API_KEY)" if response.status_code in (401, 403) else ""
                    raise self._error(f"{problem}{hint}")
                retry_after = _retry_after(response)
            if attempt >= self._max_retries:
                tries = "1 attempt" if attempt == 0 else f"{attempt + 1} attempts"
                raise self._error(f"{problem}; gave up after {tries}")
            jitter = 0.5 + random.random() / 2  # noqa: S311 (backoff jitter, not a secret)
            delay = min(self._max_backoff, self._backoff * 2**attempt) * jitter
            if retry_after is not None:
                delay = max(delay, min(retry_after, self._max_backoff))
            log.warning(
                "voyage_embeddings_retry",
                model=self.model,
                attempt=attempt + 1,
                problem=self._redact(problem),
                delay_seconds=round(delay, 3),
            )
            time.sleep(delay)
            attempt += 1

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise self._error("answered 200 with a body that is not JSON") from None
        if not isinstance(body, dict):
            raise self._error("answered 200 with JSON that is not an object")
        return body

    def _parse(self, body: dict[str, Any], count: int) -> Vectors:
        data = body.get("data")
        if not isinstance(data, list) or len(data) != count:
            got = f"{len(data)} items" if isinstance(data, list) else "no data list"
            raise self._error(f"answered {got} for {count} texts")
        rows = np.empty((count, self.dimensions), dtype=np.float64)
        seen = np.zeros(count, dtype=bool)
        for item in data:
            index = item.get("index") if isinstance(item, dict) else None
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count:
                raise self._error(f"answered an item without a valid index (0..{count - 1})")
            if seen[index]:
                raise self._error(f"answered index {index} twice")
            seen[index] = True
            vector = self._vector(item.get("embedding"))
            if vector.shape != (self.dimensions,):
                raise self._error(
                    f"returned a vector of {vector.size} dimensions, expected {self.dimensions}"
                )
            rows[index] = vector
        if not np.isfinite(rows).all():
            raise self._error("returned non-finite numbers")
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        if (norms == 0).any():
            raise self._error("returned a zero vector")
        return (rows / norms).astype(np.float32)

    def _vector(self, embedding: object) -> npt.NDArray[np.float64]:
        if isinstance(embedding, str):
            try:
                raw = base64.b64decode(embedding, validate=True)
            except (binascii.Error, ValueError):
                raise self._error("returned an embedding that is not valid base64") from None
            if len(raw) % 4:
                raise self._error("returned a base64 embedding that is not float32")
            return np.frombuffer(raw, dtype="<f4").astype(np.float64)
        if not isinstance(embedding, list) or not all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in embedding
        ):
            raise self._error("returned an embedding that is not a list of numbers")
        return np.asarray(embedding, dtype=np.float64)

    def _detail(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return ""
        detail = body.get("detail") if isinstance(body, dict) else None
        if not isinstance(detail, str) or not detail:
            return ""
        return f": {detail[:MAX_DETAIL_CHARS]}"

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "[REDACTED]")

    def _error(self, problem: str) -> EmbeddingError:
        return EmbeddingError(
            self._redact(f"Voyage embeddings with model {self.model!r} failed: {problem}")
        )


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
