"""Reports as CSV: UTF-8 with a byte-order mark (spreadsheets then read the Chinese headers), and
cells that would start a formula escaped."""

from __future__ import annotations

import csv
import io

from crmkit.csvout import BOM, csv_cell
from services.customer.schemas import Segment
from services.customer.schemas_reports import (
    FIGURE_COLUMNS,
    TARGET_COLUMNS,
    Figures,
    SegmentationReport,
)

TOTAL = "total"


def _figure_cells(figures: Figures) -> list[str]:
    cells = [csv_cell(getattr(figures, name)) for name, _ in FIGURE_COLUMNS]
    if figures.target is not None:
        cells += [csv_cell(getattr(figures.target, name)) for name, _ in TARGET_COLUMNS]
    return cells


def segmentation_csv(report: SegmentationReport) -> str:
    """The statistics as CSV for Excel: a row per group, class and tier, then the totals 合计.

    Tier rows leave ``invalid_customers`` blank: invalid customers have no tier cell. Total rows
    carry the class's, group's or overall invalid count.
    """
    target = report.header.segment is Segment.target
    header = [
        "group (组别)",
        "customer_class (客户类别)",
        "value_tier (客户价值)",
        *(label for _, label in FIGURE_COLUMNS),
        "invalid_customers (无效客户)",
        *((label for _, label in TARGET_COLUMNS) if target else ()),
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)

    def row(group: str, cls: str, tier: str, figures: Figures, invalid: int | None) -> None:
        cells = _figure_cells(figures)
        width = len(FIGURE_COLUMNS)
        writer.writerow(
            [
                csv_cell(group),
                csv_cell(cls),
                csv_cell(tier),
                *cells[:width],
                csv_cell(invalid),
                *cells[width:],
            ]
        )

    for block in report.groups:
        for cls in block.classes:
            for cell in cls.tiers:
                row(block.group, cls.customer_class, cell.value_tier, cell, None)
            row(block.group, cls.customer_class, TOTAL, cls.total, cls.invalid_count)
        row(block.group, TOTAL, TOTAL, block.total, block.invalid_count)
    row(TOTAL, TOTAL, TOTAL, report.total, report.invalid_count)
    return BOM + buffer.getvalue()
