"""The local model with int8 arithmetic: the packaged model, quantized once per machine.

The packaged all-MiniLM-L6-v2 stores int8 weights but computes in float32: ONNX Runtime turns the
weights back into floats when it loads them, and the matrix products then cost about 9 ms for a
30-token title on one core of the bench VM. Dynamic quantization (int8 weights per output
channel, activations quantized per call) computes those products in int8: about 3.4 ms, with
vectors at cosine 0.984 or more (median 0.994) to the float ones over the guardrail evaluation
set.

The result depends only on the source file and the versions of onnx and onnxruntime; it is
cached by those under $XDG_CACHE_HOME/betterworld/models (producing it takes about 3 s). The
production image produces it at build time: `python -m services.core.embeddings.quantize`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from services.core.cache_dir import user_cache_dir
from services.core.logging import get_logger

log = get_logger(__name__)
RECIPE = "dynamic-int8-per-channel-1"
"""Names the transformation; a change to it must change this name (and so the cache file)."""


def _versions() -> str:
    # From the installed metadata: importing onnx only to read its version would cost memory
    # in every process that loads the cached model.
    return f"onnx{version('onnx')}-ort{version('onnxruntime')}"


def cache_path(source: Path, source_sha256: str, cache_dir: Path | None = None) -> Path:
    """Where the quantized form of `source` is cached for these library versions."""
    key = hashlib.sha256(f"{source_sha256}:{RECIPE}:{_versions()}".encode()).hexdigest()
    return (cache_dir or user_cache_dir("models")) / f"{source.stem}-{key[:20]}.onnx"


def _quantize(source: Path, target: Path) -> None:
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as scratch:
        # Constant folding first, so that the quantizer sees the float weights the packaged
        # model computes with, not its int8 storage and the Cast/Mul that undo it.
        folded = Path(scratch) / "folded.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        # The quantizer advises pre-processing on the root logger; the folding above is ours.
        # A filter rather than a lower level: other threads keep logging meanwhile.
        root = logging.getLogger()
        root.addFilter(_without_quantizer_advice)
        try:
            quantize_dynamic(folded, target, weight_type=QuantType.QInt8, per_channel=True)
        finally:
            root.removeFilter(_without_quantizer_advice)


def _without_quantizer_advice(record: logging.LogRecord) -> bool:
    """Drops the quantizer's warnings; keeps its errors and everything logged by others."""
    return record.levelno >= logging.ERROR or "onnxruntime" not in Path(record.pathname).parts


def quantized_model(
    source: Path, source_sha256: str, cache_dir: Path | None = None
) -> Path | bytes:
    """The quantized model for `onnxruntime.InferenceSession`: the cached file, produced now if
    this machine has none; the serialized model itself only when the cache cannot be written.

    Several processes may produce it at once: each writes its own file and renames it into
    place, and the results are identical. An unwritable cache only costs the time to produce it
    again next start (and the memory of a copy: loading from a file needs less).
    """
    path = cache_path(source, source_sha256, cache_dir)
    if path.is_file():
        return path
    with tempfile.TemporaryDirectory() as scratch:
        produced = Path(scratch) / path.name
        _quantize(source, produced)
        model = produced.read_bytes()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
            written = Path(f.name)
            f.write(model)
        try:
            os.replace(written, path)
        except OSError:
            written.unlink(missing_ok=True)
            raise
    except OSError as exc:
        log.warning("embedding_model_cache_unwritable", path=str(path), error=str(exc))
        return model
    log.info("embedding_model_quantized", path=str(path))
    return path


def main() -> int:
    """Produces the local model's quantized form into the cache (e.g. in an image build)."""
    from services.core.embeddings.model_file import source_model

    source, digest = source_model()
    quantized_model(source, digest)
    print(cache_path(source, digest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
