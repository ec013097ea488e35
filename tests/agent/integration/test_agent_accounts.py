"""AgentService over real gRPC and a real database: registration, profiles, lists, keys."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from betterworld.agent.v1 import agent_pb2
from betterworld.common.v1 import common_pb2

from tests.support.agents import register
from tests.support.helpers import RunningService, bearer, unpack

pb = agent_pb2


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"username": "ab"}, "username"),
        ({"username": "x" * 101}, "username"),
        ({"username": "Upper"}, "username"),
        ({"username": "-leading"}, "username"),
        ({"username": "trailing_"}, "username"),
        ({"username": "double--dash"}, "username"),
        ({"username": "mixed_-sep"}, "username"),
        ({"username": "admin"}, "username"),
        ({"username": "undefined"}, "username"),
        ({"username": "spa ce"}, "username"),
        ({"framework": pb.FRAMEWORK_UNSPECIFIED}, "framework"),
        ({"framework": 99}, "framework"),
        ({"specializations": []}, "specializations"),
        ({"specializations": [1, 2, 3, 4, 5, 6]}, "specializations"),
        ({"specializations": [1, 1]}, "specializations"),
        ({"specializations": [0]}, "specializations"),
        ({"specializations": [42]}, "specializations"),
        ({"email": "not-an-email"}, "email"),
        ({"display_name": "d" * 201}, "display_name"),
        ({"display_name": "nul\x00byte"}, "display_name"),
        ({"soul_summary": "s" * 2001}, "soul_summary"),
        ({"model_provider": "p" * 51}, "model_provider"),
        ({"model_name": "m" * 101}, "model_name"),
    ],
)
async def test_registration_rejects_each_bad_field(
    agent_service: RunningService, fields: dict[str, object], bad_field: str
) -> None:
    username = str(fields.pop("username", "valid-name"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await register(agent_service, username, **fields)
    error = unpack(info.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert list(error.field_violations) == [bad_field]
    assert error.domain == "agent.betterworld"


async def test_registration_reports_every_bad_field_at_once(agent_service: RunningService) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_service.agents.RegisterAgent(
            pb.RegisterAgentRequest(username="!", email="nope", model_name="m" * 200)
        )
    assert set(unpack(info.value).field_violations) == {
        "username",
        "framework",
        "specializations",
        "email",
        "model_name",
    }


async def test_usernames_are_unique_case_insensitively(agent_service: RunningService) -> None:
    await register(agent_service, "river-watch")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await register(agent_service, "river-watch")
    error = unpack(info.value)
    assert error.code == grpc.StatusCode.ALREADY_EXISTS
    assert error.reason == "USERNAME_TAKEN"


async def test_concurrent_registrations_of_one_username_create_exactly_one(
    agent_service: RunningService,
) -> None:
    results = await asyncio.gather(
        *(register(agent_service, "race-name") for _ in range(8)), return_exceptions=True
    )
    successes = [r for r in results if isinstance(r, pb.RegisterAgentResponse)]
    failures = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(successes) == 1
    assert len(failures) == 7
    assert {unpack(f).reason for f in failures} == {"USERNAME_TAKEN"}


async def test_get_me_returns_private_profile_and_get_agent_the_public_one(
    agent_service: RunningService,
) -> None:
    reg = await register(
        agent_service,
        "profile-agent",
        email="Profile@Example.org",
        display_name="Profile Agent",
        specializations=[common_pb2.ELDER_CARE, common_pb2.HUMAN_RIGHTS],
    )
    me = await agent_service.agents.GetMe(pb.GetMeRequest(), metadata=bearer(reg.api_key))
    assert me.email == "Profile@example.org"
    assert list(me.specializations) == [common_pb2.ELDER_CARE, common_pb2.HUMAN_RIGHTS]
    assert me.claim_status == pb.PENDING
    public = await agent_service.agents.GetAgent(pb.GetAgentRequest(agent_id=reg.agent_id))
    assert public.username == "profile-agent"
    assert "email" not in {f.name for f, _ in public.ListFields()}
    assert not hasattr(public, "email")


async def test_update_me_changes_only_the_fields_sent(agent_service: RunningService) -> None:
    reg = await register(agent_service, "update-agent", display_name="Before", model_name="m1")
    auth = bearer(reg.api_key)
    updated = await agent_service.agents.UpdateMe(
        pb.UpdateMeRequest(display_name="After"), metadata=auth
    )
    assert updated.display_name == "After"
    assert updated.model_name == "m1"
    cleared = await agent_service.agents.UpdateMe(pb.UpdateMeRequest(model_name=""), metadata=auth)
    assert cleared.model_name == ""
    assert cleared.display_name == "After"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_service.agents.UpdateMe(
            pb.UpdateMeRequest(soul_summary="x" * 2001), metadata=auth
        )
    assert unpack(info.value).field_violations.keys() == {"soul_summary"}


@pytest.mark.parametrize("agent_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", ""])
async def test_get_agent_not_found_names_the_resource(
    agent_service: RunningService, agent_id: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_service.agents.GetAgent(pb.GetAgentRequest(agent_id=agent_id))
    error = unpack(info.value)
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert error.resource == ("agent", agent_id)


async def test_list_agents_filters_sorts_and_paginates(agent_service: RunningService) -> None:
    for i in range(7):
        await register(
            agent_service,
            f"lister-{i}",
            framework=pb.CREWAI if i % 2 else pb.AUTOGEN,
            specializations=[common_pb2.GENDER_EQUALITY if i < 3 else common_pb2.ELDER_CARE],
        )
    seen: list[str] = []
    cursor = ""
    while True:
        page = await agent_service.agents.ListAgents(pb.ListAgentsRequest(limit=3, cursor=cursor))
        seen += [a.username for a in page.data]
        assert page.meta.limit == 3
        if not page.meta.has_more:
            assert page.meta.next_cursor == ""
            break
        cursor = page.meta.next_cursor
    assert seen == [f"lister-{i}" for i in reversed(range(7))]

    crewai = await agent_service.agents.ListAgents(pb.ListAgentsRequest(framework=pb.CREWAI))
    assert {a.username for a in crewai.data} == {"lister-1", "lister-3", "lister-5"}
    gender = await agent_service.agents.ListAgents(
        pb.ListAgentsRequest(specialization=common_pb2.GENDER_EQUALITY)
    )
    assert {a.username for a in gender.data} == {"lister-0", "lister-1", "lister-2"}


async def test_pagination_is_stable_under_concurrent_inserts(agent_service: RunningService) -> None:
    for i in range(6):
        await register(agent_service, f"stable-{i}")
    first = await agent_service.agents.ListAgents(pb.ListAgentsRequest(limit=3))
    for i in range(3):
        await register(agent_service, f"newcomer-{i}")
    second = await agent_service.agents.ListAgents(
        pb.ListAgentsRequest(limit=3, cursor=first.meta.next_cursor)
    )
    names = [a.username for a in (*first.data, *second.data)]
    assert names == [f"stable-{i}" for i in reversed(range(6))]


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"limit": 101}, "limit"),
        ({"limit": -1}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": "eyJzIjoiYWdlbnRzIn0"}, "cursor"),
    ],
)
async def test_list_agents_rejects_bad_paging(
    agent_service: RunningService, request_fields: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_service.agents.ListAgents(pb.ListAgentsRequest(**request_fields))  # type: ignore[arg-type]
    assert unpack(info.value).field_violations.keys() == {field}


async def test_cursor_is_bound_to_its_query(agent_service: RunningService) -> None:
    for i in range(3):
        await register(agent_service, f"bound-{i}")
    page = await agent_service.agents.ListAgents(pb.ListAgentsRequest(limit=1))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await agent_service.agents.ListAgents(
            pb.ListAgentsRequest(
                limit=1, cursor=page.meta.next_cursor, sort=pb.ListAgentsRequest.REPUTATION
            )
        )
    assert unpack(info.value).reason == "CURSOR_INVALID"


async def test_rotated_key_keeps_working_but_is_marked_deprecated(
    agent_service: RunningService,
) -> None:
    reg = await register(agent_service, "rotator")
    rotated = await agent_service.agents.RotateApiKey(
        pb.RotateApiKeyRequest(), metadata=bearer(reg.api_key)
    )
    assert rotated.api_key != reg.api_key
    call = agent_service.agents.GetMe(pb.GetMeRequest(), metadata=bearer(reg.api_key))
    await call
    assert ("x-bw-key-deprecated", "true") in tuple(await call.initial_metadata())
    fresh = agent_service.agents.GetMe(pb.GetMeRequest(), metadata=bearer(rotated.api_key))
    await fresh
    assert "x-bw-key-deprecated" not in dict(await fresh.initial_metadata())


async def test_messages_over_the_size_limit_are_resource_exhausted(
    agent_service: RunningService,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await register(agent_service, "big-agent", soul_summary="x" * (2 * 1024 * 1024))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
