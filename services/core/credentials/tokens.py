"""Humans' tokens: JWTs (HS256, PyJWT) carrying the human (`sub`), the login session (`sid`),
a unique id (`jti`), issue and expiry times, and their type (`typ`: access or refresh).

`JWT_SECRET` signs; `JWT_SECRET_PREVIOUS`, during a rotation, still verifies. Only HS256 is
accepted (never `none`), every claim is required, and an access token is never a refresh token
or the other way round.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import jwt

from services.core import errors

ALGORITHM = "HS256"
_REQUIRED = ("sub", "sid", "jti", "iat", "exp", "typ")
_LEEWAY_SECONDS = 5


class TokenType(StrEnum):
    """What a token is for."""

    ACCESS = "access"
    REFRESH = "refresh"


@dataclass(frozen=True)
class Claims:
    """A verified token's claims."""

    human_id: str
    session_id: str
    token_id: str
    type: TokenType
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class IssuedToken:
    """A signed token and its claims."""

    token: str
    claims: Claims


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated parts: what a JWT looks like (API keys never contain a dot)."""
    return token.count(".") == 2


class TokenSigner:
    """Issues and verifies humans' tokens."""

    def __init__(self, secret: str, previous: str | None = None) -> None:
        self._secret = secret
        self._verifying = [secret] + ([previous] if previous else [])

    def issue(
        self,
        *,
        human_id: str,
        session_id: str,
        type: TokenType,
        lifetime: timedelta,
        token_id: str | None = None,
        now: datetime | None = None,
    ) -> IssuedToken:
        """A new token (`token_id`: its jti, random when not given)."""
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        claims = Claims(
            human_id=human_id,
            session_id=session_id,
            token_id=token_id or str(uuid.uuid4()),
            type=type,
            issued_at=issued,
            expires_at=issued + lifetime,
        )
        payload = {
            "sub": claims.human_id,
            "sid": claims.session_id,
            "jti": claims.token_id,
            "typ": claims.type.value,
            "iat": int(claims.issued_at.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
        }
        return IssuedToken(jwt.encode(payload, self._secret, algorithm=ALGORITHM), claims)

    def verify(self, token: str, expected: TokenType) -> Claims:
        """The claims of a valid token of type `expected`; UNAUTHENTICATED otherwise (the
        reason says TOKEN_EXPIRED or TOKEN_INVALID, never why a signature failed)."""
        payload = None
        for secret in self._verifying:
            try:
                payload = jwt.decode(
                    token,
                    secret,
                    algorithms=[ALGORITHM],
                    options={"require": list(_REQUIRED)},
                    leeway=_LEEWAY_SECONDS,
                )
                break
            except jwt.ExpiredSignatureError:
                raise errors.Unauthenticated(
                    "the token has expired", reason="TOKEN_EXPIRED"
                ) from None
            except jwt.InvalidSignatureError:
                continue  # maybe signed with the previous secret
            except jwt.PyJWTError:
                break
        invalid = errors.Unauthenticated("the token is not valid", reason="TOKEN_INVALID")
        if payload is None or payload.get("typ") != expected.value:
            raise invalid
        try:
            return Claims(
                human_id=str(uuid.UUID(str(payload["sub"]))),
                session_id=str(uuid.UUID(str(payload["sid"]))),
                token_id=str(uuid.UUID(str(payload["jti"]))),
                type=expected,
                issued_at=datetime.fromtimestamp(int(payload["iat"]), UTC),
                expires_at=datetime.fromtimestamp(int(payload["exp"]), UTC),
            )
        except (ValueError, TypeError):
            raise invalid from None
