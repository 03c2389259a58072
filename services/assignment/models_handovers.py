"""Tables of the handovers of the assignment service."""

from __future__ import annotations
