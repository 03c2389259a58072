"""Tables of the claims of the assignment service."""

from __future__ import annotations
