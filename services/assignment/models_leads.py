"""Tables of the leads of the assignment service."""

from __future__ import annotations
