"""The service registry: one line per service, checked for clashes; definitions stay light."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from services.agent.definition import DEFINITION as AGENT
from services.core.definition import lazy
from services.registry import REGISTRY


def test_the_mesh_registers_its_services_in_order() -> None:
    assert REGISTRY.names == ("agent", "content", "guardrail", "mission")
    assert REGISTRY.get("content").port == 50052
    with pytest.raises(ValueError, match="unknown service 'nope'"):
        REGISTRY.get("nope")


def test_a_name_or_a_port_registered_twice_is_refused() -> None:
    twin = dataclasses.replace(AGENT, port=50099, metrics_port=9199)
    with pytest.raises(ValueError, match="registered twice"):
        _ = REGISTRY.with_service(twin).definitions
    clash = dataclasses.replace(AGENT, name="other", metrics_port=9199)
    with pytest.raises(ValueError, match="share default ports"):
        _ = REGISTRY.with_service(clash).definitions


def test_listing_the_services_imports_none_of_their_code() -> None:
    # The CLI and the settings read the registry: it must not pull in servicers, stores or
    # models (seconds of imports, and the classifier's numpy stack).
    code = (
        "import sys; from services.registry import REGISTRY; REGISTRY.names; "
        "print(sorted(m for m in sys.modules if m.endswith(('.servicer', '.store', '.service'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_lazy_imports_its_target_on_the_first_call() -> None:
    join = lazy("os.path:join")
    assert join("a", "b") == "a/b"
    with pytest.raises(ValueError, match="module:function"):
        lazy("os.path.join")
