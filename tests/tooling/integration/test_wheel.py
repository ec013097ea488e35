"""The built wheel, installed outside the source tree (as the container image installs it): its
`betterworld` entry point runs, and `betterworld migrate` finds its migrations and migrates an
empty database to the head."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from services.core.migrate import head_revision
from tests.support.databases import scratch_database
from tooling.devstack import EmbeddedPostgres

ROOT = Path(__file__).parents[3]
UV = ROOT / ".tools" / "uv" / "bin" / "uv"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel (its dependencies come from the project's venv through a
    .pth file, so nothing is downloaded); returns its `betterworld`."""
    work = tmp_path_factory.mktemp("wheel")
    uv = str(UV) if UV.exists() else shutil.which("uv")
    assert uv, "uv is installed by `make install`"
    subprocess.run([uv, "build", "--wheel", "--out-dir", str(work / "dist"), str(ROOT)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    (wheel,) = (work / "dist").glob("*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", purelib],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    # Only the dependencies: a directory named in a .pth is not scanned for .pth files, so the
    # project venv's editable install (the source tree on sys.path) does not come along.
    (site / "zz_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [uv, "pip", "install", "--no-deps", "--python", str(venv / "bin" / "python"), str(wheel)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return venv / "bin" / "betterworld"


def test_the_wheel_migrates_an_empty_database_from_outside_the_source_tree(
    installed: Path, postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    with scratch_database(postgres, "bw_wheel") as url:
        env = {"PATH": os.environ["PATH"], "DATABASE_URL": url, "DATA_DIR": str(tmp_path)}
        where = subprocess.run(
            [str(installed.parent / "python"), "-c", "import services; print(services.__file__)"],
            env=env, cwd=tmp_path, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert str(ROOT) not in where  # the installed package, not the source tree
        done = subprocess.run(
            [str(installed), "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.strip().endswith(f"to {head_revision(url)}")
        help_text = subprocess.run(
            [str(installed), "--help"], env=env, cwd=tmp_path, capture_output=True, text=True,
            check=True,
        ).stdout  # fmt: skip
        for command in ("up", "serve", "worker", "migrate", "backup", "status"):
            assert command in help_text
