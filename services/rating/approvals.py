"""Approval of credit limits 审议审批: review, decision within the authority matrix, the credit
committee above its line, deadlines 限时办结 and expiry."""

from __future__ import annotations

from crmkit.runtime import ServiceRuntime


def sweep(runtime: ServiceRuntime) -> None:
    """Expire approved limits past their date and report steps past their deadline."""
