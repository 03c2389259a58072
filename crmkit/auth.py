"""Bearer-token authentication shared by the services and the gateway.

Tokens are RS256 JWTs. Claims: ``sub`` (staff id or client id), ``name``, ``roles`` (list),
``org_unit`` (path such as ``/HQ/U01/B03``), optional ``scope`` (space separated, client tokens).
The public key comes from a PEM file or a JWKS URL (the bank's OIDC provider) by settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crmkit.errors import Forbidden, Unauthorized
from crmkit.settings import SuiteSettings

# Roles of the suite (REQUIREMENTS §1). Service code checks roles by these names.
ROLE_ADMIN = "admin"
ROLE_OPS = "ops"


@dataclass(frozen=True)
class Caller:
    """Who is calling: a staff member or another bank system (client credentials)."""

    subject: str
    name: str
    roles: frozenset[str]
    org_unit: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    is_client: bool = False

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    def within(self, org_unit: str) -> bool:
        """True when ``org_unit`` lies in the caller's org subtree."""
        mine = self.org_unit.rstrip("/")
        return org_unit == mine or org_unit.startswith(mine + "/")


class TokenVerifier:
    """Verifies RS256 tokens against a PEM public key or a JWKS endpoint."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        public_key_pem: str | None = None,
        public_key_file: str | None = None,
        jwks_url: str | None = None,
        leeway_s: int = 30,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self._pem = public_key_pem
        self._pem_file = public_key_file
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300) if jwks_url else None

    @cached_property
    def _key(self) -> Any:
        pem = self._pem
        if pem is None and self._pem_file:
            path = Path(self._pem_file)
            if not path.exists():
                raise Unauthorized(f"token verification key not found at {path}")
            pem = path.read_text()
        if pem is None:
            raise Unauthorized("no token verification key is configured")
        return jwt.algorithms.RSAAlgorithm.from_jwk(pem) if pem.lstrip().startswith("{") else pem

    def verify(self, token: str) -> Caller:
        try:
            key = self._jwks.get_signing_key_from_jwt(token).key if self._jwks else self._key
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized(
                "the token has expired", headers=_challenge("invalid_token")
            ) from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(
                f"the token is not valid: {exc}", headers=_challenge("invalid_token")
            ) from exc
        return caller_from_claims(claims)


def verifier_from_settings(settings: SuiteSettings) -> TokenVerifier:
    """The verifier a process's settings describe: a JWKS endpoint when set, else a PEM file."""
    return TokenVerifier(
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        public_key_file=settings.jwt_public_key_file if not settings.jwt_jwks_url else None,
        jwks_url=settings.jwt_jwks_url or None,
    )


def caller_from_claims(claims: dict[str, Any]) -> Caller:
    roles = claims.get("roles") or []
    if not isinstance(roles, list):
        raise Unauthorized("the token's roles claim must be a list")
    return Caller(
        subject=str(claims["sub"]),
        name=str(claims.get("name", claims["sub"])),
        roles=frozenset(str(r) for r in roles),
        org_unit=str(claims.get("org_unit", "/")),
        scopes=frozenset(str(claims.get("scope", "")).split()),
        is_client=bool(claims.get("client", False)),
    )


def _challenge(error: str) -> dict[str, str]:
    return {"WWW-Authenticate": f'Bearer error="{error}"'}


_bearer = HTTPBearer(auto_error=False)


def get_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The authenticated caller; 401 problem+json when the token is missing or invalid."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    verifier: TokenVerifier = request.app.state.token_verifier
    caller = verifier.verify(credentials.credentials)
    request.state.caller = caller
    return caller


CurrentCaller = Annotated[Caller, Depends(get_caller)]


def require_roles(*roles: str) -> Any:
    """A dependency that admits only callers holding one of ``roles``."""

    def _check(caller: CurrentCaller) -> Caller:
        if not caller.has_role(*roles):
            raise Forbidden(f"this action needs one of the roles: {', '.join(sorted(roles))}")
        return caller

    return Depends(_check)
