"""The README's heartbeat verification example, run as written against the real stack."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.e2e_stack import Stack

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"


def _example_source() -> str:
    text = README.read_text()
    block = re.search(
        r"<!-- heartbeat-example:start -->\n```python\n(.*?)```\n<!-- heartbeat-example:end -->",
        text,
        re.DOTALL,
    )
    assert block, "the README lost its heartbeat example markers"
    return block.group(1)


def test_readme_heartbeat_example_verifies_real_instructions(
    e2e_stack: Stack, new_agent: Callable[..., dict[str, Any]]
) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(_example_source(), "README.md", "exec"), namespace)
    agent = new_agent("readme")
    document = namespace["fetch_verified_instructions"](e2e_stack.base_url, agent["apiKey"])
    assert document["agentId"] == agent["agentId"]
    assert set(document) >= {"instructions", "issuedAt", "expiresAt", "nonce", "version"}
