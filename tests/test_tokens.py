"""webapp/tokens.py on its own: session JWTs and CSRF tokens, no server."""

from __future__ import annotations

import base64
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from webapp.web import tokens

SECRET = "unit-test-secret-" + "x" * 64
OTHER_SECRET = "another-secret-" + "y" * 64
WEEK = timedelta(days=7)
USER_ID = "65f0c0ffee0000000000beef"


def _segments(token: str) -> list[str]:
    parts = token.split(".")
    assert len(parts) == 3, token
    return parts


def _b64json(segment: str) -> dict[str, object]:
    padded = segment + "=" * (-len(segment) % 4)
    return dict(json.loads(base64.urlsafe_b64decode(padded)))


def _b64(data: dict[str, object]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    payload: dict[str, object] = {
        "sub": USER_ID,
        "jti": "some-jti",
        "iat": now,
        "exp": now + 3600,
        "aud": tokens.SESSION_AUDIENCE,
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


# JWT session tokens


def test_session_token_round_trip() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    token, issued = tokens.issue_session_token(USER_ID, secret=SECRET, lifetime=WEEK, now=now)
    read = tokens.read_session_token(token, secret=SECRET)
    assert read == issued
    assert read.user_id == USER_ID
    assert read.expires_at == now + WEEK
    assert len(read.jti) >= 16


def test_session_token_is_hs256_with_exp_and_audience() -> None:
    token, claims = tokens.issue_session_token(USER_ID, secret=SECRET, lifetime=WEEK)
    header_segment, payload_segment, _ = _segments(token)
    assert _b64json(header_segment)["alg"] == "HS256"
    payload = _b64json(payload_segment)
    assert payload["sub"] == USER_ID
    assert payload["jti"] == claims.jti
    assert payload["aud"] == tokens.SESSION_AUDIENCE
    assert isinstance(payload["exp"], int)
    assert abs(payload["exp"] - (time.time() + WEEK.total_seconds())) < 5
    # Anyone holding the secret (another process, after a restart) can verify it.
    decoded = jwt.decode(token, SECRET, algorithms=["HS256"], audience=tokens.SESSION_AUDIENCE)
    assert decoded["sub"] == USER_ID


def test_every_token_has_its_own_jti() -> None:
    jtis = {
        tokens.issue_session_token(USER_ID, secret=SECRET, lifetime=WEEK)[1].jti for _ in range(20)
    }
    assert len(jtis) == 20


def test_a_token_read_again_is_remembered_by_its_digest_and_secret() -> None:
    token, _ = tokens.issue_session_token(USER_ID, secret=SECRET, lifetime=WEEK)
    first = tokens.read_session_token(token, secret=SECRET)
    assert tokens.read_session_token(token, secret=SECRET) is first  # not verified again
    assert all(token not in key for key in tokens._read)  # kept as a digest, not as itself
    with pytest.raises(tokens.InvalidToken):  # another secret (a new key) verifies it anew
        tokens.read_session_token(token, secret=SECRET + " rotated")


def test_a_remembered_token_is_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    now = int(time.time())
    token = jwt.encode(_claims(iat=now - 10, exp=now + 1), SECRET, algorithm="HS256")
    assert tokens.read_session_token(token, secret=SECRET).user_id == USER_ID
    monkeypatch.setattr(tokens, "datetime", _Later)
    with pytest.raises(tokens.InvalidToken, match="expired"):
        tokens.read_session_token(token, secret=SECRET)


class _Later(datetime):
    """datetime, two seconds on."""

    @classmethod
    def now(cls, tz: object = None) -> _Later:
        return cls.fromtimestamp(time.time() + 2, UTC)


def test_the_tokens_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "TOKENS_KEPT", 2)
    monkeypatch.setattr(tokens, "_read", OrderedDict())
    made = [tokens.issue_session_token(f"u{n}", secret=SECRET, lifetime=WEEK) for n in range(3)]
    for token, _ in made:
        tokens.read_session_token(token, secret=SECRET)
    assert len(tokens._read) == 2
    assert [claims.user_id for claims in tokens._read.values()] == ["u1", "u2"]


def test_valid_hand_made_token_is_accepted() -> None:
    """The control for the forgeries below: built the same way, but right."""
    token = jwt.encode(_claims(), SECRET, algorithm="HS256")
    assert tokens.read_session_token(token, secret=SECRET).user_id == USER_ID


def _tampered_signature() -> str:
    token, _ = tokens.issue_session_token(USER_ID, secret=SECRET, lifetime=WEEK)
    header, payload, signature = _segments(token)
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"


def _tampered_payload() -> str:
    token, _ = tokens.issue_session_token(USER_ID, secret=SECRET, lifetime=WEEK)
    header, payload, signature = _segments(token)
    claims = _b64json(payload)
    claims["sub"] = "65f0c0ffee0000000000dead"
    return f"{header}.{_b64(claims)}.{signature}"


def _expired() -> str:
    long_ago = datetime.now(UTC) - timedelta(days=8)
    token, _ = tokens.issue_session_token(USER_ID, secret=SECRET, lifetime=WEEK, now=long_ago)
    return token


def _just_expired() -> str:
    now = int(time.time())
    return jwt.encode(_claims(iat=now - 60, exp=now - 1), SECRET, algorithm="HS256")


def _alg_none() -> str:
    return jwt.encode(_claims(), None, algorithm="none")


def _alg_none_with_signature() -> str:
    good = jwt.encode(_claims(), SECRET, algorithm="HS256")
    _, payload, signature = _segments(good)
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.{signature}"


def _hs512_same_secret() -> str:
    return jwt.encode(_claims(), SECRET, algorithm="HS512")


def _wrong_secret() -> str:
    token, _ = tokens.issue_session_token(USER_ID, secret=OTHER_SECRET, lifetime=WEEK)
    return token


def _wrong_audience() -> str:
    return jwt.encode(_claims(aud="someone-else"), SECRET, algorithm="HS256")


def _no_audience() -> str:
    return jwt.encode(_claims(aud=None), SECRET, algorithm="HS256")


def _missing(claim: str) -> Callable[[], str]:
    return lambda: jwt.encode(_claims(**{claim: None}), SECRET, algorithm="HS256")


def _non_string_subject() -> str:
    return jwt.encode(_claims(sub=12345), SECRET, algorithm="HS256")


def _non_string_jti() -> str:
    return jwt.encode(_claims(jti=["a", "b"]), SECRET, algorithm="HS256")


def _signed(**changes: object) -> Callable[[], str]:
    """A token rightly signed for the right audience, with these claims changed."""
    return lambda: jwt.encode(_claims(**changes), SECRET, algorithm="HS256")


FAR_FUTURE = int(time.time()) + 3600

# Rightly signed, but a claim is not what the server issues.
MALFORMED_CLAIMS: list[tuple[str, Callable[[], str]]] = [
    ("exp past the last datetime", _signed(exp=10**12)),
    ("exp past any timestamp", _signed(exp=10**30)),
    ("exp a numeric string", _signed(exp=str(FAR_FUTURE))),
    ("exp a float", _signed(exp=FAR_FUTURE + 0.5)),
    ("exp infinite", _signed(exp=float("inf"))),
    ("exp true", _signed(exp=True)),
    ("iat a numeric string", _signed(iat=str(int(time.time())))),
    ("iat a float", _signed(iat=time.time())),
    ("iat true", _signed(iat=True)),
    ("iat negative", _signed(iat=-5)),
    ("empty sub", _signed(sub="")),
    ("empty jti", _signed(jti="")),
]

BAD_TOKENS: list[tuple[str, Callable[[], str]]] = [
    *MALFORMED_CLAIMS,
    ("tampered signature", _tampered_signature),
    ("tampered payload", _tampered_payload),
    ("expired a day ago", _expired),
    ("expired a second ago", _just_expired),
    ("alg none", _alg_none),
    ("alg none keeping a valid signature", _alg_none_with_signature),
    ("HS512 with the right secret", _hs512_same_secret),
    ("wrong secret", _wrong_secret),
    ("wrong audience", _wrong_audience),
    ("no audience", _no_audience),
    ("missing sub", _missing("sub")),
    ("missing jti", _missing("jti")),
    ("missing iat", _missing("iat")),
    ("missing exp", _missing("exp")),
    ("non-string sub", _non_string_subject),
    ("non-string jti", _non_string_jti),
    ("empty string", lambda: ""),
    ("garbage", lambda: "not-a-jwt"),
    ("two segments", lambda: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0"),
]


@pytest.mark.parametrize(
    "make_token", [make for _, make in BAD_TOKENS], ids=[name for name, _ in BAD_TOKENS]
)
def test_bad_session_tokens_are_refused(make_token: Callable[[], str]) -> None:
    token = make_token()
    with pytest.raises(tokens.InvalidToken):
        tokens.read_session_token(token, secret=SECRET)


# CSRF tokens


def test_csrf_token_round_trip() -> None:
    token = tokens.issue_csrf_token("jti-1", secret=SECRET)
    assert tokens.csrf_token_matches(token, "jti-1", secret=SECRET, max_age=3600)


def _old_csrf_token(session_jti: str, *, age_secs: int) -> str:
    """A CSRF token exactly as issue_csrf_token makes it, but signed age_secs ago."""

    class SignerInThePast(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_secs

    serializer = URLSafeTimedSerializer(SECRET, salt=tokens.CSRF_SALT, signer=SignerInThePast)
    return serializer.dumps(session_jti)


def _tamper(token: str) -> str:
    middle = len(token) // 2
    flipped = "A" if token[middle] != "A" else "B"
    return token[:middle] + flipped + token[middle + 1 :]


CSRF_CASES: list[tuple[str, Callable[[], str], str, int, bool]] = [
    # (case, token maker, session jti to check against, max_age, matches)
    ("same session", lambda: tokens.issue_csrf_token("jti-1", secret=SECRET), "jti-1", 60, True),
    ("other session", lambda: tokens.issue_csrf_token("jti-1", secret=SECRET), "jti-2", 60, False),
    (
        "prefix of the session",
        lambda: tokens.issue_csrf_token("jti", secret=SECRET),
        "jti-1",
        60,
        False,
    ),
    (
        "wrong secret",
        lambda: tokens.issue_csrf_token("jti-1", secret=OTHER_SECRET),
        "jti-1",
        60,
        False,
    ),
    (
        "tampered",
        lambda: _tamper(tokens.issue_csrf_token("jti-1", secret=SECRET)),
        "jti-1",
        60,
        False,
    ),
    ("old but within max_age", lambda: _old_csrf_token("jti-1", age_secs=30), "jti-1", 60, True),
    ("expired", lambda: _old_csrf_token("jti-1", age_secs=3600), "jti-1", 60, False),
    (
        "other salt",
        lambda: URLSafeTimedSerializer(SECRET, salt="not-csrf").dumps("jti-1"),
        "jti-1",
        60,
        False,
    ),
    ("empty", lambda: "", "jti-1", 60, False),
    ("garbage", lambda: "garbage.token.here", "jti-1", 60, False),
    (
        "session JWT is not a CSRF token",
        lambda: tokens.issue_session_token(USER_ID, secret=SECRET, lifetime=WEEK)[0],
        "jti-1",
        60,
        False,
    ),
]


@pytest.mark.parametrize(
    ("make_token", "session_jti", "max_age", "matches"),
    [case[1:] for case in CSRF_CASES],
    ids=[case[0] for case in CSRF_CASES],
)
def test_csrf_token_matches(
    make_token: Callable[[], str], session_jti: str, max_age: int, matches: bool
) -> None:
    assert (
        tokens.csrf_token_matches(make_token(), session_jti, secret=SECRET, max_age=max_age)
        is matches
    )


def test_csrf_token_of_a_non_string_payload_does_not_match() -> None:
    token = URLSafeTimedSerializer(SECRET, salt=tokens.CSRF_SALT).dumps(["jti-1"])
    assert not tokens.csrf_token_matches(token, "jti-1", secret=SECRET, max_age=60)
