"""CSRF, origin checks, security headers, inline-script-free pages, request size limits,
strict forms, the characters kept of people's text, and what caches may keep."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import jwt
import pytest
from bson import ObjectId
from itsdangerous import URLSafeTimedSerializer

from tests.html import parse
from tests.support import (
    PASSWORD,
    AppServer,
    Db,
    Person,
    message_element,
    message_id,
    message_ids,
    open_stream,
    unique_name,
    user_id,
)

SECRET_KEY = os.environ["SECRET_KEY"]  # conftest gives the server the same one
MakePerson = Callable[..., Person]


@pytest.fixture(scope="module")
def member(app_server: AppServer) -> Iterator[Person]:
    """One signed-in person shared by the tests below: each posts its own unique text, and a
    refused request must leave everything as it was."""
    with Person.register(app_server.url) as someone:
        yield someone


def listed(someone: Person, path: str = "/rooms/public/messages") -> str:
    """The latest messages of a conversation, as htmx fetches them."""
    response = someone.client.get(path, headers={"HX-Request": "true"})
    assert response.status_code == 200, response.text
    return response.text


def assert_not_stored(someone: Person, db: Db, text: str) -> None:
    assert text not in listed(someone)
    assert db["message"].count_documents({"body": {"$regex": text}}) == 0


def post_public(
    someone: Person, text: str, *, csrf: str | None, headers: dict[str, str] | None = None
) -> httpx.Response:
    data = {"body": text}
    all_headers = {"HX-Request": "true", **(headers or {})}
    if csrf is not None:
        all_headers["X-CSRF-Token"] = csrf
    return someone.client.post("/rooms/public/messages", data=data, headers=all_headers)


def session_jti(someone: Person) -> str:
    return str(jwt.decode(someone.cookie, options={"verify_signature": False})["jti"])


def unique_text(label: str) -> str:
    return f"{label}-{secrets.token_hex(6)}"


# CSRF


def test_cookie_post_with_its_token_is_accepted(member: Person, db: Db) -> None:
    """The control for the refusals below."""
    text = unique_text("with-token")
    response = post_public(member, text, csrf=member.csrf)
    assert response.status_code == 201
    assert text in listed(member)
    assert db["message"].count_documents({"body": text}) == 1


def test_csrf_token_in_the_form_field_is_accepted(member: Person) -> None:
    text = unique_text("form-field")
    response = member.client.post(
        "/rooms/public/messages",
        data={"body": text, "csrf_token": member.csrf},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 201
    assert text in listed(member)


def test_cookie_post_without_token_is_refused(member: Person, db: Db) -> None:
    text = unique_text("no-token")
    response = post_public(member, text, csrf=None)
    assert response.status_code == 403
    assert_not_stored(member, db, text)


def test_cookie_post_with_empty_token_is_refused(member: Person, db: Db) -> None:
    text = unique_text("empty-token")
    response = post_public(member, text, csrf="")
    assert response.status_code == 403
    assert_not_stored(member, db, text)


def _forged_tokens(jti: str) -> dict[str, str]:
    return {
        "random": secrets.token_urlsafe(40),
        "wrong secret": URLSafeTimedSerializer("not the secret " + "q" * 40, salt="csrf").dumps(
            jti
        ),
        "wrong salt": URLSafeTimedSerializer(SECRET_KEY, salt="other").dumps(jti),
        "other jti": URLSafeTimedSerializer(SECRET_KEY, salt="csrf").dumps(jti + "x"),
    }


def test_a_correctly_forged_token_would_pass(member: Person) -> None:
    """Proves the forgeries below differ from a real token only where they say they do."""
    token = URLSafeTimedSerializer(SECRET_KEY, salt="csrf").dumps(session_jti(member))
    response = post_public(member, unique_text("control"), csrf=token)
    assert response.status_code == 201


@pytest.mark.parametrize("kind", ["random", "wrong secret", "wrong salt", "other jti"])
def test_cookie_post_with_forged_token_is_refused(member: Person, db: Db, kind: str) -> None:
    text = unique_text(f"forged-{kind.replace(' ', '-')}")
    forged = _forged_tokens(session_jti(member))[kind]
    response = post_public(member, text, csrf=forged)
    assert response.status_code == 403
    assert_not_stored(member, db, text)


def test_another_users_token_is_refused(make_person: MakePerson, db: Db) -> None:
    alice, mallory = make_person(), make_person()
    text = unique_text("mallory-token")
    response = post_public(alice, text, csrf=mallory.csrf)
    assert response.status_code == 403
    assert_not_stored(alice, db, text)


def test_a_token_of_another_session_of_the_same_user_is_refused(member: Person, db: Db) -> None:
    second_client = httpx.Client(base_url=member.base_url, timeout=10)
    with Person(member.base_url, member.username, PASSWORD, second_client) as second:
        signed_in = second.client.post(
            "/login", data={"username": member.username, "password": PASSWORD}
        )
        assert signed_in.status_code == 303
        second.refresh_csrf()
        assert second.csrf != member.csrf
        text = unique_text("other-session")
        response = post_public(member, text, csrf=second.csrf)
        assert response.status_code == 403
        assert_not_stored(member, db, text)


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://127.0.0.1.evil.example", "null"]
)
def test_cross_site_origin_is_refused_even_with_a_token(
    member: Person, db: Db, origin: str
) -> None:
    text = unique_text("cross-site")
    response = post_public(member, text, csrf=member.csrf, headers={"Origin": origin})
    assert response.status_code == 403
    assert_not_stored(member, db, text)


def test_same_origin_header_is_accepted(member: Person) -> None:
    text = unique_text("same-origin")
    response = post_public(member, text, csrf=member.csrf, headers={"Origin": member.base_url})
    assert response.status_code == 201


def test_cross_site_sign_in_is_refused(member: Person) -> None:
    """Login CSRF: another site must not sign the browser in to an account of its choosing."""
    response = httpx.post(
        member.base_url + "/login",
        data={"username": member.username, "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert not [h for h in response.headers.get_list("set-cookie") if h.startswith("session=")]


@pytest.fixture
def own_message(member: Person) -> tuple[Person, str, str]:
    text = unique_text("original")
    response = post_public(member, text, csrf=member.csrf)
    assert response.status_code == 201
    return member, message_id(response.text), text


def _assert_unchanged(someone: Person, db: Db, msg_id: str, text: str) -> None:
    page = listed(someone)
    assert msg_id in message_ids(page)
    assert message_element(page, msg_id).one(class_="body").raw_text == text
    doc = db["message"].find_one({"body": text})
    assert doc is not None
    assert str(doc["_id"]) == msg_id
    assert not doc.get("deleted")
    assert doc.get("edited_at") is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/messages/{id}"),
        ("DELETE", "/messages/{id}"),
        ("POST", "/messages/{id}/edit"),
        ("POST", "/messages/{id}/delete"),
    ],
)
def test_changing_a_message_without_token_is_refused(
    own_message: tuple[Person, str, str], db: Db, method: str, path: str
) -> None:
    someone, msg_id, text = own_message
    response = someone.client.request(
        method,
        path.format(id=msg_id),
        data={"body": "changed by a forged request"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 403
    _assert_unchanged(someone, db, msg_id, text)


def test_changing_a_message_with_the_token_works(
    own_message: tuple[Person, str, str], db: Db
) -> None:
    """The control: the same request with the header goes through."""
    someone, msg_id, _ = own_message
    new_text = unique_text("edited")
    response = someone.send("PATCH", f"/messages/{msg_id}", {"body": new_text})
    assert response.status_code == 200
    assert new_text in response.text
    doc = db["message"].find_one({"body": new_text})
    assert doc is not None
    assert doc.get("edited_at") is not None


@pytest.mark.parametrize("path", ["/rooms/public/typing", "/rooms/public/read"])
def test_typing_and_reading_without_token_are_refused(member: Person, db: Db, path: str) -> None:
    mine = {"user_id": user_id(db, member)}
    before = {name: list(db[name].find(mine)) for name in ("typing", "membership")}
    response = member.client.post(path, headers={"HX-Request": "true"})
    assert response.status_code == 403
    after = {name: list(db[name].find(mine)) for name in before}
    assert after == before
    assert member.send("POST", path).status_code == 204  # the control, with the header


def test_setting_away_without_token_is_refused(person: Person, db: Db) -> None:
    away = unique_text("away")
    response = person.client.post(
        "/away", data={"away_message": away}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 403
    user = db["user"].find_one({"username_key": person.username.lower()})
    assert user is not None
    assert user.get("away_message", "") == ""
    assert away not in person.client.get("/").text


def test_signing_out_without_token_is_refused(person: Person) -> None:
    response = person.client.post("/logout")
    assert response.status_code == 403
    assert person.client.get("/").status_code == 200  # still signed in
    token_from_cookie = person.cookie
    response = httpx.get(
        person.base_url + "/", headers={"Authorization": f"Bearer {token_from_cookie}"}
    )
    assert response.status_code == 200  # not revoked


# Headers


def _csp(response: httpx.Response) -> dict[str, list[str]]:
    header = response.headers.get("content-security-policy")
    assert header, f"no CSP header on {response.request.url}"
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name.lower()] = values
    return directives


def _assert_security_headers(response: httpx.Response) -> None:
    csp = _csp(response)
    script_src = csp.get("script-src", csp.get("default-src"))
    assert script_src is not None
    assert "'self'" in script_src
    for values in csp.values():
        assert "'unsafe-inline'" not in values
        assert "'unsafe-eval'" not in values
        assert "*" not in values
    assert "data:" not in script_src
    assert csp.get("frame-ancestors") == ["'none'"]
    assert csp.get("object-src") == ["'none'"]
    assert response.headers.get("x-content-type-options") == "nosniff"
    assert response.headers.get("referrer-policy")
    assert response.headers["referrer-policy"] not in ("unsafe-url", "no-referrer-when-downgrade")


ANONYMOUS_PATHS = [
    "/",
    "/login",
    "/register",
    "/healthz",
    "/static/app.css",
    "/static/js/main.js",
    "/static/htmx/htmx.min.js",
    "/static/htmx-sse/sse.min.js",
    "/no-such-page",
    "/events",
]


@pytest.mark.parametrize("path", ANONYMOUS_PATHS)
def test_security_headers_on_every_response(base_url: str, path: str) -> None:
    response = httpx.get(base_url + path, headers={"Accept": "text/html"})
    assert response.status_code < 500
    _assert_security_headers(response)


def test_static_files_are_served(base_url: str) -> None:
    for path in ANONYMOUS_PATHS[4:8]:
        response = httpx.get(base_url + path)
        assert response.status_code == 200, path
        assert response.content, path


@pytest.mark.parametrize("path", ["/", "/rooms/public", "/rooms/public/messages"])
def test_security_headers_on_signed_in_pages(member: Person, path: str) -> None:
    response = member.client.get(path)
    assert response.status_code == 200
    _assert_security_headers(response)


def test_security_headers_on_posts_and_errors(member: Person) -> None:
    for response in (
        post_public(member, unique_text("headers"), csrf=member.csrf),
        post_public(member, unique_text("headers"), csrf=None),
        member.client.get("/dm/" + unique_name("ghost"), headers={"Accept": "text/html"}),
    ):
        assert response.status_code in (201, 403, 404)
        _assert_security_headers(response)


def test_healthz(base_url: str) -> None:
    response = httpx.get(base_url + "/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"status": "ok"}


# No inline script, handlers or styles


@dataclass
class Inspection:
    problems: list[str]  # what a strict Content-Security-Policy would block
    scripts: int


def inspect(page: str) -> Inspection:
    """A page's inline scripts, event handlers and styles and its javascript: URLs."""
    problems = []
    elements = list(parse(page).iter())
    for element in elements:
        tag = element.tag
        for name, value in element.attrs.items():
            if name.startswith(("on", "hx-on", "data-hx-on")):
                problems.append(f"<{tag} {name}=...>: inline event handler")
            if name == "style":
                problems.append(f"<{tag} style=...>: inline style")
            if (
                name in ("href", "src", "action", "formaction")
                and (value or "").strip().lower()[:11] == "javascript:"
            ):
                problems.append(f"<{tag} {name}={value!r}>: javascript: URL")
        if tag == "script":
            if not element.get("src"):
                problems.append("<script> without src")
            if element.raw_text.strip():
                problems.append(f"inline script: {element.raw_text.strip()[:60]!r}")
        if tag == "style":
            problems.append("<style> element")
    return Inspection(problems, sum(element.tag == "script" for element in elements))


