"""gen/ is what `make gen` produces from protos/ right now."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _files(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    subprocess.run(
        [str(ROOT / "scripts" / "gen_protos.sh"), str(out)],
        check=True,
        capture_output=True,
        env={"PYTHON": sys.executable, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"},
    )
    committed = ROOT / "gen"
    assert _files(out) == _files(committed), "gen/ has missing or extra files: run `make gen`"
    stale = [
        name
        for name in sorted(_files(out))
        if not filecmp.cmp(out / name, committed / name, shallow=False)
    ]
    assert not stale, f"gen/ is stale ({stale}): run `make gen`"
