"""Tables: Visit records 拜访记录, pre-visit plans, service plans, enquiries and appointments."""

from __future__ import annotations