HOSTILE = (
    "<script>alert(1)</script> <img src=x onerror=alert(2)> "
    '<a href="javascript:alert(3)" style="color:red" onclick="x()">x</a> '
    '<div hx-on:click="alert(4)">y</div>'
)


def test_the_inspector_catches_inline_script() -> None:
    """It can fail: unescaped, the hostile text trips every check."""
    problems = " ".join(inspect(HOSTILE).problems)
    for kind in ("without src", "inline script", "event handler", "inline style", "javascript:"):
        assert kind in problems


def test_account_pages_have_no_inline_script(base_url: str) -> None:
    for path in ("/login", "/register"):
        response = httpx.get(base_url + path)
        assert response.status_code == 200
        inspector = inspect(response.text)
        assert inspector.problems == [], path
        assert inspector.scripts >= 1, path  # the scripts are there, as files


def test_account_forms_with_errors_have_no_inline_script(base_url: str) -> None:
    response = httpx.post(base_url + "/register", data={"username": HOSTILE, "password": "x"})
    assert response.status_code == 400
    assert inspect(response.text).problems == []


def test_chat_pages_have_no_inline_script_even_with_hostile_text(
    make_person: MakePerson,
) -> None:
    author, reader = make_person(), make_person()
    posted = post_public(author, HOSTILE, csrf=author.csrf)
    assert posted.status_code == 201
    msg_id = message_id(posted.text)
    dm = author.post_dm(reader.username, HOSTILE)
    assert dm.status_code == 201
    away = author.send("POST", "/away", {"away_message": HOSTILE})
    assert away.status_code == 200

    pages = {
        "posted fragment": posted.text,
        "home (author)": author.client.get("/").text,
        "home (reader)": reader.client.get("/").text,
        "public room": reader.client.get("/rooms/public").text,
        "messages fragment": listed(reader),
        "dm page": reader.client.get(f"/dm/{author.username}").text,
        "edit page": author.client.get(f"/messages/{msg_id}/edit").text,
        "edit fragment": author.client.get(
            f"/messages/{msg_id}/edit", headers={"HX-Request": "true"}
        ).text,
        "error page": reader.client.get(
            "/dm/" + unique_name("ghost"), headers={"Accept": "text/html"}
        ).text,
    }
    for name, page in pages.items():
        assert inspect(page).problems == [], name
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["home (reader)"]
    assert HOSTILE.split(" ")[0] not in pages["dm page"]


