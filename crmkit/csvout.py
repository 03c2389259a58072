"""CSV for people: UTF-8 with a byte-order mark (so spreadsheets read Chinese headers), and
cells that would start a formula prefixed to stay text (CSV injection)."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

BOM = "\ufeff"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
# The OpenAPI description of a report route's CSV answer.
CSV_RESPONSE = {
    "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
    "description": "With format=csv: UTF-8 with a byte-order mark (Excel), English headers with "
    "the Chinese term in parentheses.",
}
# Characters that make a spreadsheet read a cell as a formula; free text is prefixed to stay text.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """One CSV cell: money with 2 places, enums by value, dates in ISO form, lists joined by
    "; ", blank for None, formulas defused."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, list):
        value = "; ".join(csv_cell(v) for v in value)
    elif hasattr(value, "isoformat"):
        return str(value.isoformat())
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
