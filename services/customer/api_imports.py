"""Routes of bulk imports: upload a file as a job, follow its progress, read its error report.

The file is the raw request body (``text/csv`` or ``application/x-ndjson``), streamed to disk
under ``import_dir`` while its SHA-256 is computed; it is never held in memory. The job runs in
the service's import runner (a background thread), which the application starts with this
module's :func:`install_import_runner` and which resumes unfinished jobs at startup.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, FastAPI, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from crmkit.auth import CurrentCaller
from crmkit.csvout import CSV_MEDIA_TYPE
from crmkit.errors import DomainError, ValidationFailed
from crmkit.http import SessionDep
from crmkit.runtime import ServiceRuntime
from crmkit.schemas import Page
from services.customer import imports
from services.customer.context import CustomerContext
from services.customer.imports import IMPORTS_PATH, ImportRunner
from services.customer.models import ImportJob
from services.customer.schemas_imports import (
    ImportErrorOut,
    ImportFormat,
    ImportJobOut,
    ImportKind,
    ImportStatus,
)
from services.customer.settings import CustomerSettings

log = logging.getLogger(__name__)

router = APIRouter(prefix=IMPORTS_PATH, tags=["imports"])

FIRST_ERRORS = 20
_MEDIA_TYPES = {
    "text/csv": ImportFormat.csv,
    "application/csv": ImportFormat.csv,
    "application/x-ndjson": ImportFormat.jsonl,
    "application/jsonl": ImportFormat.jsonl,
    "application/x-jsonlines": ImportFormat.jsonl,
    "application/jsonlines": ImportFormat.jsonl,
}
# Cells a spreadsheet would run as a formula; the error report quotes them (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class UnsupportedMediaType(DomainError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


def install_import_runner(
    app: FastAPI, runtime: ServiceRuntime, ctx: CustomerContext
) -> ImportRunner:
    """Give the app an import runner that resumes unfinished jobs at startup, after the
    migrations of the service's lifespan, and stops (between chunks) at shutdown."""
    settings = runtime.settings
    assert isinstance(settings, CustomerSettings)

    def sessions() -> Session:
        # The engine is built on first use, as elsewhere: creating the app touches no database.
        return runtime.session_factory()

    runner = ImportRunner(
        sessions,
        ctx,
        chunk_rows=settings.import_chunk_rows,
        import_dir=settings.import_dir,
        workers=settings.import_workers,
        parallel_min_bytes=settings.import_parallel_min_bytes,
        worker_settings=settings,
    )
    app.state.import_runner = runner
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: Any) -> AsyncIterator[Any]:
        async with inner(app_) as state:
            try:
                await run_in_threadpool(runner.resume)
            except Exception:  # the service still serves; the jobs resume at the next start
                log.exception("could not resume the unfinished import jobs")
            try:
                yield state
            finally:
                await run_in_threadpool(runner.stop)

    app.router.lifespan_context = lifespan
    return runner


def _runner(request: Request) -> ImportRunner:
    runner: ImportRunner = request.app.state.import_runner
    return runner


def _format(query: ImportFormat | None, content_type: str | None) -> ImportFormat:
    if query is not None:
        return query
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type in _MEDIA_TYPES:
        return _MEDIA_TYPES[media_type]
    raise UnsupportedMediaType(
        f"send the file as text/csv or application/x-ndjson, or name its format "
        f"(format=csv or format=jsonl); got {media_type or 'no content type'}"
    )


async def _receive(request: Request, directory: Path, name: str) -> tuple[Path, str, int]:
    """Stream the body to ``directory/name``; returns the path, its SHA-256 and its size."""
    await anyio.Path(directory).mkdir(parents=True, exist_ok=True)
    final = directory / name
    partial = directory / f"{name}.part"
    digest = hashlib.sha256()
    size = 0
    try:
        async with await anyio.open_file(partial, "wb") as out:
            async for block in request.stream():
                if block:
                    digest.update(block)
                    size += len(block)
                    await out.write(block)
        await anyio.Path(partial).rename(final)
    except BaseException:
        # A client that went away, or a full disk: nothing half-received is kept.
        await anyio.Path(partial).unlink(missing_ok=True)
        raise
    return final, digest.hexdigest(), size


