"""A local fake of the Voyage AI embeddings API (`POST /v1/embeddings`) for the real provider.

It speaks the wire format the provider and the official client use (`data[].embedding` as a
list of floats, or base64 little-endian float32 when `encoding_format` is "base64"; `usage`;
`{"detail": ...}` error bodies; retry-after on 429), checks requests the way the API does for the
parts this project relies on (bearer key, model, 1..1000 string inputs, the model's token budget,
input_type, output_dimension), records every request, and answers from a script:

    async with FakeVoyageAPI(api_key="test-key", default=embeddings()) as fake:
        fake.script(rate_limited(retry_after=0.05), server_error())
        provider = VoyageEmbeddings(api_key="test-key", base_url=fake.base_url)
        vectors = await asyncio.to_thread(provider.embed, ["a", "b"])

Vectors are deterministic (seeded by a hash of model, input_type and text; see `fake_vector`), so
tests can check ordering and values. Each scripted behaviour answers one request; when the script
is empty, `default` answers (if set), otherwise a 400 that names the unscripted call. Run it
standalone for manual and load tests (`python -m tests.fakes.voyage_api --port 8789`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tests.fakes.scripted import RecordedRequest as BaseRecordedRequest
from tests.fakes.scripted import Reply, ScriptedAPI, run_standalone

MAX_INPUTS = 1000


@dataclass(frozen=True)
class FakeModel:
    """What the fake knows of one model."""

    dimensions: int
    batch_tokens: int
    output_dimensions: tuple[int, ...] = ()
    """Accepted output_dimension values; empty: the parameter is refused."""


FLEXIBLE = (256, 512, 1024, 2048)
MODELS: dict[str, FakeModel] = {
    "voyage-3.5": FakeModel(1024, 320_000, FLEXIBLE),
    "voyage-3.5-lite": FakeModel(1024, 1_000_000, FLEXIBLE),
    "voyage-3-large": FakeModel(1024, 120_000, FLEXIBLE),
    "voyage-3": FakeModel(1024, 320_000),
    "voyage-3-lite": FakeModel(512, 1_000_000),
    "voyage-code-2": FakeModel(1536, 120_000),
}


def count_tokens(text: str) -> int:
    """The fake's token count: about four UTF-8 bytes a token, like a real subword tokenizer."""
    return max(1, -(-len(text.encode("utf-8", "surrogatepass")) // 4))


def fake_vector(
    text: str, *, model: str = "voyage-3.5", input_type: str | None = "document", dimensions: int
) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The unit vector the fake returns for this text (before any `scale`)."""
    seed = hashlib.sha256(f"{model}\x00{input_type}\x00{text}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(seed[:8], "little"))
    vector = rng.standard_normal(dimensions)
    return (vector / np.linalg.norm(vector)).astype(np.float32)


@dataclass(frozen=True)
class RecordedRequest(BaseRecordedRequest):
    """One request as the fake received it."""

    @property
    def model(self) -> str | None:
        """The requested model id."""
        return (self.body or {}).get("model")

    @property
    def inputs(self) -> list[str]:
        """The texts to embed (a lone string as a list of one)."""
        value = (self.body or {}).get("input")
        if isinstance(value, str):
            return [value]
        return list(value) if isinstance(value, list) else []

    @property
    def input_type(self) -> str | None:
        """ "query", "document" or None."""
        return (self.body or {}).get("input_type")

    @property
    def output_dimension(self) -> int | None:
        """The requested output_dimension, if any."""
        return (self.body or {}).get("output_dimension")

    @property
    def encoding_format(self) -> str | None:
        """None (float lists) or "base64"."""
        return (self.body or {}).get("encoding_format")

    @property
    def tokens(self) -> int:
        """The fake's token count of all inputs."""
        return sum(count_tokens(t) for t in self.inputs)


Behaviour = Callable[[RecordedRequest], Reply]
"""Produces the reply to one request."""


def _encode(vector: np.ndarray[Any, Any], encoding_format: str | None) -> Any:
    if encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode()
    return [float(x) for x in vector]


def embeddings(
    *,
    scale: float = 1.0,
    dimensions: int | None = None,
    reverse: bool = False,
    delay: float = 0.0,
) -> Behaviour:
    """A 200 answer with the fake vectors of the request's texts.

    `scale` multiplies them (vectors that are not unit length), `dimensions` overrides their
    length (a wrong-size answer), `reverse` lists the items last index first.
    """

    def behaviour(request: RecordedRequest) -> Reply:
        model = request.model or ""
        spec = MODELS.get(model)
        size = dimensions or request.output_dimension or (spec.dimensions if spec else 1024)
        items = [
            {
                "object": "embedding",
                "embedding": _encode(
                    scale
                    * fake_vector(
                        text, model=model, input_type=request.input_type, dimensions=size
                    ),
                    request.encoding_format,
                ),
                "index": i,
            }
            for i, text in enumerate(request.inputs)
        ]
        if reverse:
            items.reverse()
        body = {
            "object": "list",
            "data": items,
            "model": model,
            "usage": {"total_tokens": request.tokens},
        }
        return Reply(200, body, delay=delay)

    return behaviour


def api_error(status: int, detail: str, *, headers: Mapping[str, str] | None = None) -> Behaviour:
    """An error in the API's format: {"detail": "..."}."""
    return lambda _request: Reply(status, {"detail": detail}, dict(headers or {}))


def rate_limited(retry_after: float | None = None) -> Behaviour:
    """429 with an optional retry-after (seconds)."""
    headers = {} if retry_after is None else {"retry-after": f"{retry_after:g}"}
    return api_error(
        429,
        "You have exceeded your rate limit (RPM or TPM). Please retry after a short wait.",
        headers=headers,
    )


def server_error(status: int = 500) -> Behaviour:
    """A 5xx (500 by default; 502/503/504 for a proxy or an overloaded API)."""
    return api_error(status, "The server encountered an unexpected error.")


def unauthorized() -> Behaviour:
    """401 for a wrong key."""
    return api_error(401, "Provided API key is invalid.")


def bad_request(detail: str = "invalid request") -> Behaviour:
    """400 with this detail."""
    return api_error(400, detail)


def malformed(body: Any, status: int = 200) -> Behaviour:
    """This body (any JSON value, or str/bytes sent verbatim) as the answer."""
    return lambda _request: Reply(status, body)


def not_json(status: int = 200) -> Behaviour:
    """A body that is not JSON (a proxy's HTML page)."""
    return lambda _request: Reply(status, "<html>bad gateway</html>", content_type="text/html")


def slow(behaviour: Behaviour, seconds: float) -> Behaviour:
    """The same reply, sent after `seconds`."""
    return lambda request: replace(behaviour(request), delay=seconds)


def hang(seconds: float = 60.0) -> Behaviour:
    """No answer for `seconds` (until the client gives up or the fake stops)."""
    return slow(embeddings(), seconds)


class FakeVoyageAPI(ScriptedAPI[RecordedRequest]):
    """The fake Voyage API on 127.0.0.1 and a free port; an async context manager."""

    request_type = RecordedRequest
    max_body_bytes = 64 * 1024 * 1024

    def _unscripted(self, request: RecordedRequest) -> Reply:
        return bad_request(f"fake: no reply scripted for request {len(self.requests)}")(request)

    def _reject(self, request: RecordedRequest) -> Behaviour | None:
        """What the real API refuses before any model runs, for the parts this project uses."""
        if request.path != "/v1/embeddings":
            return api_error(404, f"Not found: {request.path}")
        if request.method != "POST":
            return api_error(405, "Method Not Allowed")
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[len("bearer ") :].strip():
            return api_error(401, "No API key provided.")
        if self.api_key is not None and auth[len("bearer ") :] != self.api_key:
            return unauthorized()
        body = request.body
        if body is None:
            return bad_request("Request body must be a JSON object.")
        model = body.get("model")
        if not isinstance(model, str) or model not in MODELS:
            return bad_request(f"Model {model} is not supported.")
        spec = MODELS[model]
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return bad_request("input: a string or a non-empty list of strings is required.")
        if len(texts) > MAX_INPUTS:
            return bad_request(f"The max allowed input length is {MAX_INPUTS}.")
        if request.tokens > spec.batch_tokens:
            return bad_request(
                f"The max allowed tokens per submitted batch is {spec.batch_tokens}. "
                f"Your batch has {request.tokens} tokens after truncation."
            )
        if body.get("input_type") not in (None, "query", "document"):
            return bad_request("input_type must be null, 'query' or 'document'.")
        if body.get("encoding_format") not in (None, "base64"):
            return bad_request("encoding_format must be null or 'base64'.")
        dims = body.get("output_dimension")
        if dims is not None and dims not in spec.output_dimensions:
            return bad_request(f"output_dimension {dims} is not supported by {model}.")
        return None


def main() -> None:
    """Serves until interrupted."""
    run_standalone(
        lambda delay: FakeVoyageAPI(default=embeddings(delay=delay)),
        description=__doc__.splitlines()[0],
        port=8789,
    )


if __name__ == "__main__":
    main()
