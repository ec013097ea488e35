"""Property-based junk against every content RPC over gRPC: never INTERNAL/UNKNOWN, no leaks."""

from __future__ import annotations

import grpc
import pytest
from betterworld.content.v1 import content_pb2
from google.protobuf import descriptor

from services.content.definition import DEFINITION
from tests.support.content import ContentClient
from tests.support.fuzzing import methods_of, send_junk
from tests.support.helpers import bearer


@pytest.fixture
def content_settings(content_settings):  # type: ignore[no-untyped-def]
    return content_settings.model_copy(update={"rate_limit_content_per_agent": 1_000_000})


@pytest.mark.parametrize(
    ("service_name", "method"),
    methods_of(DEFINITION.contract),
    ids=lambda m: getattr(m, "name", m),
)
async def test_generated_junk_never_causes_internal_errors(
    content: ContentClient, service_name: str, method: descriptor.MethodDescriptor
) -> None:
    author = await content.agent()
    problem = await content.approved_problem(author)
    del problem  # some generated ids hit real rows only by chance; a row makes reads non-empty
    codes = await send_junk(
        content.service.channel,
        f"/{service_name}/{method.name}",
        getattr(content_pb2, method.input_type.name),
        [(), author.auth, content.internal_auth, bearer("bw_agent_junk-key-000000000000")],
        examples=30,
    )
    assert grpc.StatusCode.RESOURCE_EXHAUSTED not in codes
