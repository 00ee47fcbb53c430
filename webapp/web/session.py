"""Who a request is from, once authenticated (auth.py): their user and session."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from starlette.authentication import BaseUser
from starlette.requests import HTTPConnection

from webapp import settings
from webapp.data.models import User
from webapp.errors import Unauthorized
from webapp.web import tokens


@dataclass
class SignedInUser(BaseUser):
    user: User
    claims: tokens.SessionClaims
    via: Literal["cookie", "bearer"]

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.user.username

    @property
    def identity(self) -> str:
        return str(self.user.id)

    @cached_property
    def csrf_token(self) -> str:
        return tokens.issue_csrf_token(self.claims.jti, secret=str(settings.SECRET_KEY))


def signed_in(request: HTTPConnection) -> SignedInUser:
    """The signed-in user, or Unauthorized."""
    if not isinstance(request.user, SignedInUser):
        raise Unauthorized()
    return request.user
