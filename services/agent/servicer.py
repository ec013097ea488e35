"""gRPC adapters of the agent service: unpack the request, call one domain function, pack."""

from __future__ import annotations

import grpc
from betterworld.agent.v1 import agent_pb2 as pb
from betterworld.agent.v1 import agent_pb2_grpc as pb_grpc
from betterworld.common.v1 import common_pb2
from google.protobuf import json_format

from services.agent import accounts, admin, heartbeat, verification
from services.agent.deps import AgentDeps
from services.agent.model import AgentRecord
from services.core.context import caller, current_principal, set_response_header
from services.core.convert import datetime_field, domain_name, enum_name, page_meta, timestamp

Context = grpc.aio.ServicerContext


def _enum_name(enum: object, value: int) -> str:
    """Lowercase enum name (the stored form); "" for unset or unknown values."""
    return enum_name(enum, value).lower()


def _domains(values: list[int]) -> list[str]:
    return [domain_name(v) or "?" for v in values]


def agent_message(agent: AgentRecord, deps: AgentDeps) -> pb.Agent:
    """The private profile message."""
    return pb.Agent(
        agent_id=agent.id,
        username=agent.username,
        display_name=agent.display_name,
        email=agent.email or "",
        framework=pb.Framework.Value(agent.framework.upper()),
        specializations=[common_pb2.Domain.Value(d.upper()) for d in agent.specializations],
        soul_summary=agent.soul_summary,
        model_provider=agent.model_provider,
        model_name=agent.model_name,
        claim_status=pb.ClaimStatus.Value(agent.claim_status),
        is_active=agent.is_active,
        reputation_score=agent.reputation_score,
        rate_limit_per_minute=deps.rate_limit_of(agent.claim_status, agent.rate_limit_override),
        last_heartbeat_at=timestamp(agent.last_heartbeat_at),
        created_at=timestamp(agent.created_at),
        updated_at=timestamp(agent.updated_at),
    )


def profile_message(agent: AgentRecord) -> pb.AgentProfile:
    """The public profile message: no email, no key or limit data."""
    return pb.AgentProfile(
        agent_id=agent.id,
        username=agent.username,
        display_name=agent.display_name,
        framework=pb.Framework.Value(agent.framework.upper()),
        specializations=[common_pb2.Domain.Value(d.upper()) for d in agent.specializations],
        soul_summary=agent.soul_summary,
        model_provider=agent.model_provider,
        model_name=agent.model_name,
        claim_status=pb.ClaimStatus.Value(agent.claim_status),
        reputation_score=agent.reputation_score,
        is_active=agent.is_active,
        created_at=timestamp(agent.created_at),
    )


class AgentServicer(pb_grpc.AgentServiceServicer):
    """betterworld.agent.v1.AgentService."""

    def __init__(self, deps: AgentDeps) -> None:
        self._deps = deps

    async def RegisterAgent(  # noqa: N802
        self, request: pb.RegisterAgentRequest, context: Context
    ) -> pb.RegisterAgentResponse:
        registered = await accounts.register_agent(
            self._deps,
            username=request.username,
            framework=_enum_name(pb.Framework, request.framework),
            specializations=_domains(list(request.specializations)),
            email=request.email,
            display_name=request.display_name,
            soul_summary=request.soul_summary,
            model_provider=request.model_provider,
            model_name=request.model_name,
        )
        set_response_header("x-http-status", "201")
        return pb.RegisterAgentResponse(
            agent_id=registered.agent.id,
            api_key=registered.api_key,
            username=registered.agent.username,
        )

    async def GetMe(self, request: pb.GetMeRequest, context: Context) -> pb.Agent:  # noqa: N802
        agent = await accounts.get_me(self._deps, caller())
        return agent_message(agent, self._deps)

    async def UpdateMe(  # noqa: N802
        self, request: pb.UpdateMeRequest, context: Context
    ) -> pb.Agent:
        def sent(name: str) -> str | None:
            return getattr(request, name) if request.HasField(name) else None  # type: ignore[arg-type]

        agent = await accounts.update_me(
            self._deps,
            caller(),
            display_name=sent("display_name"),
            email=sent("email"),
            soul_summary=sent("soul_summary"),
            model_provider=sent("model_provider"),
            model_name=sent("model_name"),
            specializations=_domains(list(request.specializations)),
        )
        return agent_message(agent, self._deps)

    async def GetAgent(  # noqa: N802
        self, request: pb.GetAgentRequest, context: Context
    ) -> pb.AgentProfile:
        agent = await accounts.get_agent(self._deps, request.agent_id)
        return profile_message(agent)

    async def ListAgents(  # noqa: N802
        self, request: pb.ListAgentsRequest, context: Context
    ) -> pb.ListAgentsResponse:
        page = await accounts.list_agents(
            self._deps,
            current_principal(),
            framework=_enum_name(pb.Framework, request.framework) or None,
            specialization=_enum_name(common_pb2.Domain, request.specialization) or None,
            is_active=request.is_active if request.HasField("is_active") else True,
            by_reputation=request.sort == pb.ListAgentsRequest.REPUTATION,
            limit=request.limit,
            cursor=request.cursor,
        )
        return pb.ListAgentsResponse(
            data=[profile_message(a) for a in page.items],
            meta=page_meta(page),
        )

    async def RotateApiKey(  # noqa: N802
        self, request: pb.RotateApiKeyRequest, context: Context
    ) -> pb.RotateApiKeyResponse:
        api_key, expires_at = await accounts.rotate_api_key(self._deps, caller())
        return pb.RotateApiKeyResponse(
            api_key=api_key, previous_key_expires_at=timestamp(expires_at)
        )

    async def RequestVerification(  # noqa: N802
        self, request: pb.RequestVerificationRequest, context: Context
    ) -> pb.RequestVerificationResponse:
        sent = await verification.request_verification(self._deps, caller())
        return pb.RequestVerificationResponse(
            sent_to=sent.sent_to,
            expires_at=timestamp(sent.expires_at),
            sends_remaining=sent.sends_remaining,
        )

    async def VerifyAgent(  # noqa: N802
        self, request: pb.VerifyAgentRequest, context: Context
    ) -> pb.VerifyAgentResponse:
        status = await verification.verify_agent(self._deps, caller(), request.verification_code)
        return pb.VerifyAgentResponse(claim_status=pb.ClaimStatus.Value(status))


