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


class PayloadTooLarge(ChatError):
    status_code = 413


class TooManyAttempts(ChatError):
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed sign-ins. Try again in {retry_after} seconds.")
        self.retry_after = retry_after
