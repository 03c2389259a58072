"""Worker processes that prepare import chunks, so that a large import uses more than one core.

Preparing a chunk is the pure part of importing it (validation, check digits, encryption and
blind indexes, the new records and their events) and most of its cost; applying it (matching,
writing, committing) stays in the job's process, one chunk after the other in file order. The
workers run ahead of the chunk being applied by a few chunks.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from crmkit import context
from crmkit.heap import freeze_startup_heap, gc_paused
from services.customer.import_customers import CustomerRows
from services.customer.import_jobs import RunningJob
from services.customer.import_snapshots import SnapshotRows
from services.customer.import_source import SourceRow
from services.customer.schemas_imports import ImportKind
from services.customer.settings import CustomerSettings

log = logging.getLogger(__name__)

Handler = CustomerRows | SnapshotRows
Prepared = tuple[list[SourceRow], list[Any]]

# The handlers of a worker process, made once by its initializer.
_handlers: dict[ImportKind, Handler] = {}


def handler_for(kind: ImportKind, ctx: Any) -> Handler:
    return CustomerRows(ctx) if kind is ImportKind.customers else SnapshotRows(ctx)


def _start_worker(settings: CustomerSettings) -> None:
    # Imported here: the app module imports this one (through the import API).
    from services.customer.app import build_context, build_runtime

    ctx = build_context(build_runtime(settings))
    for kind in ImportKind:
        _handlers[kind] = handler_for(kind, ctx)
    freeze_startup_heap()


def prepare_chunk(handler: Handler, job: RunningJob, chunk: list[SourceRow]) -> list[Any]:
    """A chunk prepared (here or in a worker), the collector paused meanwhile (see
    ``gc_paused``)."""
    with gc_paused():
        return list(handler.prepare(job, chunk))


def _prepare(kind: ImportKind, job: RunningJob, chunk: list[SourceRow]) -> list[Any]:
    token = context.correlation_id.set(job.id)  # the job's events share its id
    try:
        return prepare_chunk(_handlers[kind], job, chunk)
    finally:
        context.correlation_id.reset(token)


class PreparePool:
    """Prepares chunks in worker processes, handing them back in order."""

    def __init__(self, settings: CustomerSettings, workers: int) -> None:
        self.workers = max(1, workers)
        # spawn, not fork: the service process has threads (the relay, the consumer, uvicorn).
        self._executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(settings,),
        )

    def prepared(
        self, handler: Handler, job: RunningJob, chunks: Iterable[list[SourceRow]]
    ) -> Iterator[Prepared]:
        """Each chunk with its prepared rows, in order; a few chunks are prepared ahead.

        If the workers die (a process killed, out of memory), the rest is prepared here: the
        job goes on, slower.
        """
        window: deque[tuple[list[SourceRow], Future[list[Any]] | None]] = deque()
        source = iter(chunks)
        broken = False
        while True:
            while not broken and len(window) < 2 * self.workers:
                chunk = next(source, None)
                if chunk is None:
                    break
                try:
                    window.append((chunk, self._executor.submit(_prepare, job.kind, job, chunk)))
                except BrokenProcessPool:
                    broken = True
                    window.append((chunk, None))
            if not window:
                chunk = next(source, None)
                if chunk is None:
                    return
                window.append((chunk, None))
            chunk, future = window.popleft()
            rows: list[Any] | None = None
            if future is not None:
                try:
                    rows = future.result()
                except BrokenProcessPool:
                    if not broken:
                        log.warning(
                            "import job %s: the prepare workers died; going on here", job.id
                        )
                    broken = True
            if rows is None:
                rows = prepare_chunk(handler, job, chunk)
            yield chunk, rows

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
