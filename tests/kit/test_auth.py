"""Token verification, scopes, and the route inventory of every service."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib import import_module
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from crmkit import devauth
from crmkit.auth import Caller, TokenVerifier
from crmkit.errors import Unauthorized
from crmkit.http import PUBLIC_PATHS

SERVICES = ["customer", "rating", "assignment", "visits", "notify"]


@pytest.fixture
def verifier(dev_keys: tuple[str, Path]) -> TokenVerifier:
    return TokenVerifier(
        issuer=devauth.ISSUER, audience=devauth.AUDIENCE, public_key_file=str(dev_keys[1])
    )


def test_valid_token_gives_the_caller(
    verifier: TokenVerifier, token_for: Callable[[str], str]
) -> None:
    caller = verifier.verify(token_for("manager.li"))
    assert caller.subject == "manager.li"
    assert caller.roles == {"customer_manager"}
    assert caller.org_unit == "/HQ/U01/B01"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"iss": "someone-else"}, "issuer"),
        ({"aud": "other-app"}, "audience"),
    ],
)
def test_token_with_wrong_claims_is_refused(
    verifier: TokenVerifier, dev_keys: tuple[str, Path], claims: dict[str, object], reason: str
) -> None:
    token = jwt.encode(
        {
            "sub": "x",
            "iss": devauth.ISSUER,
            "aud": devauth.AUDIENCE,
            "exp": int(time.time()) + 60,
            **claims,
        },
        dev_keys[0],
        algorithm="RS256",
    )
    with pytest.raises(Unauthorized) as err:
        verifier.verify(token)
    assert reason in err.value.detail.lower()


def test_token_signed_by_another_key_is_refused(verifier: TokenVerifier) -> None:
    other_private, _ = devauth.generate_keypair()
    token = devauth.token_for(devauth.seeded_users()["admin"], other_private)
    with pytest.raises(Unauthorized):
        verifier.verify(token)


def test_hmac_token_keyed_with_the_public_key_is_refused(
    verifier: TokenVerifier, dev_keys: tuple[str, Path]
) -> None:
    """The classic algorithm confusion: HS256 signed with the (public) RSA key as secret."""
    header = _b64(b'{"alg":"HS256","typ":"JWT"}')
    claims = _b64(
        json.dumps(
            {
                "sub": "admin",
                "roles": ["admin"],
                "iss": devauth.ISSUER,
                "aud": devauth.AUDIENCE,
                "exp": int(time.time()) + 60,
            }
        ).encode()
    )
    signature = hmac.new(
        dev_keys[1].read_bytes(), f"{header}.{claims}".encode(), hashlib.sha256
    ).digest()
    with pytest.raises(Unauthorized):
        verifier.verify(f"{header}.{claims}.{_b64(signature)}")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_roles_claim_must_be_a_list(verifier: TokenVerifier, dev_keys: tuple[str, Path]) -> None:
    token = devauth.sign({"sub": "x", "roles": "admin"}, dev_keys[0])
    with pytest.raises(Unauthorized):
        verifier.verify(token)


def test_org_scope_is_a_subtree() -> None:
    caller = Caller("u", "U", frozenset({"customer_manager"}), "/HQ/U01")
    assert caller.within("/HQ/U01") and caller.within("/HQ/U01/B02")
    assert not caller.within("/HQ/U010") and not caller.within("/HQ")


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_but_health_metrics_and_docs_requires_a_token(
    service: str,
    dev_keys: tuple[str, Path],
    tmp_path: Path,
    auth_header: Callable[[str], dict[str, str]],
) -> None:
    module = import_module(f"services.{service}.app")
    settings_cls = type(module.build_runtime().settings)
    app = module.create_app(
        settings_cls(
            database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", jwt_public_key_file=str(dev_keys[1])
        )
    )
    client = TestClient(app)
    operations = [
        (method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item
    ]
    protected = [(m, p) for m, p in operations if p not in PUBLIC_PATHS]
    assert protected, "a service without protected routes"
    for method, template in protected:
        path = template.replace("{dead_letter_id}", "1").replace("{", "").replace("}", "")
        anonymous = client.request(method, path)
        assert anonymous.status_code == 401, f"{method} {template} without a token"
        assert anonymous.headers["content-type"] == "application/problem+json"
        bad = client.request(method, path, headers={"Authorization": "Bearer not-a-token"})
        assert bad.status_code == 401, f"{method} {template} with a bad token"
    admin = [(m, p) for m, p in protected if p.startswith(f"/api/v1/admin/{service}/")]
    assert len(admin) == 3
    for method, template in admin:
        path = template.replace("{dead_letter_id}", "1")
        wrong_role = client.request(method, path, headers=auth_header("teller.wang"))
        assert wrong_role.status_code == 403, f"{method} {template} for a teller"


def test_keys_from_a_jwks_endpoint(
    dev_keys: tuple[str, Path], token_for: Callable[[str], str]
) -> None:
    """The bank's OIDC provider publishes its keys as JWKS; the verifier fetches them by URL."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    public = load_pem_public_key(dev_keys[1].read_bytes())
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
    body = json.dumps({"keys": [{**jwk, "kid": "dev", "use": "sig", "alg": "RS256"}]}).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        verifier = TokenVerifier(
            issuer=devauth.ISSUER,
            audience=devauth.AUDIENCE,
            jwks_url=f"http://127.0.0.1:{server.server_port}/jwks.json",
        )
        private = dev_keys[0]
        user = devauth.seeded_users()["auditor.chen"]
        token = jwt.encode(
            {
                "sub": user.username,
                "roles": user.roles,
                "org_unit": user.org_unit,
                "iss": devauth.ISSUER,
                "aud": devauth.AUDIENCE,
                "exp": int(time.time()) + 60,
            },
            private,
            algorithm="RS256",
            headers={"kid": "dev"},
        )
        assert verifier.verify(token).roles == {"auditor"}
        other_private, _ = devauth.generate_keypair()
        forged = jwt.encode(
            {
                "sub": "x",
                "iss": devauth.ISSUER,
                "aud": devauth.AUDIENCE,
                "exp": int(time.time()) + 60,
            },
            other_private,
            algorithm="RS256",
            headers={"kid": "dev"},
        )
        with pytest.raises(Unauthorized):
            verifier.verify(forged)
    finally:
        server.shutdown()