# Request size


def test_oversized_registration_is_refused(base_url: str, db: Db) -> None:
    name = unique_name("big")
    response = httpx.post(
        base_url + "/register", data={"username": name, "password": "p" * (65 * 1024)}
    )
    assert response.status_code == 413
    assert db["user"].count_documents({"username_key": name.lower()}) == 0


def test_oversized_message_is_refused(member: Person, db: Db) -> None:
    text = unique_text("huge")
    response = post_public(member, text + "x" * (65 * 1024), csrf=member.csrf)
    assert response.status_code == 413
    assert_not_stored(member, db, text)


def test_oversized_chunked_body_is_refused(base_url: str, db: Db) -> None:
    """Without a Content-Length the limit must hold all the same."""
    name = unique_name("chunked")

    def body() -> Iterator[bytes]:
        yield f"username={name}&password={PASSWORD.replace(' ', '+')}&padding=".encode()
        for _ in range(16):
            yield b"p" * 8192

    response = httpx.post(
        base_url + "/register",
        content=body(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 413
    assert db["user"].count_documents({"username_key": name.lower()}) == 0


def test_a_form_just_under_the_limit_is_read(member: Person) -> None:
    """The control: the limit does not bite an ordinary (long) message."""
    text = unique_text("long") + " " + "y" * 3900
    response = post_public(member, text, csrf=member.csrf)
    assert response.status_code == 201


# Forms: URL-encoded UTF-8 only


def test_a_file_upload_is_not_a_message(member: Person, db: Db) -> None:
    filename = unique_text("upload") + ".txt"
    response = member.client.post(
        "/rooms/public/messages",
        files={"body": (filename, b"the file's contents", "text/plain")},
        headers={"HX-Request": "true", "X-CSRF-Token": member.csrf},
    )
    assert response.status_code == 415
    assert "cannot be attached" in response.text
    assert_not_stored(member, db, filename)
    assert "UploadFile" not in listed(member)


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data; boundary=x",
        "text/plain",
        "application/json",
        "application/x-www-form-urlencoded; charset=iso-8859-1",
    ],
)
def test_other_types_of_body_are_refused(member: Person, db: Db, content_type: str) -> None:
    text = unique_text("typed")
    response = member.client.post(
        "/rooms/public/messages",
        content=f"body={text}".encode(),
        headers={"HX-Request": "true", "X-CSRF-Token": member.csrf, "Content-Type": content_type},
    )
    assert response.status_code == 415
    assert_not_stored(member, db, text)


