"""Tables: Complaints 投诉 and their steps."""

from __future__ import annotations
