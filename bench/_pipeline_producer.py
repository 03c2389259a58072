"""The producing side of the pipeline benchmark: the customer service process, without its API.

``python -m bench._pipeline_producer --database-url URL --bootstrap HOST:PORT --namespace NS``
builds the customer runtime as the service's own process does, runs its workers (the outbox relay
on a thread of this process) and writes ``customer.created`` events through the runtime's event
recorder, one transaction per use case, as the service's API does. The database must be migrated
already.

It is driven by one JSON object per line on stdin and answers each with one JSON line on stdout
(nothing else is written there; logs go to stderr). A first line ``{"ready": true, ...}`` says it
has started. Commands:

* ``{"cmd": "start_relay"}`` / ``{"cmd": "stop_relay"}``: start or stop the runtime's workers.
* ``{"cmd": "paced", "count": N, "rate": R}``: N events, one per transaction, R per second
  (0: as fast as it goes); answers ``{"done": N, "errors": E, "written": [[id, occurred_at]…]}``.
* ``{"cmd": "burst", "count": M, "txn": T}``: M events in transactions of T, as fast as it goes;
  answers ``{"done": M, "ids": […], "first_commit": t, "write_eps": r}``.
* ``{"cmd": "paced_start", "rate": R}`` / ``{"cmd": "paced_stop"}``: write one event per
  transaction at R per second on a thread of its own until stopped; the stop answers like
  ``paced``, with every event written meanwhile.
* ``{"cmd": "metrics"}``: the relay's ``crm_outbox_republished_total``.
* ``{"cmd": "exit"}``: stop the workers and exit (so does the end of stdin).

Ids are customer ids; ``occurred_at`` is the envelope's, in seconds since the epoch (wall clock,
``time.time()``'s), taken when the event is recorded, just before the transaction commits. A
command that fails answers ``{"error": "..."}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
import uuid
from typing import IO, Any

from prometheus_client import REGISTRY

from crmkit.runtime import ServiceRuntime
from crmkit.settings import KafkaSettings
from services.customer.app import build_runtime
from services.customer.events import CUSTOMER_CREATED
from services.customer.settings import CustomerSettings


def customer_payload(customer_id: str, n: int) -> dict[str, Any]:
    """A ``customer.created`` payload (contracts/events/customer.created.v1.json)."""
    return {
        "customer_id": customer_id,
        "kind": "individual",
        "name": f"Bench Customer {n:07d}",
        "org_unit": "/hq/branch-01/sub-03",
        "business_line": "personal",
        "status": "active",
        "segment": "stock",
    }


class Writer:
    """Writes events through the runtime's recorder, as the service's use cases do."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        self._n = 0
        self._lock = threading.Lock()

    def _next_n(self) -> int:
        with self._lock:
            self._n += 1
            return self._n

    def write_many(self, count: int) -> list[tuple[str, float]]:
        """``count`` events in one transaction; returns their ids and ``occurred_at``."""
        written: list[tuple[str, float]] = []
        with self.runtime.session_factory() as s, s.begin():
            for _ in range(count):
                cid = str(uuid.uuid4())
                envelope = self.runtime.recorder.record(
                    s,
                    CUSTOMER_CREATED,
                    customer_payload(cid, self._next_n()),
                    key=cid,
                    actor="bench",
                )
                written.append((cid, envelope.occurred_at.timestamp()))
        return written

    def paced(self, count: int, rate: float) -> dict[str, Any]:
        written: list[tuple[str, float]] = []
        errors = 0
        start = time.perf_counter()
        for i in range(count):
            if rate > 0:
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            try:
                written.extend(self.write_many(1))
            except Exception:  # a failed write is not an event; keep the pace
                logging.getLogger(__name__).warning("write failed", exc_info=True)
                errors += 1
        return {"done": len(written), "errors": errors, "written": written}

    def burst(self, count: int, txn: int) -> dict[str, Any]:
        ids: list[str] = []
        first_commit: float | None = None
        started = time.perf_counter()
        while len(ids) < count:
            ids.extend(cid for cid, _ in self.write_many(min(txn, count - len(ids))))
            if first_commit is None:
                first_commit = time.time()
        elapsed = time.perf_counter() - started
        return {
            "done": len(ids),
            "ids": ids,
            "first_commit": first_commit,
            "write_eps": len(ids) / elapsed if elapsed > 0 else None,
        }


