"""Registering, signing in and out, API tokens and sign-in throttling, over real HTTP.

Failed sign-ins count against the client's address as well as the name, so every test that
fails on purpose connects from its own loopback address (127.x.y.z) and cannot throttle others.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from argon2 import PasswordHasher

from tests.html import parse
from tests.support import PASSWORD, AppServer, Db, Person, unique_name, wait_for

SECRET_KEY = os.environ["SECRET_KEY"]  # conftest gives the server the same one
AUDIENCE = "chat:session"
NEW_PASSWORD = "another password 123"

MakePerson = Callable[..., Person]


# Helpers


def fresh_address() -> str:
    """A loopback address of its own (all of 127/8 is loopback on Linux)."""
    return f"127.{secrets.randbelow(254) + 1}.{secrets.randbelow(256)}.{secrets.randbelow(253) + 2}"


def client(base_url: str, address: str | None = None) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address) if address else None
    return httpx.Client(base_url=base_url, timeout=10, transport=transport)


def alert(page: str) -> str:
    """The text of the form's error message."""
    alerts = parse(page).find_all(role="alert")
    assert len(alerts) == 1, f"{len(alerts)} error messages in {page[:500]!r}"
    return alerts[0].raw_text.strip()


def has_form(page: str, action: str) -> bool:
    """Whether the page has the form that posts to `action`."""
    return parse(page).find("form", method="post", action=action) is not None


def session_cookie_headers(response: httpx.Response) -> list[str]:
    return [h for h in response.headers.get_list("set-cookie") if h.startswith("session=")]


def sign_in(base_url: str, username: str, password: str, address: str) -> httpx.Response:
    with client(base_url, address) as c:
        return c.post("/login", data={"username": username, "password": password})


def api_token(base_url: str, username: str, password: str, address: str) -> httpx.Response:
    with client(base_url, address) as c:
        return c.post("/api/token", data={"username": username, "password": password})


