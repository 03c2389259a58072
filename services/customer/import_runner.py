"""Running import jobs: a chunk of rows per transaction, progress, resume after a crash."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from crmkit import context
from crmkit.db import utcnow
from crmkit.heap import gc_paused
from services.customer.context import CustomerContext
from services.customer.import_jobs import ACTIVE, RunningJob, Tally, scope_caller
from services.customer.import_pool import Handler, PreparePool, handler_for, prepare_chunk
from services.customer.import_source import ImportFileError, RowSource, SourceRow, chunks
from services.customer.models import (
    ImportJob,
    ImportRowError,
)
from services.customer.schemas_imports import ImportFormat, ImportKind, ImportStatus
from services.customer.settings import CustomerSettings

log = logging.getLogger(__name__)

# A chunk that lost a race with another writer (a unique identity, a record's version) is done
# again from the start: the second time its query sees the other writer's rows.
_CHUNK_ATTEMPTS = 3


# -- the runner ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Progress:
    """Where a job stands after a chunk committed (for progress bars)."""

    job_id: str
    rows_done: int
    created: int
    updated: int
    unchanged: int
    failed: int
    bytes_read: int
    bytes_total: int


ProgressFn = Callable[[Progress], None]


class _JobTaken(Exception):
    """Another runner moved the job on (two processes resumed it): this one lets go."""


class ImportRunner:
    """Runs import jobs in one background thread, one job at a time, a chunk per transaction.

    ``run_job`` also runs a job in the calling thread (the CLI). Several runners, in several
    processes, may resume the same job: a chunk's progress is written only if the job still
    stands where the chunk began, so a chunk is never committed twice.
    """

    def __init__(
        self,
        sessions: Callable[[], Session],
        ctx: CustomerContext,
        *,
        chunk_rows: int,
        import_dir: Path,
        workers: int = 0,
        parallel_min_bytes: int = 0,
        worker_settings: CustomerSettings | None = None,
    ) -> None:
        """``workers`` processes prepare the chunks of files of ``parallel_min_bytes`` or more
        (made from ``worker_settings``); with none, or for smaller files, this process does."""
        self.sessions = sessions
        self.ctx = ctx
        self.chunk_rows = max(1, chunk_rows)
        self.import_dir = import_dir
        self.workers = workers if worker_settings is not None else 0
        self.parallel_min_bytes = parallel_min_bytes
        self.worker_settings = worker_settings
        self._queue: queue.Queue[str] = queue.Queue()
        self._waiting: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the background thread ----------------------------------------------------------------
    def submit(self, job_id: str) -> None:
        """Run the job in the background (after those submitted before it)."""
        with self._lock:
            if job_id in self._waiting:
                return
            self._waiting.add(job_id)
            self._queue.put(job_id)
            if (self._thread is None or not self._thread.is_alive()) and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._work, name="customer-imports", daemon=True
                )
                self._thread.start()

    def resume(self) -> list[str]:
        """Queue the jobs left queued or running by a previous process, oldest first."""
        with self.sessions() as session:
            ids = list(
                session.scalars(
                    select(ImportJob.id)
                    .where(ImportJob.status.in_(ACTIVE))
                    .order_by(ImportJob.created_at, ImportJob.id)
                ).all()
            )
        for job_id in ids:
            self.submit(job_id)
        if ids:
            log.info("resuming %d import jobs", len(ids))
        return ids

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the chunk in hand; an unfinished job stays running, to be resumed."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                job_id = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self.run_job(job_id)
            except Exception:  # the thread serves the next job whatever happened to this one
                log.exception("import job %s stopped", job_id)
            finally:
                with self._lock:
                    self._waiting.discard(job_id)

    # -- one job ------------------------------------------------------------------------------
    def run_job(self, job_id: str, on_progress: ProgressFn | None = None) -> ImportStatus:
        """Run (or resume) a job to its end in this thread; returns its status afterwards.

        A job stopped by ``stop`` is left running, as after a crash: resuming continues it.
        """
        job, status = self._start(job_id)
        if job is None:
            return status
        token = context.correlation_id.set(job.id)  # the job's events share its id
        try:
            # The process froze its startup heap (crmkit.heap.freeze_startup_heap): the full
            # collections a job triggers do not walk the modules and registries again.
            status = self._run(job, on_progress)
        except _JobTaken:
            log.info("import job %s is being run by another runner", job.id)
            status = ImportStatus.running
        except ImportFileError as exc:
            status = self.fail(job.id, str(exc))
        except Exception as exc:
            log.exception("import job %s failed", job.id)
            status = self.fail(
                job.id, f"the import stopped on an internal error ({type(exc).__name__})"
            )
        finally:
            context.correlation_id.reset(token)
        if status in (ImportStatus.finished, ImportStatus.failed):
            self._discard_upload(job.path)
        return status

    def fail(self, job_id: str, reason: str) -> ImportStatus:
        """Mark an unfinished job failed; the rows it committed stay."""
        try:
            with self.sessions() as session:
                session.execute(
                    update(ImportJob)
                    .where(ImportJob.id == job_id, ImportJob.status.in_(ACTIVE))
                    .values(status=ImportStatus.failed.value, error=reason, finished_at=utcnow())
                )
                session.commit()
        except Exception:  # the database may be what failed; the job is resumed on restart
            log.exception("could not mark import job %s failed", job_id)
            return ImportStatus.running
        return ImportStatus.failed

    def _start(self, job_id: str) -> tuple[RunningJob | None, ImportStatus]:
        with self.sessions() as session:
            row = session.get(ImportJob, job_id)
            if row is None:
                log.warning("import job %s does not exist", job_id)
                return None, ImportStatus.failed
            if row.status not in ACTIVE:
                return None, ImportStatus(row.status)
            row.status = ImportStatus.running.value
            job = RunningJob(
                id=row.id,
                kind=ImportKind(row.kind),
                fmt=ImportFormat(row.format),
                path=Path(row.file_path),
                actor=row.created_by,
                scope=scope_caller(row.org_unit, row.created_by),
                rows_done=row.rows_done,
                created=row.rows_created,
                updated=row.rows_updated,
                unchanged=row.rows_unchanged,
                failed=row.rows_failed,
            )
            session.commit()
        return job, ImportStatus.running

    def _run(self, job: RunningJob, on_progress: ProgressFn | None) -> ImportStatus:
        handler = handler_for(job.kind, self.ctx)
        with RowSource(job.path, job.fmt, job.kind) as source:
            # Resuming: the rows of the chunks committed before are read past, not applied.
            rows = itertools.islice(iter(source), job.rows_done, None)
            pool = self._pool(source.bytes_total)
            stream: Iterable[tuple[list[SourceRow], Sequence[Any]]] = (
                pool.prepared(handler, job, chunks(rows, self.chunk_rows))
                if pool is not None
                else ((c, prepare_chunk(handler, job, c)) for c in chunks(rows, self.chunk_rows))
            )
            try:
                done = self._apply_all(job, handler, source, stream, on_progress)
            finally:
                if pool is not None:
                    pool.close()
            if not done:
                return ImportStatus.running
        with self.sessions() as session:
            result = session.execute(
                update(ImportJob)
                .where(ImportJob.id == job.id, ImportJob.rows_done == job.rows_done)
                .values(
                    status=ImportStatus.finished.value,
                    rows_total=job.rows_done,
                    finished_at=utcnow(),
                )
            )
            if cast("CursorResult[Any]", result).rowcount != 1:
                raise _JobTaken(job.id)
            session.commit()
        return ImportStatus.finished

    def _pool(self, file_bytes: int) -> PreparePool | None:
        if self.workers < 1 or self.worker_settings is None:
            return None
        if file_bytes < self.parallel_min_bytes:
            return None
        return PreparePool(self.worker_settings, self.workers)

    def _apply_all(
        self,
        job: RunningJob,
        handler: Handler,
        source: RowSource,
        stream: Iterable[tuple[list[SourceRow], Sequence[Any]]],
        on_progress: ProgressFn | None,
    ) -> bool:
        """Commit the prepared chunks in order; False if stopped before the end."""
        for chunk, prepared in stream:
            if self._stop.is_set():
                return False
            tally = self._commit_chunk(job, handler, prepared)
            job.advance(len(chunk), tally)
            if on_progress is not None:
                on_progress(
                    Progress(
                        job.id,
                        job.rows_done,
                        job.created,
                        job.updated,
                        job.unchanged,
                        job.failed,
                        source.bytes_read,
                        source.bytes_total,
                    )
                )
        return True

    def _commit_chunk(self, job: RunningJob, handler: Handler, prepared: Sequence[Any]) -> Tally:
        """Apply a prepared chunk, its errors and the job's progress in one transaction."""
        for attempt in range(1, _CHUNK_ATTEMPTS + 1):
            with gc_paused(), self.sessions() as session:
                try:
                    tally = handler.apply(session, job, prepared)
                    record_progress(session, job, len(prepared), tally)
                    session.commit()
                    return tally
                except (IntegrityError, StaleDataError):
                    session.rollback()
                    if attempt == _CHUNK_ATTEMPTS:
                        raise
                    log.warning("import job %s: a concurrent writer got in first; again", job.id)
        raise AssertionError("unreachable")  # the last attempt returned or raised

    def _discard_upload(self, path: Path) -> None:
        """Uploaded files are kept until their job ends; a file the CLI named is the user's."""
        try:
            if path.resolve().is_relative_to(self.import_dir.resolve()):
                path.unlink(missing_ok=True)
        except OSError:
            log.warning("could not remove the import file %s", path, exc_info=True)


def record_progress(session: Session, job: RunningJob, rows: int, tally: Tally) -> None:
    """Write the chunk's errors and move the job on, if it still stands where the chunk began."""
    if tally.errors:
        session.execute(insert(ImportRowError), [{"job_id": job.id, **e} for e in tally.errors])
    result = session.execute(
        update(ImportJob)
        .where(ImportJob.id == job.id, ImportJob.rows_done == job.rows_done)
        .values(
            status=ImportStatus.running.value,
            rows_done=job.rows_done + rows,
            rows_created=ImportJob.rows_created + tally.created,
            rows_updated=ImportJob.rows_updated + tally.updated,
            rows_unchanged=ImportJob.rows_unchanged + tally.unchanged,
            rows_failed=ImportJob.rows_failed + tally.failed,
        )
        .execution_options(synchronize_session=False)
    )
    if cast("CursorResult[Any]", result).rowcount != 1:
        raise _JobTaken(job.id)
