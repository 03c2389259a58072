"""Import customers or daily snapshots from a file, as the API's import jobs do, with progress.

    python -m services.customer.import_cli FILE --kind customers|snapshots
        [--format csv|jsonl] [--database-url URL]

The import is a job like one sent to the API (``GET /api/v1/customers/imports/{id}`` shows it),
run in this process. Whoever runs the command holds the database's credentials, so the rows are
not limited to an org subtree. Progress goes to stderr, the summary and the first errors to
stdout. Exit status: 0 when the job finished (even with refused rows), 1 when it failed, 2 on a
usage error, 130 when interrupted (the rows committed stay; running the command again is safe,
since importing a row again changes nothing).
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session

from crmkit.heap import freeze_startup_heap
from services.customer import imports
from services.customer.app import build_context, build_runtime
from services.customer.imports import EVERYWHERE, IMPORTS_PATH, ImportRunner, Progress
from services.customer.models import ImportJob
from services.customer.schemas_imports import ImportFormat, ImportKind, ImportStatus
from services.customer.settings import CustomerSettings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
ERRORS_SHOWN = 20
_SUFFIXES = {".csv": ImportFormat.csv, ".jsonl": ImportFormat.jsonl, ".ndjson": ImportFormat.jsonl}


class ProgressBar:
    """A one-line progress bar: share of the file read, rows, rows per second."""

    WIDTH = 30

    def __init__(self, stream: TextIO, interval_s: float | None = None) -> None:
        self.stream = stream
        self.interactive = stream.isatty()
        # On a terminal the line is redrawn; into a log file a line is written now and then.
        self.interval_s = (
            interval_s if interval_s is not None else (0.2 if self.interactive else 10)
        )
        self.started = time.monotonic()
        self._last = 0.0
        self._drawn = False
        self._shown: Progress | None = None

    def update(self, progress: Progress, *, force: bool = False) -> None:
        """Show the progress (at most every ``interval_s`` unless forced)."""
        now = time.monotonic()
        if progress == self._shown or (not force and now - self._last < self.interval_s):
            return
        self._last = now
        self._shown = progress
        self.stream.write(("\r" if self.interactive else "") + self.line(progress, now))
        if not self.interactive:
            self.stream.write("\n")
        self.stream.flush()
        self._drawn = True

    def line(self, progress: Progress, now: float) -> str:
        share = progress.bytes_read / progress.bytes_total if progress.bytes_total else 1.0
        share = min(1.0, share)
        filled = int(share * self.WIDTH)
        rate = progress.rows_done / max(now - self.started, 1e-9)
        return (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {share:6.1%}  "
            f"{progress.rows_done:,} rows  {rate:,.0f} rows/s  {progress.failed:,} refused"
        )

    def close(self) -> None:
        if self._drawn and self.interactive:
            self.stream.write("\n")
            self.stream.flush()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.customer.import_cli",
        description="Import customers or core banking's daily snapshots from CSV or JSON Lines.",
    )
    parser.add_argument("file", type=Path, help="the CSV or JSON Lines file")
    parser.add_argument("--kind", required=True, choices=[k.value for k in ImportKind])
    parser.add_argument(
        "--format",
        dest="fmt",
        choices=[f.value for f in ImportFormat],
        help="csv or jsonl; by default from the file name (.csv, .jsonl, .ndjson)",
    )
    parser.add_argument("--database-url", help="the customer database (default: from settings)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage
        return int(exc.code or 0)
    path: Path = args.file
    if not path.is_file():
        parser.print_usage(sys.stderr)
        print(f"error: no file {path}", file=sys.stderr)
        return EXIT_USAGE
    fmt = ImportFormat(args.fmt) if args.fmt else _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        parser.print_usage(sys.stderr)
        print(f"error: name the format of {path.name} with --format", file=sys.stderr)
        return EXIT_USAGE
    if args.database_url:
        try:
            make_url(args.database_url)
        except ArgumentError:
            parser.print_usage(sys.stderr)
            print(f"error: {args.database_url!r} is not a database URL", file=sys.stderr)
            return EXIT_USAGE
    settings = CustomerSettings(
        **({"database_url": args.database_url} if args.database_url else {})
    )
    return run(settings, path.resolve(), ImportKind(args.kind), fmt, sys.stdout, sys.stderr)


def run(
    settings: CustomerSettings,
    path: Path,
    kind: ImportKind,
    fmt: ImportFormat,
    out: TextIO,
    err: TextIO,
) -> int:
    """Import ``path`` as a job in this process; prints the summary; returns the exit status."""
    runtime = build_runtime(settings)
    try:
        if settings.run_migrations_on_start:
            runtime.migrate()
        freeze_startup_heap()  # as a service process does once it has started
        runner = ImportRunner(
            runtime.session_factory,
            build_context(runtime),
            chunk_rows=settings.import_chunk_rows,
            import_dir=settings.import_dir,
            workers=settings.import_workers,
            parallel_min_bytes=settings.import_parallel_min_bytes,
            worker_settings=settings,
        )
        job_id = str(uuid.uuid4())
        with runtime.session_factory() as session:
            imports.create_job(
                session,
                job_id=job_id,
                kind=kind,
                fmt=fmt,
                path=path,
                sha256=imports.file_sha256(path),
                scope=EVERYWHERE,
                actor=f"import-cli:{getpass.getuser()}",
            )
        bar = ProgressBar(err)
        last: list[Progress] = []

        def progress(p: Progress) -> None:
            last[:] = [p]
            bar.update(p)

        try:
            status = runner.run_job(job_id, on_progress=progress)
        except KeyboardInterrupt:
            bar.close()
            # Left running, the service would resume it from a file it may not be able to read.
            runner.fail(job_id, "interrupted")
            print("interrupted; the rows committed so far stay", file=err)
            return EXIT_INTERRUPTED
        if last:
            bar.update(last[0], force=True)
        bar.close()
        with runtime.session_factory() as session:
            job = session.get(ImportJob, job_id)
            assert job is not None
            _summary(session, job, out)
        return EXIT_OK if status is ImportStatus.finished else EXIT_FAILED
    finally:
        runtime.engine.dispose()


def _summary(session: Session, job: ImportJob, out: TextIO) -> None:
    out.write(
        f"import {job.id}: {job.status}; {job.rows_done:,} rows: {job.rows_created:,} created, "
        f"{job.rows_updated:,} updated, {job.rows_unchanged:,} unchanged, "
        f"{job.rows_failed:,} refused\n"
    )
    if job.error:
        out.write(f"error: {job.error}\n")
    errors, total = imports.error_page(session, job.id, ERRORS_SHOWN, 0)
    if not total:
        return
    out.write(f"error report ({total:,} entries):\n")
    for entry in errors:
        out.write(f"  row {entry.row}: {entry.field}: {entry.reason}\n")
    if total > len(errors):
        out.write(
            f"  … {total - len(errors):,} more: GET {IMPORTS_PATH}/{job.id}/errors?format=csv\n"
        )


if __name__ == "__main__":
    sys.exit(main())
