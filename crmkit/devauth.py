"""Development token issuer of the embedded default: a local RSA key and seeded users.

Never used in production, where tokens come from the bank's OIDC provider. ``make token
USER=<name>`` prints a token; the gateway serves ``POST /api/v1/auth/token`` with it.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from crmkit.settings import VAR_DIR

KEY_DIR = VAR_DIR / "keys"
PRIVATE_KEY = KEY_DIR / "dev-jwt.pem"
PUBLIC_KEY = KEY_DIR / "dev-jwt.pub.pem"
USERS_FILE = Path(__file__).with_name("dev_users.json")
DEV_PASSWORD = "crm-dev"
ISSUER = "crm-dev-issuer"
AUDIENCE = "crm"


@dataclass(frozen=True)
class DevUser:
    username: str
    name: str
    roles: list[str]
    org_unit: str


def seeded_users() -> dict[str, DevUser]:
    raw = json.loads(USERS_FILE.read_text())
    return {u["username"]: DevUser(**u) for u in raw}


def generate_keypair() -> tuple[str, str]:
    """A fresh RSA key pair as (private PEM, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def ensure_keys(directory: Path = KEY_DIR) -> tuple[Path, Path]:
    """Create the development key pair once; return (private, public) paths."""
    private_path, public_path = directory / PRIVATE_KEY.name, directory / PUBLIC_KEY.name
    if not private_path.exists() or not public_path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        private, public = generate_keypair()
        private_path.write_text(private)
        private_path.chmod(0o600)
        public_path.write_text(public)
    return private_path, public_path


def sign(claims: dict[str, Any], private_pem: str, ttl_s: int = 8 * 3600) -> str:
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + ttl_s,
        "jti": str(uuid.uuid4()),
        **claims,
    }
    return jwt.encode(payload, private_pem, algorithm="RS256")


def token_for(user: DevUser, private_pem: str, ttl_s: int = 8 * 3600) -> str:
    return sign(
        {"sub": user.username, "name": user.name, "roles": user.roles, "org_unit": user.org_unit},
        private_pem,
        ttl_s,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Print a development token for a seeded user.")
    parser.add_argument("user", nargs="?", default="admin")
    args = parser.parse_args()
    users = seeded_users()
    if args.user not in users:
        raise SystemExit(f"unknown user {args.user!r}; seeded users: {', '.join(sorted(users))}")
    private_path, _ = ensure_keys()
    print(token_for(users[args.user], private_path.read_text()))


if __name__ == "__main__":
    main()
