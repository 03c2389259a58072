"""The producing process of the bare baseline: kafka-python sends, nothing else.

``python -m bench._bare_producer BOOTSTRAP TOPIC COUNT RATE SIZE [--tag TAG]`` sends COUNT JSON
values of about SIZE bytes to TOPIC, RATE per second (0: as fast as it can), with the producer
settings of the suite (``crmkit.kafka.make_producer``). Each value carries its id
(``<tag>-<n>``, also the key) and ``ts``, the wall-clock time (``time.time()``) taken just before
the send, so that a consumer in another process on the same machine can compute the latency.
It prints one JSON line at the end: how many were sent and acknowledged, and how many failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from crmkit.kafka import make_producer
from crmkit.settings import KafkaSettings


def value(tag: str, n: int, pad: str) -> bytes:
    return json.dumps(
        {"id": f"{tag}-{n}", "ts": time.time(), "pad": pad}, separators=(",", ":")
    ).encode()


def padding(tag: str, count: int, size: int) -> str:
    """Padding that brings a value to about ``size`` bytes (the float's digits vary a little)."""
    bare = len(value(tag, max(0, count - 1), ""))
    return "x" * max(0, size - bare)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._bare_producer", description=__doc__)
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("count", type=int)
    parser.add_argument("rate", type=float, help="values per second; 0: as fast as possible")
    parser.add_argument("size", type=int, help="bytes per value, about")
    parser.add_argument("--tag", default="bare")
    args = parser.parse_args(argv)

    producer = make_producer(KafkaSettings(bootstrap_servers=args.bootstrap), "bench-bare")
    failed: list[int] = []

    def on_error(exc: Any) -> None:
        failed.append(1)

    try:
        producer.partitions_for(args.topic)  # metadata first: the first send must not wait for it
        pad = padding(args.tag, args.count, args.size)
        start = time.perf_counter()
        for n in range(args.count):
            if args.rate > 0:
                delay = start + n / args.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            producer.send(
                args.topic, key=f"{args.tag}-{n}", value=value(args.tag, n, pad)
            ).add_errback(on_error)
        producer.flush()
    finally:
        producer.close(timeout=5)
    print(json.dumps({"sent": args.count - len(failed), "failed": len(failed)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
