"""Wire contract of bulk imports: the job, its progress and its error report."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class ImportKind(StrEnum):
    """What a file holds: customer master data or core banking's daily figures."""

    customers = "customers"
    snapshots = "snapshots"


class ImportFormat(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


class ImportStatus(StrEnum):
    queued = "queued"
    running = "running"
    finished = "finished"
    failed = "failed"


class ImportErrorOut(BaseModel):
    """One problem of one data row (a row with several bad fields has several entries)."""

    row: int = Field(description="1-based number of the data row; a CSV header is not counted")
    field: str = Field(description="The field at fault, or 'row' when the row as a whole is")
    reason: str


class ImportJobOut(BaseModel):
    """An import job: its status, counts and the first page of its error report."""

    id: str
    kind: ImportKind
    format: ImportFormat
    status: ImportStatus
    file_sha256: str
    rows_total: int | None = Field(description="Data rows in the file; known once finished")
    rows_done: int = Field(description="Data rows processed so far (committed)")
    created: int
    updated: int
    unchanged: int
    failed: int = Field(description="Rows refused; the error report says why")
    created_by: str
    created_at: datetime = Field(description="When the file was received and the job queued")
    finished_at: datetime | None
    error: str | None = Field(description="Why the job as a whole failed, if it did")
    errors: list[ImportErrorOut] = Field(description="The first entries of the error report")
    errors_total: int = Field(description="Entries in the whole error report")
    links: dict[str, str]
