"""The local model is quantized once per machine, computes in int8, stays close to the float one."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import onnx
import pytest

from services.core.embeddings import quantize
from services.core.embeddings.local_minilm import LocalMiniLM
from services.core.embeddings.model_file import source_model
from services.core.embeddings.quantize import cache_path, quantized_model

SENTENCES = [
    "Declining water quality in Lake Merritt, Oakland",
    "Community-driven water quality monitoring network with trained volunteers",
    "Rural clinics run out of insulin every winter because deliveries stop when roads flood.",
    "Build a surveillance database of protesters' faces for the police",
]


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    cache = tmp_path_factory.mktemp("models")
    path = quantized_model(*source_model(), cache_dir=cache)
    assert isinstance(path, Path)
    assert path == cache_path(*source_model(), cache_dir=cache)
    return cache, path.read_bytes()


def test_the_quantized_model_multiplies_in_int8(produced: tuple[Path, bytes]) -> None:
    _, model = produced
    ops = {node.op_type for node in onnx.load_from_string(model).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops


def test_its_vectors_stay_close_to_the_packaged_float_model() -> None:
    quantized = LocalMiniLM().embed(SENTENCES)
    packaged = LocalMiniLM(quantized=False).embed(SENTENCES)
    assert (quantized * packaged).sum(axis=1).min() > 0.98


def test_a_second_start_reads_the_cache_instead_of_quantizing(
    produced: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, model = produced

    def refuse(source: Path, target: Path) -> None:
        raise AssertionError("quantized again")

    monkeypatch.setattr(quantize, "_quantize", refuse)
    path = quantized_model(*source_model(), cache_dir=cache)
    assert isinstance(path, Path)
    assert path.read_bytes() == model


def test_an_unwritable_cache_still_gives_the_model(
    produced: tuple[Path, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, model = produced
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the cache directory should be")
    monkeypatch.setattr(quantize, "_quantize", lambda s, t: t.write_bytes(model))
    assert quantized_model(*source_model(), cache_dir=blocked / "models") == model
    assert list(tmp_path.iterdir()) == [blocked]  # nothing half-written left behind


def test_quantizing_silences_only_the_quantizers_advice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A process quantizes on its first use of the model, while its other threads keep logging.
    stop, sent = threading.Event(), []

    def other_thread() -> None:
        while not stop.is_set():
            sent.append(len(sent))
            logging.warning("request %d served", sent[-1])
            stop.wait(0.005)

    caplog.set_level(logging.INFO)
    logger = threading.Thread(target=other_thread)
    logger.start()
    try:
        quantized_model(*source_model(), cache_dir=tmp_path)
    finally:
        stop.set()
        logger.join()
    from_quantizer = [r for r in caplog.records if "onnxruntime" in Path(r.pathname).parts]
    assert from_quantizer == []
    served = [r.args for r in caplog.records if r.msg == "request %d served"]
    assert served == [(n,) for n in sent]  # none dropped while the quantizer ran
    assert logging.getLogger().filters == []
