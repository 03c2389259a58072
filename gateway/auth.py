"""Tokens at the gateway: verification, the caller's profile and the development issuer.

The gateway verifies every bearer token before proxying (the services verify it again). In the
embedded default it also issues development tokens for the seeded users; production disables that
and takes its tokens from the bank's OIDC provider.
"""

from __future__ import annotations

import hmac
from functools import cached_property
from pathlib import Path
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from crmkit import devauth
from crmkit.auth import Caller, CurrentCaller
from crmkit.errors import ServiceUnavailable, Unauthorized


class TokenRequest(BaseModel):
    """Credentials of a seeded development user."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=100, examples=["manager.li"])
    password: str = Field(min_length=1, max_length=200, examples=[devauth.DEV_PASSWORD])


class TokenResponse(BaseModel):
    """A bearer token and its lifetime in seconds."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class CallerOut(BaseModel):
    """Who the token says the caller is."""

    subject: str
    name: str
    roles: list[str]
    org_unit: str


class DevIssuer:
    """Issues development tokens for the seeded users, signed with the local private key."""

    def __init__(self, key_file: str, ttl_s: int) -> None:
        self.key_file = Path(key_file)
        self.ttl_s = ttl_s
        self.users = devauth.seeded_users()

    @cached_property
    def _private_key(self) -> str:
        if not self.key_file.exists():
            raise ServiceUnavailable(
                f"The development token issuer has no signing key at {self.key_file}."
            )
        return self.key_file.read_text()

    def issue(self, username: str, password: str) -> TokenResponse:
        """A token for ``username``; 401 when the user is unknown or the password is wrong."""
        user = self.users.get(username)
        password_ok = hmac.compare_digest(password.encode(), devauth.DEV_PASSWORD.encode())
        if user is None or not password_ok:
            raise Unauthorized("The username or password is not valid.")
        token = devauth.token_for(user, self._private_key, self.ttl_s)
        return TokenResponse(access_token=token, expires_in=self.ttl_s)


def dev_issuer_router(issuer: DevIssuer) -> APIRouter:
    """``POST /api/v1/auth/token``: development tokens for the seeded users (public)."""
    router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

    @router.post(
        "/token",
        response_model=TokenResponse,
        summary="Get a development token for a seeded user",
        responses={401: {"description": "Unknown user or wrong password"}},
    )
    def issue_token(body: TokenRequest) -> TokenResponse:
        return issuer.issue(body.username, body.password)

    return router


def caller_out(caller: Caller) -> CallerOut:
    """The wire form of a caller, roles sorted."""
    return CallerOut(
        subject=caller.subject,
        name=caller.name,
        roles=sorted(caller.roles),
        org_unit=caller.org_unit,
    )


def me_router() -> APIRouter:
    """``GET /api/v1/me``: the authenticated caller."""
    router = APIRouter(prefix="/api/v1", tags=["auth"])

    @router.get("/me", response_model=CallerOut, summary="Who the bearer token belongs to")
    def me(caller: CurrentCaller) -> CallerOut:
        return caller_out(caller)

    return router
