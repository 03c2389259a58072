"""Bulk import of customers and of core banking's daily snapshots, from CSV or JSON Lines.

A file is read as a stream, a chunk of rows at a time (``import_chunk_rows``). Each chunk is one
transaction that writes its good rows, their events (outbox), the errors of its refused rows and
the job's progress. A job interrupted by a crash or a shutdown therefore resumes where its last
chunk committed: the rows already counted in ``rows_done`` are skipped.

Rows
    A data row is a CSV record after the header, or a line of a JSON Lines file; blank ones are
    not rows. Rows are numbered from 1 in that order (the CSV header is not counted): that is the
    number the error report gives. An empty CSV cell, or a null in JSON, leaves the stored value
    as it is. A row with a bad field is refused whole, with every field error; the others go in.

Idempotence
    A customer row is matched to its record by its identity (the blind index of its resident id
    number or credit code) or by its core banking customer number, and updates the record only
    where a value differs; otherwise it counts as unchanged and records no event. A row with
    neither key is refused, since importing it twice would create it twice. A snapshot row changes
    its (customer, business date) only when a figure differs. Importing the same file again
    therefore changes nothing.

Speed
    A chunk is validated first, outside the transaction; then one query loads the chunk's existing
    customers by identity and core number. New records are built as plain objects (drafts), not
    mapped instances; they and their change log go in as plain rows, and the events at commit
    (``crmkit.outbox``), each as one ``COPY`` on PostgreSQL (``crmkit.outbox.insert_rows``).
    While a job runs, the objects that existed when it started are kept out of the garbage
    collector's full passes.

Modules
    ``import_jobs`` (who may import, queueing a job, its error report), ``import_source`` (file
    formats and rows), ``import_customer_rows`` and ``import_customers`` (customer rows),
    ``import_snapshots`` (snapshot rows) and ``import_runner`` (chunks, progress, resume). This
    module names what the API, the CLI and the benchmark use.
"""

from __future__ import annotations

from services.customer.import_customers import CustomerRows
from services.customer.import_jobs import (
    ACTIVE,
    EVERYWHERE,
    IMPORTS_PATH,
    create_job,
    error_batches,
    error_page,
    file_sha256,
    import_scope,
    load_job,
    scope_caller,
)
from services.customer.import_runner import ImportRunner, Progress, ProgressFn, record_progress
from services.customer.import_snapshots import SnapshotRows
from services.customer.import_source import (
    CUSTOMER_COLUMNS,
    SNAPSHOT_COLUMNS,
    ImportFileError,
    RowSource,
    SourceRow,
)

__all__ = [
    "ACTIVE",
    "CUSTOMER_COLUMNS",
    "EVERYWHERE",
    "IMPORTS_PATH",
    "SNAPSHOT_COLUMNS",
    "CustomerRows",
    "ImportFileError",
    "ImportRunner",
    "Progress",
    "ProgressFn",
    "RowSource",
    "SnapshotRows",
    "SourceRow",
    "create_job",
    "error_batches",
    "error_page",
    "file_sha256",
    "import_scope",
    "load_job",
    "record_progress",
    "scope_caller",
]
