"""Where derived files that any process may rebuild (quantized models, embedded exemplars) live."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir(name: str) -> Path:
    """$XDG_CACHE_HOME/betterworld/<name>, or ~/.cache/betterworld/<name>; not created here."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "betterworld" / name
