"""What can go wrong on purpose, each with its HTTP status."""

from __future__ import annotations


class ChatError(Exception):
    status_code = 400
    message = "Something is wrong with that request."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message


class BadRequest(ChatError):
    status_code = 400


class Unauthorized(ChatError):
    status_code = 401
    message = "Sign in first."


class Forbidden(ChatError):
    status_code = 403
    message = "You may not do that."


class CSRFFailed(Forbidden):
    message = "This form has expired or did not come from this site. Reload the page and try again."


class NotFound(ChatError):
    status_code = 404
    message = "Not found."


class Conflict(ChatError):
    status_code = 409


class NameTaken(Conflict):
    message = "That username is taken."


class PayloadTooLarge(ChatError):
    status_code = 413


class TooManyAttempts(ChatError):
    """Refused for now: the answer says when to come back (Retry-After, in seconds)."""

    status_code = 429
    message = "Too many failed sign-ins. Try again in {seconds} seconds."

    def __init__(self, retry_after: int) -> None:
        super().__init__(self.message.format(seconds=retry_after))
        self.retry_after = retry_after


class PostingTooFast(TooManyAttempts):
    message = "You are sending messages too fast. Try again in {seconds} seconds."


class MakingRoomsTooFast(TooManyAttempts):
    message = "You are making rooms too fast. Try again in {seconds} seconds."


class AddingTooFast(TooManyAttempts):
    message = "You are adding people to rooms too fast. Try again in {seconds} seconds."


class Busy(TooManyAttempts):
    """Every core has been hashing passwords for as long as a request waits its turn (a
    TooManyAttempts for its Retry-After, but 503)."""

    status_code = 503
    message = "The server is busy. Try again in {seconds} seconds."


class DatabaseUnavailable(TooManyAttempts):
    """The database did not answer: nothing was changed, and the client may try again soon
    (a TooManyAttempts for its Retry-After, but 503)."""

    status_code = 503
    message = "The chat cannot reach its database just now. Try again in {seconds} seconds."


def retry_headers(exc: ChatError) -> dict[str, str]:
    """Retry-After for a refusal for now; nothing for any other."""
    return {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyAttempts) else {}
