"""Property-based junk against every mission RPC over gRPC, with every kind of credential
(none, an agent key, a human's access and refresh tokens, a forged JWT, `alg: none`, the
internal token): never INTERNAL/UNKNOWN, no leaks."""

from __future__ import annotations

import base64
import json

import grpc
import pytest
from google.protobuf import descriptor, symbol_database

from services.mission.definition import DEFINITION
from tests.support.fuzzing import methods_of, send_junk, streaming_kind
from tests.support.helpers import bearer
from tests.support.missions import MissionWorld


def _unsigned_jwt(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    ("service_name", "method"),
    methods_of(DEFINITION.contract),
    ids=lambda m: getattr(m, "name", m),
)
async def test_generated_junk_never_causes_internal_errors(
    mission_world: MissionWorld, service_name: str, method: descriptor.MethodDescriptor
) -> None:
    agent, solution_id = await mission_world.agent_with_solution()
    await mission_world.approved(agent, solution_id)
    tokens = await mission_world.humans.verified(f"fuzz-{method.name.lower()}@example.org")
    forged = tokens.access_token[:-4] + (
        "AAAA" if not tokens.access_token.endswith("AAAA") else "BBBB"
    )
    alg_none = _unsigned_jwt(
        {
            "sub": tokens.user.human_id,
            "sid": "x",
            "jti": "y",
            "typ": "access",
            "iat": 0,
            "exp": 4102444800,
        }
    )
    credentials = [
        (),
        agent.auth,
        tuple(bearer(tokens.access_token)),
        tuple(bearer(tokens.refresh_token)),
        tuple(bearer(forged)),
        tuple(bearer(alg_none)),
        mission_world.content.internal_auth,
    ]
    request_cls = symbol_database.Default().GetSymbol(method.input_type.full_name)
    codes = await send_junk(
        mission_world.service.channel,
        f"/{service_name}/{method.name}",
        request_cls,
        credentials,
        examples=25,
        streaming=streaming_kind(method),
    )
    assert grpc.StatusCode.INTERNAL not in codes