class BackgroundWriter:
    """One event per transaction at a steady rate on its own thread, until stopped."""

    def __init__(self, writer: Writer, rate: float) -> None:
        self.writer = writer
        self.rate = rate
        self.written: list[tuple[str, float]] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.perf_counter()
        i = 0
        while not self._stop.is_set():
            delay = start + i / self.rate - time.perf_counter()
            if delay > 0 and self._stop.wait(delay):
                break
            i += 1
            try:
                self.written.extend(self.writer.write_many(1))
            except Exception:  # a failed write is not an event; keep the pace
                logging.getLogger(__name__).warning("write failed", exc_info=True)
                self.errors += 1

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(30)
        return {"done": len(self.written), "errors": self.errors, "written": self.written}


class Producer:
    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        self.writer = Writer(runtime)
        self.relay_running = False
        self.background: BackgroundWriter | None = None

    def start_relay(self) -> None:
        if not self.relay_running:
            self.runtime.start_workers()
            self.relay_running = True

    def stop_relay(self) -> None:
        if self.relay_running:
            self.runtime.stop_workers()
            self.relay_running = False

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        cmd = command.get("cmd")
        if cmd == "start_relay":
            self.start_relay()
            return {"ok": True}
        if cmd == "stop_relay":
            self.stop_relay()
            return {"ok": True}
        if cmd == "paced":
            return self.writer.paced(int(command["count"]), float(command.get("rate", 0)))
        if cmd == "burst":
            return self.writer.burst(int(command["count"]), int(command.get("txn", 1000)))
        if cmd == "paced_start":
            if self.background is not None:
                raise RuntimeError("a paced writer is running already")
            self.background = BackgroundWriter(self.writer, float(command["rate"]))
            return {"ok": True}
        if cmd == "paced_stop":
            if self.background is None:
                raise RuntimeError("no paced writer is running")
            answer = self.background.stop()
            self.background = None
            return answer
        if cmd == "metrics":
            value = REGISTRY.get_sample_value(
                "crm_outbox_republished_total", {"service": self.runtime.name}
            )
            return {"republished": int(value or 0)}
        raise ValueError(f"unknown command: {command!r}")

    def close(self) -> None:
        if self.background is not None:
            self.background.stop()
            self.background = None
        self.stop_relay()
        self.runtime.engine.dispose()


def _protocol_stream() -> IO[str]:
    """Stdout for the answers alone: anything else printed goes to stderr."""
    stream = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    return stream


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._pipeline_producer", description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    out = _protocol_stream()
    logging.basicConfig(
        level=logging.WARNING if args.verbose else logging.CRITICAL,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )

    runtime = build_runtime(
        CustomerSettings(
            database_url=args.database_url,
            kafka=KafkaSettings(bootstrap_servers=args.bootstrap, namespace=args.namespace),
            worker_metrics_port=0,
            run_migrations_on_start=False,
        )
    )
    producer = Producer(runtime)

    def answer(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj, separators=(",", ":")) + "\n")
        out.flush()

    try:
        answer(
            {
                "ready": True,
                "pid": os.getpid(),
                "relay_poll_interval_s": runtime.settings.relay_poll_interval_s,
            }
        )
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                command = json.loads(line)
                if command.get("cmd") == "exit":
                    break
                answer(producer.handle(command))
            except Exception as exc:  # report it; the bench decides what to do
                logging.getLogger(__name__).warning("command failed", exc_info=True)
                answer({"error": repr(exc)})
    finally:
        producer.close()
    answer({"ok": True, "exited": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
