"""Humans' JWTs: what is accepted, and every way a token is refused."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from services.core import errors
from services.core.credentials.tokens import TokenSigner, TokenType, looks_like_jwt

SECRET = "s" * 40
HUMAN, SESSION = str(uuid.uuid4()), str(uuid.uuid4())


def _issue(signer: TokenSigner, **overrides: object) -> str:
    options: dict[str, object] = {
        "human_id": HUMAN,
        "session_id": SESSION,
        "type": TokenType.ACCESS,
        "lifetime": timedelta(minutes=15),
    }
    return signer.issue(**{**options, **overrides}).token  # type: ignore[arg-type]


def _reason(signer: TokenSigner, token: str, expected: TokenType = TokenType.ACCESS) -> str:
    with pytest.raises(errors.Unauthenticated) as raised:
        signer.verify(token, expected)
    return raised.value.reason or ""


def test_a_token_carries_every_claim_and_verifies() -> None:
    signer = TokenSigner(SECRET)
    issued = signer.issue(
        human_id=HUMAN, session_id=SESSION, type=TokenType.REFRESH, lifetime=timedelta(days=7)
    )
    assert looks_like_jwt(issued.token)
    payload = jwt.decode(issued.token, SECRET, algorithms=["HS256"])
    assert set(payload) == {"sub", "sid", "jti", "iat", "exp", "typ"}
    assert payload["exp"] - payload["iat"] == 7 * 24 * 3600
    claims = signer.verify(issued.token, TokenType.REFRESH)
    assert (claims.human_id, claims.session_id, claims.token_id) == (
        HUMAN,
        SESSION,
        issued.claims.token_id,
    )


def test_an_access_token_is_not_a_refresh_token_nor_the_reverse() -> None:
    signer = TokenSigner(SECRET)
    assert _reason(signer, _issue(signer), TokenType.REFRESH) == "TOKEN_INVALID"
    refresh = _issue(signer, type=TokenType.REFRESH)
    assert _reason(signer, refresh, TokenType.ACCESS) == "TOKEN_INVALID"


def test_expired_tokens_are_refused_as_expired() -> None:
    signer = TokenSigner(SECRET)
    old = _issue(signer, now=datetime.now(UTC) - timedelta(hours=1))
    assert _reason(signer, old) == "TOKEN_EXPIRED"


def test_another_secret_is_refused_and_the_previous_one_is_accepted_during_a_rotation() -> None:
    old_signer = TokenSigner("o" * 40)
    token = _issue(old_signer)
    assert _reason(TokenSigner(SECRET), token) == "TOKEN_INVALID"
    assert TokenSigner(SECRET, previous="o" * 40).verify(token, TokenType.ACCESS).human_id == HUMAN


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_alg_none_tampering_and_missing_claims_are_refused() -> None:
    signer = TokenSigner(SECRET)
    good = _issue(signer)
    header, payload, signature = good.split(".")
    claims = jwt.decode(good, SECRET, algorithms=["HS256"])
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."
    assert _reason(signer, unsigned) == "TOKEN_INVALID"
    other = _b64({**claims, "sub": str(uuid.uuid4())})
    assert _reason(signer, f"{header}.{other}.{signature}") == "TOKEN_INVALID"
    no_session = jwt.encode({k: v for k, v in claims.items() if k != "sid"}, SECRET)
    assert _reason(signer, no_session) == "TOKEN_INVALID"
    not_uuid = jwt.encode({**claims, "sub": "robert'); drop table"}, SECRET)
    assert _reason(signer, not_uuid) == "TOKEN_INVALID"
    assert _reason(signer, "a.b.c") == "TOKEN_INVALID"