def claims_of(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


@pytest.fixture(scope="module")
def member(app_server: AppServer) -> Iterator[Person]:
    """One registered person for the tests that only read (they change nothing of theirs)."""
    with Person.register(app_server.url) as someone:
        yield someone


@pytest.fixture(scope="module")
def member_token(member: Person) -> str:
    return member.token()


def user_doc(db: Db, username: str) -> dict[str, object] | None:
    return db["user"].find_one({"username_key": username.lower()})


def public_messages(base_url: str, token: str) -> str:
    response = httpx.get(
        base_url + "/rooms/public/messages",
        headers={"Authorization": f"Bearer {token}", "HX-Request": "true"},
    )
    assert response.status_code == 200, response.text
    return response.text


# Registering


def test_register_signs_in_with_a_lax_httponly_cookie(base_url: str) -> None:
    name = unique_name("reg")
    with client(base_url) as c:
        response = c.post("/register", data={"username": name, "password": PASSWORD})
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        [cookie] = session_cookie_headers(response)
        attributes = [part.strip().lower() for part in cookie.split(";")]
        assert "httponly" in attributes
        assert "samesite=lax" in attributes  # named explicitly, not left to the browser
        assert "path=/" in attributes
        token = cookie.split(";", 1)[0].removeprefix("session=")
        assert jwt.get_unverified_header(token)["alg"] == "HS256"
        assert "exp" in claims_of(token)

        page = c.get("/")
        assert page.status_code == 200
        assert name in page.text
        assert "Sign out" in page.text


def test_register_keeps_the_name_as_typed(base_url: str, db: Db) -> None:
    name = unique_name("Mixed_Case")
    with client(base_url) as c:
        assert c.post("/register", data={"username": name, "password": PASSWORD}).status_code == 303
    stored = user_doc(db, name)
    assert stored is not None
    assert stored["username"] == name
    assert str(stored["password_hash"]).startswith("$argon2id$")
    assert PASSWORD not in str(stored)


BAD_REGISTRATIONS = [
    # (case, username, password, words of the message)
    ("name too short", "ab", PASSWORD, "3 to 32"),
    ("name too long", "a" * 33, PASSWORD, "3 to 32"),
    ("name with a space", "bad name", PASSWORD, "3 to 32"),
    ("name with markup", "<b>x</b>", PASSWORD, "3 to 32"),
    ("empty name", "", PASSWORD, "3 to 32"),
    ("password too short", "VALID", "short12", "8 to 128"),
    ("password too long", "VALID", "p" * 129, "8 to 128"),
]


@pytest.mark.parametrize(
    ("username", "password", "words"),
    [case[1:] for case in BAD_REGISTRATIONS],
    ids=[case[0] for case in BAD_REGISTRATIONS],
)
def test_bad_registration_is_refused_and_creates_nothing(
    base_url: str, db: Db, username: str, password: str, words: str
) -> None:
    if username == "VALID":
        username = unique_name("valid")
    with client(base_url) as c:
        response = c.post(
            "/register",
            data={"username": username, "password": password},
            headers={"Accept": "text/html"},
        )
        assert response.status_code == 400
        assert response.headers["content-type"].startswith("text/html")
        assert words in alert(response.text)
        assert has_form(response.text, "/register")
        assert "Register" in response.text
        assert not session_cookie_headers(response)
        assert "session" not in c.cookies
        assert c.get("/").status_code == 303  # still signed out

    assert db["user"].count_documents({"username": username}) == 0
    assert sign_in(base_url, username, password, fresh_address()).status_code == 401
    if words == "8 to 128":
        # The name is still free.
        with client(base_url) as c:
            again = c.post("/register", data={"username": username, "password": PASSWORD})
            assert again.status_code == 303


def test_register_form_echoes_the_name_escaped(base_url: str) -> None:
    with client(base_url) as c:
        response = c.post("/register", data={"username": '"><script>x()</script>', "password": ""})
    assert response.status_code == 400
    page = parse(response.text)
    assert [s for s in page.find_all("script") if not s.get("src") or "x()" in s.raw_text] == []
    assert page.one("input", name="username").get("value") == '"><script>x()</script>'
    assert "<script>x()" not in response.text  # escaped where it is echoed


def test_duplicate_name_in_another_case_is_refused(base_url: str, db: Db) -> None:
    name = unique_name("Dup")
    with client(base_url) as c:
        assert c.post("/register", data={"username": name, "password": PASSWORD}).status_code == 303
    before = user_doc(db, name)

    with client(base_url) as c:
        response = c.post(
            "/register",
            data={"username": name.upper(), "password": NEW_PASSWORD},
            headers={"Accept": "text/html"},
        )
        assert response.status_code == 409
        assert "taken" in alert(response.text)
        assert not session_cookie_headers(response)
        assert c.get("/").status_code == 303

    assert db["user"].count_documents({"username_key": name.lower()}) == 1
    assert user_doc(db, name) == before
    address = fresh_address()
    assert api_token(base_url, name, PASSWORD, address).status_code == 200
    assert api_token(base_url, name.upper(), NEW_PASSWORD, address).status_code == 401
    assert api_token(base_url, name, NEW_PASSWORD, address).status_code == 401


# Signing in


def test_sign_in_with_the_right_password(member: Person) -> None:
    someone = member
    with client(someone.base_url) as c:
        response = c.post("/login", data={"username": someone.username, "password": PASSWORD})
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        assert session_cookie_headers(response)
        assert someone.username in c.get("/").text


def test_sign_in_ignores_the_case_of_the_name(member: Person) -> None:
    someone = member
    response = sign_in(someone.base_url, someone.username.upper(), PASSWORD, fresh_address())
    assert response.status_code == 303


def test_wrong_password_and_unknown_user_look_the_same(member: Person) -> None:
    someone = member
    address = fresh_address()
    wrong = sign_in(someone.base_url, someone.username, "wrong password", address)
    unknown = sign_in(someone.base_url, unique_name("nobody"), "wrong password", address)
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert not session_cookie_headers(response)
        assert has_form(response.text, "/login")
    assert alert(wrong.text) == alert(unknown.text)
    assert alert(wrong.text)

    wrong_api = api_token(someone.base_url, someone.username, "wrong password", address)
    unknown_api = api_token(someone.base_url, unique_name("nobody"), "wrong password", address)
    assert wrong_api.status_code == unknown_api.status_code == 401
    assert wrong_api.json() == unknown_api.json()
    assert set(wrong_api.json()) == {"error"}


def test_a_lookalike_of_a_name_is_nobody(make_person: MakePerson) -> None:
    """A Kelvin sign lower-cases to "k" in Unicode; names are ASCII, so it names nobody."""
    kate = make_person(username=unique_name("kate"))
    lookalike = "\u212a" + kate.username[1:]
    address = fresh_address()
    unknown = sign_in(kate.base_url, unique_name("nobody"), PASSWORD, address)
    response = sign_in(kate.base_url, lookalike, PASSWORD, address)
    assert response.status_code == 401
    assert not session_cookie_headers(response)
    assert alert(response.text) == alert(unknown.text)
    api = api_token(kate.base_url, lookalike, PASSWORD, address)
    assert api.status_code == 401
    assert set(api.json()) == {"error"}
    assert kate.client.get(f"/dm/{lookalike}").status_code == 404
    assert sign_in(kate.base_url, kate.username.upper(), PASSWORD, address).status_code == 303


# Signed in already


def assert_revoked(base_url: str, cookie: str) -> None:
    with httpx.Client(base_url=base_url, cookies={"session": cookie}, timeout=10) as c:
        events = c.get("/events", headers={"Accept": "text/event-stream"})
        assert events.status_code == 401
        home = c.get("/")
        assert home.status_code == 303
        assert home.headers["location"] == "/login"


@pytest.mark.parametrize("form", ["/login", "/register"])
def test_a_signed_in_person_can_switch_accounts(make_person: MakePerson, form: str) -> None:
    alice = make_person()
    old_cookie = alice.cookie
    page = alice.client.get(form)
    assert page.status_code == 200
    assert has_form(page.text, form)

    if form == "/login":
        bob = make_person()
        name, sub = bob.username, claims_of(bob.cookie)["sub"]
    else:
        name, sub = unique_name("switch"), None
    response = alice.client.post(form, data={"username": name, "password": PASSWORD})
    assert response.status_code == 303, response.text
    [set_cookie] = session_cookie_headers(response)
    new_cookie = alice.client.cookies["session"]
    assert set_cookie.startswith(f"session={new_cookie};")
    assert claims_of(new_cookie)["sub"] != claims_of(old_cookie)["sub"]
    if sub is not None:
        assert claims_of(new_cookie)["sub"] == sub
    home = alice.client.get("/")
    assert home.status_code == 200
    assert name in home.text
    assert_revoked(alice.base_url, old_cookie)


@pytest.mark.parametrize("form", ["/login", "/register"])
def test_a_failed_switch_keeps_the_session(make_person: MakePerson, form: str) -> None:
    alice = make_person()
    # A taken name, or one that is nobody's.
    name, status = (alice.username, 409) if form == "/register" else (unique_name("nobody"), 401)
    with client(alice.base_url, fresh_address()) as c:
        c.cookies.set("session", alice.cookie)
        for origin, expected in ((alice.base_url, status), ("https://evil.example", 403)):
            response = c.post(
                form, data={"username": name, "password": NEW_PASSWORD}, headers={"Origin": origin}
            )
            assert response.status_code == expected, response.text
            assert not session_cookie_headers(response)
        # Even the right password is refused from another site.
        response = c.post(
            "/login",
            data={"username": alice.username, "password": PASSWORD},
            headers={"Origin": "https://evil.example"},
        )
        assert response.status_code == 403
        assert not session_cookie_headers(response)
    assert alice.username in alice.client.get("/").text
    assert alice.post_public(f"still here {secrets.token_hex(4)}").status_code == 201


def test_api_token_ignores_the_session_cookie(make_person: MakePerson) -> None:
    alice, bob = make_person(), make_person()
    with client(alice.base_url, fresh_address()) as c:
        c.cookies.set("session", alice.cookie)
        response = c.post("/api/token", data={"username": bob.username, "password": PASSWORD})
        assert response.status_code == 200, response.text
        assert claims_of(response.json()["access_token"])["sub"] == claims_of(bob.cookie)["sub"]
        assert not response.headers.get_list("set-cookie")
        wrong = c.post("/api/token", data={"username": bob.username, "password": NEW_PASSWORD})
        assert wrong.status_code == 401
        assert set(wrong.json()) == {"error"}
    assert alice.username in alice.client.get("/").text
    assert alice.post_public(f"still signed in {secrets.token_hex(4)}").status_code == 201


# Signing out


def test_sign_out_lands_on_the_sign_in_page(make_person: MakePerson) -> None:
    someone = make_person()
    response = someone.client.post("/logout", data={"csrf_token": someone.csrf})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    [cleared] = session_cookie_headers(response)
    assert "max-age=0" in cleared.lower() or "expires=thu, 01 jan 1970" in cleared.lower()
    landing = someone.client.get("/login")
    assert landing.status_code == 200
    assert "Sign in" in landing.text
    home = someone.client.get("/")
    assert home.status_code == 303
    assert home.headers["location"] == "/login"


def test_a_signed_out_token_no_longer_works_anywhere(
    make_person: MakePerson, second_server: AppServer
) -> None:
    someone, witness = make_person(), make_person()
    old_cookie, old_csrf = someone.cookie, someone.csrf
    assert someone.client.post("/logout", data={"csrf_token": old_csrf}).status_code == 303

    text = f"after sign-out {secrets.token_hex(6)}"
    # The other process hears of the sign-out from the revocations' change stream: within a
    # second (DESIGN.md, "Security promises"; this process knows at once).
    gone = httpx.Client(base_url=second_server.url, cookies={"session": old_cookie}, timeout=10)
    with gone:
        wait_for(lambda: gone.get("/").status_code == 303, within=2.0, what="revoked there")
    for base_url in (someone.base_url, second_server.url):  # revoked in every process
        as_cookie = httpx.Client(base_url=base_url, cookies={"session": old_cookie}, timeout=10)
        as_bearer = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {old_cookie}"}, timeout=10
        )
        with as_cookie, as_bearer:
            for c in (as_cookie, as_bearer):
                home = c.get("/")
                assert home.status_code == 303
                assert home.headers["location"] == "/login"
                events = c.get("/events", headers={"Accept": "text/event-stream"})
                assert events.status_code == 401
                assert "error" in events.json()
            posted = as_cookie.post(
                "/rooms/public/messages",
                data={"body": text, "csrf_token": old_csrf},
                headers={"X-CSRF-Token": old_csrf},
            )
            assert posted.status_code in (401, 403)
            posted = as_bearer.post("/rooms/public/messages", data={"body": text})
            assert posted.status_code == 401
            logout_again = as_bearer.post("/logout")
            assert logout_again.status_code == 303  # harmless

    assert text not in public_messages(someone.base_url, witness.token())