@pytest.mark.parametrize("bad", [b"%FF", b"%C3%28", b"\xff", b"caf\xe9"])
def test_a_form_that_is_not_utf8_is_refused(member: Person, db: Db, bad: bytes) -> None:
    text = unique_text("not-utf8")
    response = member.client.post(
        "/rooms/public/messages",
        content=b"body=" + text.encode() + bad,
        headers={
            "HX-Request": "true",
            "X-CSRF-Token": member.csrf,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 400
    assert "UTF-8" in response.text
    assert_not_stored(member, db, text)


def test_text_in_any_script_is_kept_as_it_was(member: Person, db: Db) -> None:
    text = unique_text("café 👩🏽‍💻 שלום עולם")
    response = post_public(member, text, csrf=member.csrf)
    assert response.status_code == 201
    assert text in listed(member)
    assert db["message"].count_documents({"body": text}) == 1
    charset = member.client.post(
        "/rooms/public/messages",
        content=urlencode({"body": text + " again"}).encode(),
        headers={
            "HX-Request": "true",
            "X-CSRF-Token": member.csrf,
            "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
        },
    )
    assert charset.status_code == 201
    assert db["message"].count_documents({"body": text + " again"}) == 1


# Control characters


def test_control_and_bidi_characters_are_dropped(member: Person, db: Db) -> None:
    text = unique_text("controls")
    response = post_public(member, f"\x00{text}\u202e-txt.exe\x1b[0m", csrf=member.csrf)
    assert response.status_code == 201
    stored = db["message"].find_one({"_id": ObjectId(message_id(response.text))})
    assert stored is not None
    assert stored["body"] == f"{text}-txt.exe[0m"
    assert "\x00" not in listed(member)
    assert "\u202e" not in listed(member)

    only = post_public(member, "\x00\u202e\u2066\x07", csrf=member.csrf)
    assert only.status_code == 400
    assert db["message"].count_documents({"body": {"$regex": "\u202e|\x07"}}) == 0

    away = unique_text("away")
    assert member.send("POST", "/away", {"away_message": f"\u202e{away}\x00"}).status_code == 200
    user = db["user"].find_one({"username_key": member.username.lower()})
    assert user is not None
    assert user["away_message"] == away


# Caching and HSTS


def assert_private(response: httpx.Response) -> None:
    assert response.headers.get_list("cache-control") == ["no-store"], response.request.url


def test_signed_in_pages_and_history_are_not_stored(make_person: MakePerson) -> None:
    someone, other = make_person(), make_person()
    assert someone.post_dm(other.username, unique_text("private")).status_code == 201
    for path in ("/", "/rooms/public", f"/dm/{other.username}"):
        response = someone.client.get(path)
        assert response.status_code == 200, path
        assert_private(response)
    for path in ("/rooms/public/messages", f"/dm/{other.username}/messages"):
        response = someone.client.get(path, headers={"HX-Request": "true"})
        assert response.status_code == 200, path
        assert_private(response)
    posted = someone.post_public(unique_text("posted"))
    assert posted.status_code == 201
    assert_private(posted)


def test_a_token_is_not_stored(member: Person) -> None:
    response = httpx.post(
        member.base_url + "/api/token",
        data={"username": member.username, "password": PASSWORD},
    )
    assert response.status_code == 200
    assert_private(response)
    refused = httpx.post(
        member.base_url + "/api/token",
        data={"username": member.username, "password": "not the password"},
    )
    assert refused.status_code == 401
    assert_private(refused)


@pytest.mark.parametrize("path", ["/login", "/register", "/healthz", "/no-such-page", "/events"])
def test_anonymous_answers_are_not_stored_either(base_url: str, path: str) -> None:
    response = httpx.get(base_url + path, headers={"Accept": "text/html"})
    assert response.status_code < 500
    assert_private(response)


async def test_the_event_stream_says_no_store_once(member: Person) -> None:
    async with open_stream(member.base_url, token=member.token()) as events:
        assert_private(events.response)


def test_after_signing_out_the_pages_are_gone(person: Person) -> None:
    """The pages were never stored; asked again, with the old cookie, they are not there."""
    page = person.client.get("/")
    assert page.status_code == 200
    assert_private(page)
    old_cookie = person.cookie
    assert person.send("POST", "/logout", htmx=False).status_code == 303
    again = httpx.get(person.base_url + "/", cookies={"session": old_cookie})
    assert again.status_code == 303
    assert again.headers["location"] == "/login"
    assert_private(again)


@pytest.mark.parametrize("path", ANONYMOUS_PATHS[4:8])
def test_static_assets_may_be_cached(base_url: str, path: str) -> None:
    response = httpx.get(base_url + path)
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("cache-control", "")


def test_no_hsts_in_development(base_url: str) -> None:
    assert "strict-transport-security" not in httpx.get(base_url + "/login").headers


def test_hsts_in_production(mongo_uri: str, tmp_path: Path) -> None:
    env = {"APP_ENV": "production", "SECRET_KEY": SECRET_KEY}
    with AppServer(mongo_uri, data_dir=tmp_path, env=env) as server:
        for path in ("/login", "/healthz", "/static/app.css", "/no-such-page"):
            response = httpx.get(server.url + path)
            assert response.status_code in (200, 404), path
            hsts = response.headers.get("strict-transport-security")
            assert hsts == "max-age=63072000; includeSubDomains", path


# Trailing slashes


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/login/", "/login"),
        ("/login//", "/login"),
        ("/register/?next=%2Frooms", "/register?next=%2Frooms"),
        ("/rooms/public/messages/", "/rooms/public/messages"),
        ("/dm/some_one/", "/dm/some_one"),
    ],
)
def test_a_trailing_slash_redirects_to_the_path_alone(
    base_url: str, path: str, location: str
) -> None:
    response = httpx.get(base_url + path, headers={"Host": "evil.example"})
    assert response.status_code == 307
    assert response.headers["location"] == location
    assert "evil" not in response.text


@pytest.mark.parametrize(
    "path", ["/no-such-page/", "//evil.example/", "/static/nothing-here/", "//"]
)
def test_a_trailing_slash_elsewhere_is_not_found(base_url: str, path: str) -> None:
    response = httpx.get(base_url + path, headers={"Host": "evil.example"})
    assert response.status_code == 404
    assert "location" not in response.headers


def test_a_post_with_a_trailing_slash_stores_nothing(member: Person, db: Db) -> None:
    text = unique_text("slash")
    response = member.client.post(
        "/rooms/public/messages/",
        data={"body": text},
        headers={"HX-Request": "true", "X-CSRF-Token": member.csrf, "Host": "evil.example"},
    )
    assert response.status_code == 307
    assert response.headers["location"] == "/rooms/public/messages"
    assert_not_stored(member, db, text)
