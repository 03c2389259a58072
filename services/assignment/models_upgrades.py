"""Tables of the upgrades of the assignment service."""

from __future__ import annotations