def test_signing_out_one_session_keeps_the_others(make_person: MakePerson) -> None:
    someone = make_person()
    token = someone.token()
    assert someone.client.post("/logout", data={"csrf_token": someone.csrf}).status_code == 303
    response = httpx.get(someone.base_url + "/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


# API tokens


def test_api_token_for_good_credentials(member: Person) -> None:
    someone = member
    response = api_token(someone.base_url, someone.username, PASSWORD, fresh_address())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert isinstance(body["expires_in"], int)
    assert body["expires_in"] > 0
    claims = jwt.decode(body["access_token"], SECRET_KEY, algorithms=["HS256"], audience=AUDIENCE)
    assert abs(int(claims["exp"]) - time.time() - body["expires_in"]) < 10  # type: ignore[call-overload]


@pytest.mark.parametrize("case", ["wrong password", "unknown user", "empty password", "no fields"])
def test_api_token_refused(member: Person, case: str) -> None:
    data = {
        "wrong password": {"username": member.username, "password": "wrong password"},
        "unknown user": {"username": unique_name("nobody"), "password": PASSWORD},
        "empty password": {"username": member.username, "password": ""},
        "no fields": {},
    }[case]
    with client(member.base_url, fresh_address()) as c:
        response = c.post("/api/token", data=data)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    assert set(response.json()) == {"error"}
    assert "access_token" not in response.text
    assert not response.headers.get_list("set-cookie")


def test_bearer_token_posts_without_csrf(member: Person, member_token: str) -> None:
    someone, token = member, member_token
    text = f"by bearer {secrets.token_hex(6)}"
    response = httpx.post(
        someone.base_url + "/rooms/public/messages",
        data={"body": text},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    assert text in response.text
    assert someone.username in response.text
    assert text in public_messages(someone.base_url, token)


# Bad tokens


def _forge(
    sub: str, *, key: str | None = SECRET_KEY, algorithm: str = "HS256", **changes: object
) -> str:
    now = int(time.time())
    payload: dict[str, object] = {
        "sub": sub,
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + 3600,
        "aud": AUDIENCE,
    }
    payload.update(changes)
    return jwt.encode(payload, key, algorithm=algorithm)


def _flip_signature(token: str) -> str:
    head, payload, signature = token.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{head}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"


BAD_TOKENS: dict[str, Callable[[str, str], str]] = {
    "tampered": lambda sub, real: _flip_signature(real),
    "expired": lambda sub, real: _forge(sub, iat=int(time.time()) - 7200, exp=int(time.time()) - 5),
    "alg none": lambda sub, real: _forge(sub, key=None, algorithm="none"),
    "wrong secret": lambda sub, real: _forge(sub, key="not the server's secret " + "z" * 40),
    "wrong audience": lambda sub, real: _forge(sub, aud="someone-else"),
    "unknown user": lambda sub, real: _forge("65f0c0ffee0000000000dead"),
    "exp past the last datetime": lambda sub, real: _forge(sub, exp=10**12),
    "exp past any timestamp": lambda sub, real: _forge(sub, exp=10**30),
    "exp a numeric string": lambda sub, real: _forge(sub, exp=str(int(time.time()) + 3600)),
    "garbage": lambda sub, real: "garbage",
}


def test_a_hand_made_valid_token_works(member: Person) -> None:
    """The control for the forgeries: signed with the server's key, it is accepted."""
    someone = member
    token = _forge(str(claims_of(someone.cookie)["sub"]))
    response = httpx.get(someone.base_url + "/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert someone.username in response.text
    response = httpx.get(someone.base_url + "/", headers={"Cookie": f"session={token}"})
    assert response.status_code == 200


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_bad_tokens_are_anonymous(member: Person, member_token: str, kind: str) -> None:
    someone, real = member, member_token
    token = BAD_TOKENS[kind](str(claims_of(real)["sub"]), real)
    text = f"forged {kind} {secrets.token_hex(6)}"
    bearer = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=someone.base_url, timeout=10) as c:
        events = c.get("/events", headers={**bearer, "Accept": "text/event-stream"})
        assert events.status_code == 401
        assert events.headers["content-type"].startswith("application/json")
        assert "error" in events.json()
        events = c.get("/events", headers={"Cookie": f"session={token}"})
        assert events.status_code == 401
        assert "error" in events.json()

        for headers in (bearer, {"Cookie": f"session={token}"}):
            home = c.get("/", headers=headers)
            assert home.status_code == 303
            assert home.headers["location"] == "/login"

        posted = c.post("/rooms/public/messages", data={"body": text}, headers=bearer)
        assert posted.status_code == 401
    assert text not in public_messages(someone.base_url, real)


# Throttling


def test_failed_sign_ins_are_throttled_per_name_and_address(
    make_person: MakePerson, second_server: AppServer
) -> None:
    someone, other = make_person(), make_person()
    base_url = someone.base_url
    address = fresh_address()
    for attempt in range(5):
        response = sign_in(base_url, someone.username, f"wrong password {attempt}", address)
        assert response.status_code == 401, attempt

    # The sixth answers 429, even with the right password, and signs nobody in.
    for password in (PASSWORD, "wrong password 6"):
        response = sign_in(base_url, someone.username, password, address)
        assert response.status_code == 429
        retry_after = int(response.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert not session_cookie_headers(response)
        assert "Too many" in alert(response.text)
    response = sign_in(base_url, someone.username.upper(), PASSWORD, address)
    assert response.status_code == 429

    api = api_token(base_url, someone.username, PASSWORD, address)
    assert api.status_code == 429
    assert 1 <= int(api.headers["retry-after"]) <= 60
    assert set(api.json()) == {"error"}

    # The count lives in MongoDB: another app process sees it too.
    response = sign_in(second_server.url, someone.username, PASSWORD, address)
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60

    # Other names from that address, and that name from elsewhere, are not throttled.
    assert sign_in(base_url, other.username, "wrong password", address).status_code == 401
    assert sign_in(base_url, other.username, PASSWORD, address).status_code == 303
    assert sign_in(base_url, someone.username, PASSWORD, fresh_address()).status_code == 303

    # Still throttled where it was.
    assert sign_in(base_url, someone.username, PASSWORD, address).status_code == 429


def test_throttling_does_not_bite_normal_use(make_person: MakePerson) -> None:
    someone = make_person()
    address = fresh_address()
    for attempt in range(30):
        response = sign_in(someone.base_url, someone.username, PASSWORD, address)
        assert response.status_code == 303, (attempt, response.text)


def test_a_right_password_resets_the_count(make_person: MakePerson) -> None:
    someone = make_person()
    address = fresh_address()
    for round_ in range(2):
        for attempt in range(4):
            response = sign_in(someone.base_url, someone.username, "mistyped password", address)
            assert response.status_code == 401, (round_, attempt)
        response = sign_in(someone.base_url, someone.username, PASSWORD, address)
        assert response.status_code == 303, round_


async def post_at_once(
    requests: list[tuple[str, str, dict[str, str]]], address: str
) -> list[httpx.Response]:
    """Sends these (base URL, path, form) requests all at once from `address`."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    limits = httpx.Limits(max_connections=None)
    async with httpx.AsyncClient(timeout=60, transport=transport, limits=limits) as ac:
        return await asyncio.gather(
            *(ac.post(base_url + path, data=data) for base_url, path, data in requests)
        )


@pytest.mark.parametrize("who", ["a user", "nobody"])
async def test_guesses_sent_at_once_are_checked_five_at_most(
    make_person: MakePerson, second_server: AppServer, who: str
) -> None:
    someone = make_person()
    name = someone.username if who == "a user" else unique_name("nobody")
    address = fresh_address()
    servers = [someone.base_url, second_server.url]  # two processes, one count
    guesses = [
        (servers[i % 2], "/login", {"username": name, "password": f"guess {i} password"})
        for i in range(30)
    ]
    responses = await post_at_once(guesses, address)
    checked = [r for r in responses if r.status_code == 401]
    assert 1 <= len(checked) <= 5
    for response in responses:
        assert response.status_code in (401, 429)
        assert not session_cookie_headers(response)
        if response.status_code == 429:
            assert 1 <= int(response.headers["retry-after"]) <= 60
            assert "Too many" in alert(response.text)
    # Rarely, the last few at once refuse each other: the limit is reached one by one.
    for attempt in range(5 - len(checked)):
        response = sign_in(someone.base_url, name, f"late guess {attempt}", address)
        assert response.status_code in (401, 429)
        if response.status_code == 429:
            break
    assert sign_in(someone.base_url, name, "one more guess", address).status_code == 429

    # The right password waits for the window too; another name from there does not.
    if who == "a user":
        assert sign_in(someone.base_url, name, PASSWORD, address).status_code == 429
        assert api_token(second_server.url, name, PASSWORD, address).status_code == 429
    other = make_person()
    assert sign_in(other.base_url, other.username, PASSWORD, address).status_code == 303


async def test_right_passwords_at_once_are_never_throttled(make_person: MakePerson) -> None:
    someone = make_person()
    address = fresh_address()
    for attempt in range(4):
        response = sign_in(someone.base_url, someone.username, f"mistyped {attempt}", address)
        assert response.status_code == 401
    sign_ins = [(someone.base_url, "/login", {"username": someone.username, "password": PASSWORD})]
    responses = await post_at_once(sign_ins * 8, address)
    assert [r.status_code for r in responses] == [303] * 8
    # Their reservations were taken back, and the count begins again.
    for attempt in range(5):
        response = sign_in(someone.base_url, someone.username, f"mistyped {attempt}", address)
        assert response.status_code == 401, attempt
    assert sign_in(someone.base_url, someone.username, PASSWORD, address).status_code == 429


# Bursts


def memory_kib(pid: int, field: str) -> int:
    """VmRSS (resident now) or VmHWM (the most it ever was) of a process, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB$", status, re.M)
    assert match, status
    return int(match.group(1))


async def test_a_burst_of_sign_ups_and_sign_ins_stays_small(
    mongo_uri: str, tmp_path: Path, db: Db
) -> None:
    """Each password hash takes 19 MiB: dozens at once must queue for a core, not all run."""
    with AppServer(mongo_uri, data_dir=tmp_path) as server:
        assert server.process is not None
        taken, regular = unique_name("taken"), unique_name("regular")
        with client(server.url) as c:  # warm up: the first of everything loads code
            for name in (taken, regular):
                response = c.post("/register", data={"username": name, "password": PASSWORD})
                assert response.status_code == 303
            assert sign_in(server.url, regular, PASSWORD, "127.0.0.1").status_code == 303
        before = memory_kib(server.process.pid, "VmRSS")

        transport = httpx.AsyncHTTPTransport(local_address=fresh_address())
        limits = httpx.Limits(max_connections=None)
        async with httpx.AsyncClient(
            base_url=server.url, timeout=60, transport=transport, limits=limits
        ) as ac:

            async def post(path: str, username: str, password: str) -> int:
                data = {"username": username, "password": password}
                return (await ac.post(path, data=data)).status_code

            newcomers = [unique_name("new") for _ in range(8)]
            statuses = await asyncio.gather(
                *(post("/register", taken.upper(), NEW_PASSWORD) for _ in range(48)),
                *(post("/register", name, PASSWORD) for name in newcomers),
                *(post("/login", regular, PASSWORD) for _ in range(24)),
            )
        assert statuses[:48] == [409] * 48
        assert statuses[48:] == [303] * 32
        assert db["user"].count_documents({"username_key": taken.lower()}) == 1
        grown_mib = (memory_kib(server.process.pid, "VmHWM") - before) / 1024
        assert grown_mib < 150, f"{grown_mib:.0f} MiB more at the peak"

        for name in newcomers:
            assert api_token(server.url, name, PASSWORD, fresh_address()).status_code == 200
        assert api_token(server.url, taken, PASSWORD, fresh_address()).status_code == 200
        assert api_token(server.url, taken, NEW_PASSWORD, fresh_address()).status_code == 401


def test_production_cookie_is_secure(mongo_uri: str, tmp_path: Path) -> None:
    server = AppServer(mongo_uri, data_dir=tmp_path, env={"APP_ENV": "production"})
    with server, client(server.url) as c:
        response = c.post("/register", data={"username": unique_name("prod"), "password": PASSWORD})
        assert response.status_code == 303
        [cookie] = session_cookie_headers(response)
        attributes = [part.strip().lower() for part in cookie.split(";")]
        assert {"secure", "httponly", "samesite=lax"} <= set(attributes)


# The Procfile's command, as a Heroku-style router runs it


@pytest.fixture(scope="module")
def procfile_server(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app as the Procfile's `web:` command serves it, told its port by $PORT."""
    data_dir = tmp_path_factory.mktemp("procfile")
    with AppServer(mongo_uri, data_dir=data_dir, procfile=True) as server:
        yield server.url


def test_a_made_up_forwarded_for_does_not_escape_the_throttle(
    procfile_server: str, make_person: MakePerson
) -> None:
    """A router appends the real client address to X-Forwarded-For; what the client put in
    front of it is the client's own invention and must not reset the count."""
    someone = make_person(procfile_server)
    address = fresh_address()
    with client(procfile_server, address) as c:
        for attempt in range(5):
            response = c.post(
                "/login",
                data={"username": someone.username, "password": f"wrong {attempt} password"},
                headers={"X-Forwarded-For": address},
            )
            assert response.status_code == 401, attempt
        response = c.post(
            "/login",
            data={"username": someone.username, "password": PASSWORD},
            headers={"X-Forwarded-For": f"203.0.113.{secrets.randbelow(250) + 1}, {address}"},
        )
    assert response.status_code == 429


def documentation_address() -> str:
    """An address of the documentation ranges, for X-Forwarded-For entries."""
    return f"198.51.100.{secrets.randbelow(254) + 1}"


def test_without_a_router_forwarded_for_is_the_clients_invention(
    procfile_server: str, make_person: MakePerson
) -> None:
    """The Procfile's command where no router is in front (no DYNO): a different made-up
    X-Forwarded-For on every try still counts against the real peer."""
    someone = make_person(procfile_server)
    with client(procfile_server, fresh_address()) as c:
        for attempt in range(5):
            response = c.post(
                "/login",
                data={"username": someone.username, "password": f"wrong {attempt} password"},
                headers={"X-Forwarded-For": documentation_address()},
            )
            assert response.status_code == 401, attempt
        response = c.post(
            "/login",
            data={"username": someone.username, "password": PASSWORD},
            headers={"X-Forwarded-For": documentation_address()},
        )
    assert response.status_code == 429
    assert not session_cookie_headers(response)


def test_behind_heroku_the_routers_entry_is_the_address(
    mongo_uri: str, tmp_path: Path, make_person: MakePerson
) -> None:
    """With DYNO set, the rightmost X-Forwarded-For entry (the router's) is what counts:
    entries to its left change nothing, and another router-seen address is someone else."""
    with AppServer(mongo_uri, data_dir=tmp_path, env={"DYNO": "web.1"}) as server:
        someone = make_person(server.url)
        seen, other = documentation_address(), f"203.0.113.{secrets.randbelow(254) + 1}"
        with client(server.url, fresh_address()) as c:

            def attempt(password: str, forwarded: str) -> httpx.Response:
                return c.post(
                    "/login",
                    data={"username": someone.username, "password": password},
                    headers={"X-Forwarded-For": forwarded},
                )

            for n in range(5):
                response = attempt(f"wrong {n} password", f"{documentation_address()}, {seen}")
                assert response.status_code == 401, n
            throttled = attempt(PASSWORD, f"{documentation_address()}, {seen}")
            assert throttled.status_code == 429
            assert not session_cookie_headers(throttled)
            assert attempt(PASSWORD, other).status_code == 303


def test_an_old_hash_is_redone_at_sign_in(make_person: MakePerson, db: Db) -> None:
    someone = make_person()
    old_hash = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=4).hash(PASSWORD)
    db.user.update_one({"username": someone.username}, {"$set": {"password_hash": old_hash}})
    response = sign_in(someone.base_url, someone.username, PASSWORD, fresh_address())
    assert response.status_code == 303
    stored = user_doc(db, someone.username)
    assert stored is not None
    new_hash = str(stored["password_hash"])
    assert new_hash != old_hash
    assert "$m=19456,t=2,p=1$" in new_hash
    # And the password still works with the new hash.
    assert sign_in(someone.base_url, someone.username, PASSWORD, fresh_address()).status_code == 303
