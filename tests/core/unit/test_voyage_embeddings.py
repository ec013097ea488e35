"""The Voyage AI provider against a local fake of its API: batching, ordering, normalization,
retries, timeouts, bad answers, configuration errors, and the key never leaking."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from services.core.embeddings import build_provider
from services.core.embeddings.provider import (
    EmbeddingConfigError,
    EmbeddingError,
    Vectors,
    embed_queries,
)
from services.core.embeddings.voyage import VoyageEmbeddings, estimate_tokens
from services.core.settings import Settings, load_settings
from tests.fakes.voyage_api import (
    FakeVoyageAPI,
    api_error,
    bad_request,
    embeddings,
    fake_vector,
    hang,
    malformed,
    not_json,
    rate_limited,
    server_error,
    unauthorized,
)

KEY = "pa-test-" + "Q7xZ" * 10


@pytest.fixture
async def fake() -> AsyncIterator[FakeVoyageAPI]:
    async with FakeVoyageAPI(api_key=KEY, default=embeddings()) as server:
        yield server


def make(fake: FakeVoyageAPI, **options: Any) -> VoyageEmbeddings:
    options = {
        "api_key": KEY,
        "base_url": fake.base_url,
        "timeout_seconds": 5.0,
        "backoff_seconds": 0.001,
        "max_backoff_seconds": 0.01,
        **options,
    }
    return VoyageEmbeddings(**options)


async def embed(provider: VoyageEmbeddings, texts: Sequence[str], **kwargs: Any) -> Vectors:
    # The provider blocks; the fake serves on this event loop, as a service would call it.
    return await asyncio.to_thread(provider.embed, texts, **kwargs)


def expected(texts: Sequence[str], *, dims: int = 1024, input_type: str = "document") -> Vectors:
    return np.vstack([fake_vector(t, input_type=input_type, dimensions=dims) for t in texts])


def settings(**overrides: Any) -> Settings:
    return load_settings(_env_file=None, **overrides)


def billed(model: str = "voyage-3.5") -> float:
    labels = {"provider": "voyage", "model": model}
    return REGISTRY.get_sample_value("embedding_tokens_total", labels) or 0.0


# --- success paths -----------------------------------------------------------------------------


async def test_embeds_documents_as_unit_float32_rows(fake: FakeVoyageAPI) -> None:
    provider = make(fake)
    texts = ["Lake Merritt has algae blooms", "ñandú 🌊 water", "a"]
    before = billed()
    vectors = await embed(provider, texts)
    assert vectors.shape == (3, 1024)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors, expected(texts), atol=1e-6)
    (request,) = fake.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body == {
        "input": texts,
        "model": "voyage-3.5",
        "input_type": "document",
        "truncation": True,
        "encoding_format": "base64",
    }
    assert provider.model_id == "voyage:voyage-3.5"
    assert provider.dimensions == 1024
    assert billed() == before + request.tokens


async def test_float_list_answers_are_accepted_too(fake: FakeVoyageAPI) -> None:
    # A proxy that re-encodes (or an API that ignores encoding_format) sends plain float lists.
    texts = ["one", "two"]
    body = {
        "data": [
            {"embedding": [float(x) for x in v], "index": i} for i, v in enumerate(expected(texts))
        ]
    }
    fake.script(malformed(body))
    vectors = await embed(make(fake), texts)
    assert np.allclose(vectors, expected(texts), atol=1e-6)


async def test_items_are_put_back_in_index_order(fake: FakeVoyageAPI) -> None:
    fake.default = embeddings(reverse=True)
    texts = [f"text {i}" for i in range(7)]
    vectors = await embed(make(fake), texts)
    assert np.allclose(vectors, expected(texts), atol=1e-6)


async def test_unnormalized_answers_are_normalized(fake: FakeVoyageAPI) -> None:
    fake.default = embeddings(scale=7.5)
    texts = ["short", "a longer sentence about rural clinics"]
    vectors = await embed(make(fake), texts)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors, expected(texts), atol=1e-6)


async def test_batches_by_count_and_keeps_order_across_batches(fake: FakeVoyageAPI) -> None:
    texts = [f"problem number {i}" for i in range(10)]
    vectors = await embed(make(fake, batch_size=4), texts)
    assert [len(r.inputs) for r in fake.requests] == [4, 4, 2]
    assert [t for r in fake.requests for t in r.inputs] == texts
    assert np.allclose(vectors, expected(texts), atol=1e-6)


async def test_never_sends_more_than_the_api_list_limit(fake: FakeVoyageAPI) -> None:
    texts = [f"t{i}" for i in range(2100)]
    vectors = await embed(make(fake, batch_size=1000), texts)
    assert [len(r.inputs) for r in fake.requests] == [1000, 1000, 100]
    assert vectors.shape == (2100, 1024)
    assert np.allclose(
        vectors[[0, 999, 1000, 2099]], expected([texts[i] for i in (0, 999, 1000, 2099)]), atol=1e-6
    )


async def test_batches_by_token_budget(fake: FakeVoyageAPI) -> None:
    # voyage-3.5 takes at most 320K tokens a request; the provider bounds tokens by UTF-8 bytes.
    texts = ["x" * 100_000, "y" * 100_000, "z" * 100_000, "w" * 100_000, "short", "v" * 400_000]
    vectors = await embed(make(fake), texts)
    sizes = [len(r.inputs) for r in fake.requests]
    assert sizes == [3, 2, 1]  # 3 x 100K, then 100K + "short", then the oversized text alone
    for request in fake.requests[:2]:
        assert sum(estimate_tokens(t) for t in request.inputs) <= 320_000
    assert np.allclose(vectors, expected(texts), atol=1e-6)


async def test_empty_input_sends_nothing(fake: FakeVoyageAPI) -> None:
    vectors = await embed(make(fake), [])
    assert vectors.shape == (0, 1024)
    assert vectors.dtype == np.float32
    assert fake.requests == []


async def test_queries_use_the_query_input_type(fake: FakeVoyageAPI) -> None:
    provider = make(fake)
    query = await asyncio.to_thread(embed_queries, provider, ["clean water"])
    document = await embed(provider, ["clean water"])
    assert [r.input_type for r in fake.requests] == ["query", "document"]
    assert np.allclose(query, expected(["clean water"], input_type="query"), atol=1e-6)
    assert not np.allclose(query, document)


def test_embed_queries_falls_back_to_embed_for_providers_without_a_query_mode() -> None:
    class Plain:
        model_id = "plain"
        dimensions = 2

        def embed(self, texts: Sequence[str]) -> Vectors:
            return np.ones((len(texts), 2), dtype=np.float32) / np.sqrt(2)

    assert embed_queries(Plain(), ["a", "b"]).shape == (2, 2)


async def test_output_dimension_is_sent_and_names_the_vector_space(fake: FakeVoyageAPI) -> None:
    provider = make(fake, dimensions=512)
    vectors = await embed(provider, ["a", "b"])
    assert vectors.shape == (2, 512)
    assert fake.requests[0].output_dimension == 512
    assert provider.model_id == "voyage:voyage-3.5:512"
    assert np.allclose(vectors, expected(["a", "b"], dims=512), atol=1e-6)
    # The model's default size is not sent (models without flexible sizes refuse the parameter).
    await embed(make(fake, dimensions=1024), ["a"])
    assert fake.requests[1].output_dimension is None


async def test_a_base_url_ending_in_v1_works_too(fake: FakeVoyageAPI) -> None:
    vectors = await embed(make(fake, base_url=fake.base_url + "/v1/"), ["a"])
    assert vectors.shape == (1, 1024)
    assert fake.requests[0].path == "/v1/embeddings"


# --- retries and timeouts ----------------------------------------------------------------------


async def test_retries_after_429_and_5xx_then_succeeds(fake: FakeVoyageAPI) -> None:
    fake.script(rate_limited(), server_error(500), server_error(503))
    texts = ["a", "b"]
    with capture_logs() as logs:
        vectors = await embed(make(fake, max_retries=3), texts)
    assert len(fake.requests) == 4
    assert np.allclose(vectors, expected(texts), atol=1e-6)
    retries = [entry for entry in logs if entry["event"] == "voyage_embeddings_retry"]
    assert [entry["attempt"] for entry in retries] == [1, 2, 3]
    assert "HTTP 429" in retries[0]["problem"]


async def test_retry_after_is_honoured(fake: FakeVoyageAPI) -> None:
    fake.script(rate_limited(retry_after=0.3))
    started = time.perf_counter()
    await embed(make(fake, max_backoff_seconds=1.0), ["a"])
    assert time.perf_counter() - started >= 0.3
    assert len(fake.requests) == 2


async def test_retries_are_bounded(fake: FakeVoyageAPI) -> None:
    fake.script(*[server_error(502)] * 5)
    with pytest.raises(EmbeddingError, match=r"HTTP 502.*gave up after 3 attempts") as caught:
        await embed(make(fake, max_retries=2), ["a"])
    assert len(fake.requests) == 3
    assert "voyage-3.5" in str(caught.value)


async def test_client_errors_are_not_retried(fake: FakeVoyageAPI) -> None:
    fake.script(bad_request("input contains an empty string"))
    with pytest.raises(EmbeddingError, match="HTTP 400: input contains an empty string"):
        await embed(make(fake, max_retries=3), ["a"])
    assert len(fake.requests) == 1


async def test_a_wrong_key_says_which_setting_to_check(fake: FakeVoyageAPI) -> None:
    with pytest.raises(EmbeddingError, match=r"HTTP 401.*VOYAGE_API_KEY") as caught:
        await embed(make(fake, api_key="pa-wrong-key"), ["a"])
    assert "pa-wrong-key" not in str(caught.value)
    assert len(fake.requests) == 1


async def test_a_hanging_api_times_out_after_bounded_retries(fake: FakeVoyageAPI) -> None:
    fake.script(hang(30), hang(30))
    started = time.perf_counter()
    with pytest.raises(EmbeddingError, match=r"no answer within 0.2s; gave up after 2 attempts"):
        await embed(make(fake, timeout_seconds=0.2, max_retries=1), ["a"])
    assert time.perf_counter() - started < 3
    assert len(fake.requests) == 2


async def test_a_timeout_then_success_recovers(fake: FakeVoyageAPI) -> None:
    fake.script(hang(30))
    vectors = await embed(make(fake, timeout_seconds=0.2, max_retries=1), ["a"])
    assert np.allclose(vectors, expected(["a"]), atol=1e-6)


async def test_connection_refused_is_an_embedding_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = VoyageEmbeddings(
        api_key=KEY, base_url=f"http://127.0.0.1:{port}", max_retries=1, backoff_seconds=0.001
    )
    with pytest.raises(EmbeddingError, match=r"connection failed.*gave up after 2 attempts"):
        await asyncio.to_thread(provider.embed, ["a"])


# --- bad answers -------------------------------------------------------------------------------


def _item(index: Any, embedding: Any) -> dict[str, Any]:
    return {"object": "embedding", "index": index, "embedding": embedding}


UNIT = [1.0] + [0.0] * 1023
MALFORMED = [
    ("not json", not_json(), "not JSON"),
    ("json list", malformed([1, 2]), "not an object"),
    ("no data", malformed({"usage": {"total_tokens": 1}}), "no data list"),
    ("too few items", malformed({"data": [_item(0, UNIT)]}), "1 items for 2 texts"),
    ("no index", malformed({"data": [_item(None, UNIT), _item(1, UNIT)]}), "valid index"),
    ("bool index", malformed({"data": [_item(True, UNIT), _item(0, UNIT)]}), "valid index"),
    ("index out of range", malformed({"data": [_item(0, UNIT), _item(2, UNIT)]}), "valid index"),
    ("duplicate index", malformed({"data": [_item(0, UNIT), _item(0, UNIT)]}), "index 0 twice"),
    (
        "embedding not a list",
        malformed({"data": [_item(0, {"a": 1}), _item(1, UNIT)]}),
        "list of numbers",
    ),
    (
        "strings in embedding",
        malformed({"data": [_item(0, ["x"] * 1024), _item(1, UNIT)]}),
        "list of numbers",
    ),
    ("bad base64", malformed({"data": [_item(0, "!!!not-base64!!!"), _item(1, UNIT)]}), "base64"),
    (
        "base64 not float32",
        malformed({"data": [_item(0, base64.b64encode(b"abc").decode()), _item(1, UNIT)]}),
        "float32",
    ),
    (
        "nan",
        malformed(
            '{"data": [{"index": 0, "embedding": [NaN'
            + ", 0.0" * 1023
            + ']}, {"index": 1, "embedding": '
            + str(UNIT)
            + "}]}"
        ),
        "non-finite",
    ),
    ("zero vector", malformed({"data": [_item(0, [0.0] * 1024), _item(1, UNIT)]}), "zero vector"),
]


@pytest.mark.parametrize(
    ("behaviour", "message"), [(b, m) for _, b, m in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
async def test_malformed_answers_are_embedding_errors(
    fake: FakeVoyageAPI, behaviour: Any, message: str
) -> None:
    fake.script(behaviour)
    with pytest.raises(EmbeddingError, match=message) as caught:
        await embed(make(fake, max_retries=3), ["a", "b"])
    assert "voyage-3.5" in str(caught.value)
    assert len(fake.requests) == 1  # a bad answer is not retried


async def test_wrong_dimensions_name_the_model(fake: FakeVoyageAPI) -> None:
    fake.script(embeddings(dimensions=512))
    with pytest.raises(EmbeddingError, match=r"'voyage-3.5'.*512 dimensions, expected 1024"):
        await embed(make(fake), ["a", "b"])


# --- configuration and the key -----------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "", "   "])
def test_a_missing_key_names_the_setting(key: str | None) -> None:
    with pytest.raises(EmbeddingConfigError, match="VOYAGE_API_KEY must be set"):
        VoyageEmbeddings(api_key=key)


def test_a_key_that_cannot_be_a_header_is_refused_without_echoing_it() -> None:
    with pytest.raises(EmbeddingConfigError, match="VOYAGE_API_KEY") as caught:
        VoyageEmbeddings(api_key="pa-ünïcode-key")
    assert "ünïcode" not in str(caught.value)


@pytest.mark.parametrize(
    ("model", "dimensions", "message"),
    [
        ("voyage-3.5", 300, "VOYAGE_DIMENSIONS=300 is not available"),
        ("voyage-3", 512, r"VOYAGE_DIMENSIONS=512 .*allowed: 1024"),
        ("voyage-99", None, "set VOYAGE_DIMENSIONS"),
    ],
)
def test_impossible_sizes_are_configuration_errors(
    model: str, dimensions: int | None, message: str
) -> None:
    with pytest.raises(EmbeddingConfigError, match=message):
        VoyageEmbeddings(api_key=KEY, model=model, dimensions=dimensions)


def test_known_models_have_their_sizes() -> None:
    assert VoyageEmbeddings(api_key=KEY, model="voyage-3-lite").dimensions == 512
    unknown = VoyageEmbeddings(api_key=KEY, model="voyage-99", dimensions=1024)
    assert (unknown.dimensions, unknown.model_id) == (1024, "voyage:voyage-99:1024")


def test_the_key_is_not_in_repr_or_vars_shown() -> None:
    provider = VoyageEmbeddings(api_key=KEY)
    assert KEY not in repr(provider)
    assert KEY not in str(provider)


async def test_the_key_never_appears_in_errors_or_logs(fake: FakeVoyageAPI) -> None:
    # An upstream (or a proxy) that echoes the key back must not make it leak.
    fake.script(api_error(500, f"upstream saw {KEY}"), bad_request(f"bad key {KEY}"))
    with capture_logs() as logs, pytest.raises(EmbeddingError) as caught:
        await embed(make(fake, max_retries=2), ["a"])
    assert KEY not in str(caught.value)
    assert "[REDACTED]" in str(caught.value)
    assert caught.value.__cause__ is None
    assert KEY not in repr(logs)

    fake.script(unauthorized())
    with pytest.raises(EmbeddingError) as caught:
        await embed(make(fake), ["a"])
    assert KEY not in str(caught.value)


def test_mongodb_atlas_keys_default_to_their_endpoint() -> None:
    provider = VoyageEmbeddings(api_key="al-" + "x" * 20)
    assert provider._url == "https://ai.mongodb.com/v1/embeddings"
    assert VoyageEmbeddings(api_key=KEY)._url == "https://api.voyageai.com/v1/embeddings"


# --- the factory and settings ------------------------------------------------------------------


def test_factory_needs_settings_for_voyage() -> None:
    with pytest.raises(ValueError, match="needs settings"):
        build_provider("voyage")


def test_factory_without_a_key_names_the_setting() -> None:
    with pytest.raises(EmbeddingConfigError, match="VOYAGE_API_KEY"):
        build_provider("voyage", settings=settings(embedding_provider="voyage"))


async def test_factory_builds_from_settings(fake: FakeVoyageAPI) -> None:
    configured = settings(
        embedding_provider="voyage",
        voyage_api_key=KEY,
        voyage_base_url=fake.base_url,
        voyage_model="voyage-3.5-lite",
        voyage_dimensions=256,
        voyage_batch_size=2,
        voyage_max_retries=0,
    )
    provider = build_provider(configured.embedding_provider, settings=configured)
    assert isinstance(provider, VoyageEmbeddings)
    assert (provider.model_id, provider.dimensions) == ("voyage:voyage-3.5-lite:256", 256)
    vectors = await asyncio.to_thread(provider.embed, ["a", "b", "c"])
    assert vectors.shape == (3, 256)
    assert [len(r.inputs) for r in fake.requests] == [2, 1]
    assert {r.model for r in fake.requests} == {"voyage-3.5-lite"}
    assert KEY not in repr(configured)


def test_settings_read_the_voyage_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDING_PROVIDER", "voyage")
    monkeypatch.setenv("VOYAGE_API_KEY", KEY)
    monkeypatch.setenv("VOYAGE_MODEL", "voyage-3-large")
    monkeypatch.setenv("VOYAGE_TIMEOUT_SECONDS", "12.5")
    loaded = settings()
    assert loaded.voyage_api_key is not None
    assert loaded.voyage_api_key.get_secret_value() == KEY
    assert (loaded.voyage_model, loaded.voyage_timeout_seconds) == ("voyage-3-large", 12.5)
    assert loaded.voyage_base_url is None
    provider = build_provider(loaded.embedding_provider, settings=loaded)
    assert provider.model_id == "voyage:voyage-3-large"


def test_local_still_builds_without_settings() -> None:
    provider = build_provider("local")
    assert provider.model_id != "voyage:voyage-3.5"
    assert provider.dimensions == 384
