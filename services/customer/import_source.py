"""Reading import files: CSV or JSON Lines, as a stream of numbered data rows."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

from services.customer.schemas import CustomerCreate, SnapshotIn
from services.customer.schemas_imports import ImportFormat, ImportKind

CHILD_LISTS = ("contacts", "collaterals", "guarantors")
_NESTED = frozenset({"addresses", "profile", *CHILD_LISTS})
CUSTOMER_COLUMNS = (frozenset(CustomerCreate.model_fields) - _NESTED) | {"address"}
SNAPSHOT_KEYS = ("customer_id", "core_customer_no")
SNAPSHOT_COLUMNS = frozenset(SnapshotIn.model_fields) | set(SNAPSHOT_KEYS)


# -- reading files ------------------------------------------------------------------------------
class ImportFileError(ValueError):
    """The file as a whole cannot be read (unknown columns, not UTF-8, gone): the job fails."""


@dataclass(frozen=True)
class SourceRow:
    """One data row as read: its number and values, or why it could not be read."""

    number: int
    values: dict[str, Any]
    problem: str | None = None


class RowSource:
    """The data rows of an import file, read as a stream: memory does not grow with the file."""

    def __init__(self, path: Path, fmt: ImportFormat, kind: ImportKind) -> None:
        self.fmt = fmt
        self.columns = CUSTOMER_COLUMNS if kind is ImportKind.customers else SNAPSHOT_COLUMNS
        try:
            self._raw = path.open("rb")
        except OSError as exc:
            raise ImportFileError(f"the import file cannot be read: {exc.strerror}") from exc
        self.bytes_total = os.fstat(self._raw.fileno()).st_size
        # utf-8-sig: spreadsheet programs put a byte order mark in front of CSV files.
        self._text = io.TextIOWrapper(self._raw, encoding="utf-8-sig", newline="")

    @property
    def bytes_read(self) -> int:
        """How far the file has been read (ahead of the rows handed out by a buffer at most)."""
        return self._raw.tell()

    def __enter__(self) -> RowSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._text.close()

    def __iter__(self) -> Iterator[SourceRow]:
        rows = self._csv_rows() if self.fmt is ImportFormat.csv else self._jsonl_rows()
        try:
            yield from rows
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"the file is not UTF-8 text (byte {exc.start} of a block near byte "
                f"{self.bytes_read}); save it as UTF-8"
            ) from exc

    def _csv_rows(self) -> Iterator[SourceRow]:
        reader = csv.reader(self._text)
        header = next(reader, None)
        if header is None:
            return
        names = [name.strip() for name in header]
        self._check_header(names)
        number = 0
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            number += 1
            if len(record) > len(names):
                yield SourceRow(
                    number,
                    {},
                    f"the row has {len(record)} values but the header {len(names)} columns",
                )
                continue
            values = {
                name: cell.strip()
                for name, cell in zip(names, record, strict=False)
                if name and cell.strip()
            }
            yield SourceRow(number, values)

    def _check_header(self, names: list[str]) -> None:
        unknown = sorted({n for n in names if n} - self.columns)
        if unknown:
            raise ImportFileError(
                f"unknown columns: {', '.join(unknown)}; the columns are: "
                f"{', '.join(sorted(self.columns))}"
            )
        repeated = sorted({n for n in names if n and names.count(n) > 1})
        if repeated:
            raise ImportFileError(f"repeated columns: {', '.join(repeated)}")

    def _jsonl_rows(self) -> Iterator[SourceRow]:
        number = 0
        for line in self._text:
            if not line.strip():
                continue
            number += 1
            try:
                # Decimal: amounts are exact, never floats.
                value = json.loads(line, parse_float=Decimal)
            except json.JSONDecodeError as exc:
                yield SourceRow(number, {}, f"not valid JSON: {exc.msg} at column {exc.colno}")
                continue
            if not isinstance(value, dict):
                yield SourceRow(number, {}, "a JSON Lines row must be an object")
                continue
            yield SourceRow(number, {k: v for k, v in value.items() if v is not None})


def chunks(rows: Iterable[SourceRow], size: int) -> Iterator[list[SourceRow]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
