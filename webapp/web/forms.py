"""The one way a request's form is read: URL-encoded UTF-8, strictly.

Starlette's own request.form() also takes multipart bodies (a file then comes back as an
UploadFile, which a view would take for text) and quietly turns bytes that are not UTF-8 into
replacement characters. Here any other type of body is refused (415: there are no attachments)
and so is text that is not UTF-8, raw or percent-encoded (400). The body's size and time are
bounded for every request by security.BodyLimitMiddleware.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from webapp.errors import BadRequest, ChatError

FORM_TYPE = "application/x-www-form-urlencoded"
UTF8_LABELS = ("", "utf-8", "utf8")  # no charset means UTF-8 for this type
NOT_UTF8 = "The form's text is not valid UTF-8."


class UnsupportedMediaType(ChatError):
    status_code = 415
    message = f"Forms are sent as {FORM_TYPE}, in UTF-8; files cannot be attached."


def _charset(parameters: str) -> str:
    """The charset named in a Content-Type's parameters ('' when none is)."""
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return ""


async def read_form(request: Request) -> FormData:
    """The request's URL-encoded form (empty for an empty body, whatever its type)."""
    body = await request.body()
    if not body:
        return FormData()
    media_type, _, parameters = request.headers.get("content-type", "").partition(";")
    if media_type.strip().lower() != FORM_TYPE or _charset(parameters) not in UTF8_LABELS:
        raise UnsupportedMediaType()
    try:
        fields = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, encoding="utf-8", errors="strict"
        )
    except UnicodeDecodeError:
        raise BadRequest(NOT_UTF8) from None
    return FormData(list[tuple[str, str | UploadFile]](fields))
