"""Humans as a client of the mission service sees them: register, read the code, log in."""

from __future__ import annotations

from dataclasses import dataclass

from betterworld.mission.v1 import mission_pb2 as pb
from betterworld.mission.v1 import mission_pb2_grpc as pb_grpc

from tests.support.helpers import RunningService
from tests.support.mail import last_code

PASSWORD = "Sturdy-Pass-42"


@dataclass
class Humans:
    """Stubs of a running mission service and the steps most tests start with."""

    service: RunningService

    @property
    def auth(self) -> pb_grpc.HumanAuthServiceStub:
        """HumanAuthService stub."""
        return pb_grpc.HumanAuthServiceStub(self.service.channel)

    @property
    def admin(self) -> pb_grpc.HumanAdminServiceStub:
        """HumanAdminService stub."""
        return pb_grpc.HumanAdminServiceStub(self.service.channel)

    async def register(
        self, email: str, password: str = PASSWORD, name: str = "Test Human"
    ) -> pb.RegisterHumanResponse:
        """A new, unverified account."""
        return await self.auth.RegisterHuman(
            pb.RegisterHumanRequest(email=email, password=password, display_name=name)
        )

    async def code(self, email: str) -> str:
        """The newest code emailed to `email`."""
        return await last_code(self.service.runtime.engine, email)

    async def verified(self, email: str, password: str = PASSWORD) -> pb.Tokens:
        """Registers and confirms the email; returns the first session's tokens."""
        await self.register(email, password)
        code = await self.code(email)
        return await self.auth.VerifyEmail(pb.VerifyEmailRequest(email=email, code=code))
