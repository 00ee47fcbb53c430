"""Session tokens (JWT, HS256) and CSRF tokens (itsdangerous); pure functions, no I/O."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
from itsdangerous import BadSignature, URLSafeTimedSerializer

ALGORITHM = "HS256"
SESSION_AUDIENCE = "chat:session"
CSRF_SALT = "csrf"
CSRF_REUSE_SECS = 300  # a token's age when a fresh one is signed instead (far below its max age)
TOKENS_KEPT = 4096  # the good tokens read lately, each kept as its digest and claims


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class SessionClaims:
    user_id: str
    jti: str
    expires_at: datetime


def issue_session_token(
    user_id: str, *, secret: str, lifetime: timedelta, now: datetime | None = None
) -> tuple[str, SessionClaims]:
    """A signed token for user_id, and the claims it carries."""
    now = now or datetime.now(UTC)
    claims = SessionClaims(user_id, secrets.token_urlsafe(16), now + lifetime)
    payload = {
        "sub": user_id,
        "jti": claims.jti,
        "iat": int(now.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
        "aud": SESSION_AUDIENCE,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM), claims


def read_session_token(token: str, *, secret: str) -> SessionClaims:
    """The claims of a valid token; InvalidToken for a bad signature, algorithm, audience or age,
    or a malformed claim.

    A token read before is not verified again (every request of a session sends the same one):
    only its age is checked anew. It is remembered by its digest with the secret that verified
    it, not as itself: no copy of it stays for as long as its session is in use (an open
    event stream lets go of its request's headers too, web/events.py).
    """
    key = (hashlib.sha256(token.encode()).digest(), secret)
    claims = _read.get(key)
    if claims is None:
        claims = _verified(token, secret)
        _read[key] = claims
        if len(_read) > TOKENS_KEPT:
            _read.popitem(last=False)
    else:
        _read.move_to_end(key)
    if claims.expires_at <= datetime.now(UTC):
        raise InvalidToken("Signature has expired")
    return claims


_read: OrderedDict[tuple[bytes, str], SessionClaims] = OrderedDict()  # least recent first


def _verified(token: str, secret: str) -> SessionClaims:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=SESSION_AUDIENCE,
            options={"require": ["sub", "jti", "iat", "exp", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc
    sub, jti = payload["sub"], payload["jti"]
    if not (isinstance(sub, str) and sub and isinstance(jti, str) and jti):
        raise InvalidToken("malformed claims")
    _timestamp(payload["iat"])
    return SessionClaims(sub, jti, _timestamp(payload["exp"]))


def _timestamp(claim: object) -> datetime:
    """A time claim as we issue it: whole seconds since the epoch, as a time; else InvalidToken.

    PyJWT lets through what int() accepts (numeric strings, booleans, huge numbers).
    """
    if type(claim) is not int or claim < 0:
        raise InvalidToken("malformed time claim")
    try:
        return datetime.fromtimestamp(claim, UTC)
    except (OverflowError, ValueError, OSError):
        raise InvalidToken("time claim out of range") from None


def _csrf_serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=CSRF_SALT)


def issue_csrf_token(session_jti: str, *, secret: str) -> str:
    """A CSRF token bound to one session: the same one for a few minutes (signing one for every
    page and fragment costs more than the rest of a small answer)."""
    return _csrf_token(session_jti, secret, int(time.time()) // CSRF_REUSE_SECS)


@lru_cache(maxsize=4096)
def _csrf_token(session_jti: str, secret: str, period: int) -> str:
    return _csrf_serializer(secret).dumps(session_jti)


def csrf_token_matches(token: str, session_jti: str, *, secret: str, max_age: int) -> bool:
    try:
        value = _csrf_serializer(secret).loads(token, max_age=max_age)
    except BadSignature:
        return False
    return isinstance(value, str) and secrets.compare_digest(value, session_jti)
