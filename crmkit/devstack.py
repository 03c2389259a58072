"""The embedded default, as ``make run`` starts it: broker, five services and the gateway.

``prepare`` creates the development keys, picks a free loopback port for the broker, writes the
environment file the Procfile reads (``var/run.env``) and migrates every service database; ``run``
does that and hands over to honcho, which starts the Procfile's processes and stops them all on
Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from crmkit import devauth
from crmkit.broker import free_port
from crmkit.settings import REPO_ROOT, VAR_DIR

SERVICES = ("customer", "rating", "assignment", "visits", "notify")
DEFAULT_PORTS = {
    "gateway": 8000,
    "customer": 8001,
    "rating": 8002,
    "assignment": 8003,
    "visits": 8004,
    "notify": 8005,
}
ENV_FILE = VAR_DIR / "run.env"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def stack_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """Ports and addresses of the embedded stack; values already in ``base`` win."""
    env = dict(base if base is not None else os.environ)
    ports: dict[str, int] = {}
    for name, default in DEFAULT_PORTS.items():
        key = f"CRM_{name.upper()}_PORT"
        ports[name] = int(env.get(key, default))
        if not _port_free(ports[name]):
            raise SystemExit(
                f"port {ports[name]} for {name} is taken: stop what uses it or set {key}"
            )
    broker_port = int(env.get("CRM_BROKER_PORT", 19092))
    if not _port_free(broker_port):
        broker_port = free_port()
    _, public_key = devauth.ensure_keys()
    out = {
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONUNBUFFERED": "1",
        "CRM_BROKER_PORT": str(broker_port),
        "CRM_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{broker_port}",
        "CRM_JWT_PUBLIC_KEY_FILE": str(public_key),
        "CRM_GATEWAY_DEV_ISSUER_KEY_FILE": str(devauth.PRIVATE_KEY),
    }
    for name, port in ports.items():
        out[f"CRM_{name.upper()}_PORT"] = str(port)
    for name in SERVICES:
        out[f"CRM_GATEWAY_UPSTREAM_{name.upper()}"] = f"http://127.0.0.1:{ports[name]}"
    return out


def migrate_all(env: dict[str, str]) -> None:
    """Apply every service's migrations to its database."""
    os.environ.update(env)
    from importlib import import_module

    for name in SERVICES:
        module = import_module(f"services.{name}.app")
        module.build_runtime().migrate()
        print(f"migrated {name}")


def write_env(env: dict[str, str], path: Path = ENV_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in sorted(env.items())))


def banner(env: dict[str, str]) -> str:
    gw = f"http://127.0.0.1:{env['CRM_GATEWAY_PORT']}"
    users = ", ".join(sorted(devauth.seeded_users()))
    return f"""
Bank CRM suite (embedded default: SQLite under var/, broker on {env["CRM_KAFKA_BOOTSTRAP_SERVERS"]})
  gateway        {gw}   (API docs: {gw}/docs, spec: {gw}/api/v1/openapi.json)
  readiness      {gw}/readyz
  log in         curl -s -X POST {gw}/api/v1/auth/token -H 'content-type: application/json' \\
                      -d '{{"username": "manager.li", "password": "{devauth.DEV_PASSWORD}"}}'
                 or: make token USER=manager.li
  seeded users   {users}
Ctrl-C stops everything.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description="Prepare or run the embedded stack.")
    parser.add_argument("command", choices=["prepare", "migrate", "run"])
    args = parser.parse_args()
    if args.command == "migrate":
        env = {"PYTHONPATH": str(REPO_ROOT)}
        migrate_all(env)
        return
    env = stack_environment()
    write_env(env)
    migrate_all(env)
    if args.command == "prepare":
        return
    print(banner(env), flush=True)
    honcho = Path(sys.executable).with_name("honcho")
    os.chdir(REPO_ROOT)
    os.execv(str(honcho), [str(honcho), "start", "-f", "Procfile", "-e", str(ENV_FILE)])


if __name__ == "__main__":
    main()