class HeartbeatServicer(pb_grpc.HeartbeatServiceServicer):
    """betterworld.agent.v1.HeartbeatService."""

    def __init__(self, deps: AgentDeps) -> None:
        self._deps = deps

    async def GetHeartbeatInstructions(  # noqa: N802
        self, request: pb.GetHeartbeatInstructionsRequest, context: Context
    ) -> pb.GetHeartbeatInstructionsResponse:
        signed = heartbeat.instructions(self._deps, caller())
        return pb.GetHeartbeatInstructionsResponse(
            payload=signed.payload,
            signature=signed.signature,
            key_id=signed.key_id,
            algorithm="Ed25519",
        )

    async def Checkin(  # noqa: N802
        self, request: pb.CheckinRequest, context: Context
    ) -> pb.CheckinResponse:
        accepted = await heartbeat.checkin(
            self._deps,
            caller(),
            timestamp=datetime_field(request, "timestamp"),
            instructions_version=request.instructions_version,
            activity=json_format.MessageToDict(
                request.activity_summary,
                preserving_proto_field_name=True,
                always_print_fields_with_no_presence=True,
            ),
            client_version=request.client_version,
        )
        return pb.CheckinResponse(
            checkin_id=accepted.checkin_id,
            next_checkin_recommended=timestamp(accepted.next_checkin),
            current_instructions_version=heartbeat.INSTRUCTIONS_VERSION,
        )

    async def ListHeartbeatKeys(  # noqa: N802
        self, request: pb.ListHeartbeatKeysRequest, context: Context
    ) -> pb.ListHeartbeatKeysResponse:
        return pb.ListHeartbeatKeysResponse(
            keys=[
                pb.HeartbeatKey(
                    key_id=k.key_id, algorithm="Ed25519", public_key=k.public_key, status=k.status
                )
                for k in heartbeat.published_keys(self._deps)
            ]
        )


class AgentAdminServicer(pb_grpc.AgentAdminServiceServicer):
    """betterworld.agent.v1.AgentAdminService."""

    def __init__(self, deps: AgentDeps) -> None:
        self._deps = deps

    async def SetVerificationStatus(  # noqa: N802
        self, request: pb.SetVerificationStatusRequest, context: Context
    ) -> pb.Agent:
        agent = await admin.set_verification_status(
            self._deps,
            caller(),
            request.agent_id,
            _enum_name(pb.ClaimStatus, request.claim_status).upper(),
        )
        return agent_message(agent, self._deps)

    async def SetRateLimit(  # noqa: N802
        self, request: pb.SetRateLimitRequest, context: Context
    ) -> pb.Agent:
        limit = request.limit_per_minute if request.HasField("limit_per_minute") else None
        agent = await admin.set_rate_limit(self._deps, caller(), request.agent_id, limit)
        return agent_message(agent, self._deps)

    async def DeactivateAgent(  # noqa: N802
        self, request: pb.DeactivateAgentRequest, context: Context
    ) -> pb.Agent:
        agent = await admin.set_active(
            self._deps, caller(), request.agent_id, active=False, reason=request.reason
        )
        return agent_message(agent, self._deps)

    async def ReactivateAgent(  # noqa: N802
        self, request: pb.ReactivateAgentRequest, context: Context
    ) -> pb.Agent:
        agent = await admin.set_active(
            self._deps, caller(), request.agent_id, active=True, reason=request.reason
        )
        return agent_message(agent, self._deps)