def job_out(session: Session, job: ImportJob) -> ImportJobOut:
    """The job as callers see it, with the first entries of its error report."""
    errors, total = imports.error_page(session, job.id, FIRST_ERRORS, 0)
    url = f"{IMPORTS_PATH}/{job.id}"
    finished = job.status == ImportStatus.finished.value
    return ImportJobOut(
        id=job.id,
        kind=ImportKind(job.kind),
        format=ImportFormat(job.format),
        status=ImportStatus(job.status),
        file_sha256=job.file_sha256,
        rows_total=job.rows_total if finished else None,
        rows_done=job.rows_done,
        created=job.rows_created,
        updated=job.rows_updated,
        unchanged=job.rows_unchanged,
        failed=job.rows_failed,
        created_by=job.created_by,
        created_at=job.created_at,
        finished_at=job.finished_at,
        error=job.error,
        errors=[ImportErrorOut(row=e.row, field=e.field, reason=e.reason) for e in errors],
        errors_total=total,
        links={
            "self": url,
            "errors": f"{url}/errors",
            "errors_csv": f"{url}/errors?format=csv",
        },
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ImportJobOut,
    summary="Import customers or daily snapshots from a CSV or JSON Lines file (a job)",
    description=(
        "The request body is the file itself. Rows are numbered from 1, the CSV header not "
        "counted; good rows go in while bad ones are reported. Importing a file again changes "
        "nothing that has not changed. Customers: administrators and branch presidents (rows "
        "in their org subtree). Snapshots: core banking's feed and operations staff too."
    ),
    responses={
        403: {"description": "The caller may not import this kind"},
        415: {"description": "Neither a format nor a known content type was given"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def start_import(
    request: Request,
    response: Response,
    caller: CurrentCaller,
    kind: ImportKind,
    fmt: Annotated[
        ImportFormat | None,
        Query(alias="format", description="Inferred from the Content-Type when not given"),
    ] = None,
) -> ImportJobOut:
    # Refused before a byte of the body is stored.
    scope = imports.import_scope(caller, kind)
    file_format = _format(fmt, request.headers.get("content-type"))
    runner = _runner(request)
    job_id = str(uuid.uuid4())
    path, sha256, size = await _receive(request, runner.import_dir, f"{job_id}.{file_format}")
    if size == 0:
        await anyio.Path(path).unlink(missing_ok=True)
        raise ValidationFailed(
            "The file is empty.", errors=[{"field": "body", "reason": "no data was sent"}]
        )

    def create() -> ImportJobOut:
        sessions: Callable[[], Session] = request.app.state.runtime.session_factory
        with sessions() as session:
            job = imports.create_job(
                session,
                job_id=job_id,
                kind=kind,
                fmt=file_format,
                path=path,
                sha256=sha256,
                scope=scope,
                actor=caller.subject,
            )
            return job_out(session, job)

    out = await run_in_threadpool(create)
    runner.submit(job_id)
    response.headers["Location"] = out.links["self"]
    return out


@router.get("/{job_id}", response_model=ImportJobOut, summary="An import job's progress")
def get_import(job_id: str, caller: CurrentCaller, session: SessionDep) -> ImportJobOut:
    return job_out(session, imports.load_job(session, caller, job_id))


@router.get(
    "/{job_id}/errors",
    response_model=Page[ImportErrorOut],
    summary="An import job's error report (row, field, reason); format=csv for all of it",
    responses={200: {"content": {"text/csv": {}}}},
)
def get_import_errors(
    job_id: str,
    caller: CurrentCaller,
    session: SessionDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    fmt: Annotated[
        Literal["json", "csv"],
        Query(alias="format", description="csv: the whole report as a CSV file"),
    ] = "json",
) -> Response | Page[ImportErrorOut]:
    job = imports.load_job(session, caller, job_id)
    if fmt == "csv":
        sessions: Callable[[], Session] = request.app.state.runtime.session_factory
        return StreamingResponse(
            _error_csv(sessions, job.id),
            media_type=CSV_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="import-{job.id}-errors.csv"'},
        )
    rows, total = imports.error_page(session, job.id, limit, offset)
    return Page[ImportErrorOut](
        items=[ImportErrorOut(row=e.row, field=e.field, reason=e.reason) for e in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


def _error_csv(sessions: Callable[[], Session], job_id: str) -> Iterator[str]:
    """The whole report as CSV, a batch of entries at a time (its own session: the response
    is streamed after the request's session is gone)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", "field", "reason"])
    yield buffer.getvalue()
    with sessions() as session:
        for batch in imports.error_batches(session, job_id):
            buffer.seek(0)
            buffer.truncate()
            for entry in batch:
                writer.writerow([entry.row, _cell(entry.field), _cell(entry.reason)])
            yield buffer.getvalue()


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text
