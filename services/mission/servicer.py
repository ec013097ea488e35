"""gRPC adapters of the mission service: unpack the request, call one domain function, pack."""

from __future__ import annotations

import grpc
from betterworld.mission.v1 import mission_pb2 as pb
from betterworld.mission.v1 import mission_pb2_grpc as pb_grpc

from services.core.context import caller, set_response_header
from services.core.convert import page_meta, timestamp
from services.mission import admin, humans
from services.mission.deps import MissionDeps
from services.mission.model import HumanRecord, Session

Context = grpc.aio.ServicerContext


def human_message(human: HumanRecord) -> pb.Human:
    """A human as operators and the human themself see them."""
    return pb.Human(
        human_id=human.id,
        email=human.email,
        display_name=human.display_name,
        email_verified=human.email_verified,
        active=human.is_active,
        created_at=timestamp(human.created_at),
    )


def tokens_message(session: Session) -> pb.Tokens:
    """A login's tokens and its human."""
    return pb.Tokens(
        access_token=session.access_token,
        refresh_token=session.refresh_token,
        expires_in=session.expires_in,
        user=human_message(session.human),
    )


class HumanAuthServicer(pb_grpc.HumanAuthServiceServicer):
    """HumanAuthService: accounts, email codes and login sessions."""

    def __init__(self, deps: MissionDeps) -> None:
        self._deps = deps

    async def RegisterHuman(  # noqa: N802
        self, request: pb.RegisterHumanRequest, context: Context
    ) -> pb.RegisterHumanResponse:
        human = await humans.register(
            self._deps,
            email=request.email,
            password=request.password,
            display_name=request.display_name,
        )
        set_response_header("x-http-status", "201")
        return pb.RegisterHumanResponse(
            user_id=human.id, email=human.email, message=humans.REGISTERED
        )

    async def VerifyEmail(  # noqa: N802
        self, request: pb.VerifyEmailRequest, context: Context
    ) -> pb.Tokens:
        session = await humans.verify_email(self._deps, email=request.email, code=request.code)
        return tokens_message(session)

    async def ResendCode(  # noqa: N802
        self, request: pb.ResendCodeRequest, context: Context
    ) -> pb.ResendCodeResponse:
        message = await humans.resend_code(self._deps, email=request.email)
        return pb.ResendCodeResponse(message=message)

    async def Login(self, request: pb.LoginRequest, context: Context) -> pb.Tokens:  # noqa: N802
        session = await humans.login(self._deps, email=request.email, password=request.password)
        return tokens_message(session)

    async def Refresh(self, request: pb.RefreshRequest, context: Context) -> pb.Tokens:  # noqa: N802
        session = await humans.refresh(self._deps, refresh_token=request.refresh_token)
        return tokens_message(session)

    async def Logout(  # noqa: N802
        self, request: pb.LogoutRequest, context: Context
    ) -> pb.LogoutResponse:
        await humans.logout(self._deps, caller())
        return pb.LogoutResponse()


class HumanAdminServicer(pb_grpc.HumanAdminServiceServicer):
    """HumanAdminService: operators' list and (de)activation of humans."""

    def __init__(self, deps: MissionDeps) -> None:
        self._deps = deps

    async def ListHumans(  # noqa: N802
        self, request: pb.ListHumansRequest, context: Context
    ) -> pb.ListHumansResponse:
        page = await admin.list_humans(self._deps, cursor=request.cursor, limit=request.limit)
        return pb.ListHumansResponse(
            data=[human_message(h) for h in page.items], meta=page_meta(page)
        )

    async def DeactivateHuman(  # noqa: N802
        self, request: pb.DeactivateHumanRequest, context: Context
    ) -> pb.Human:
        human = await admin.set_active(
            self._deps, caller(), request.human_id, active=False, reason=request.reason
        )
        return human_message(human)

    async def ReactivateHuman(  # noqa: N802
        self, request: pb.ReactivateHumanRequest, context: Context
    ) -> pb.Human:
        human = await admin.set_active(
            self._deps, caller(), request.human_id, active=True, reason=request.reason
        )
        return human_message(human)
