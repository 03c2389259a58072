"""Run every benchmark: ``python -m bench`` (small size) or ``python -m bench --full``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from bench import (
    assignment_rules,
    customer_import,
    outbox_pipeline,
    rating_campaign,
    visits_followups,
)

BENCHMARKS: dict[str, Callable[..., dict[str, Any]]] = {
    "outbox_pipeline": outbox_pipeline.run,
    "customer_import": customer_import.run,
    "assignment_rules": assignment_rules.run,
    "rating_campaign": rating_campaign.run,
    "visits_followups": visits_followups.run,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--full", action="store_true", help="the issues' full size")
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="service databases: temporary SQLite files or temporary PostgreSQL databases",
    )
    parser.add_argument(
        "--only", choices=sorted(BENCHMARKS), action="append", help="run only these benchmarks"
    )
    parser.add_argument("--verbose", action="store_true", help="show the services' log warnings")
    args = parser.parse_args(argv)
    for name in args.only or list(BENCHMARKS):
        BENCHMARKS[name](full=args.full, database=args.database, verbose=args.verbose)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
