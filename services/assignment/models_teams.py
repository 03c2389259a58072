"""Tables of the teams of the assignment service."""

from __future__ import annotations
