"""Tables of the early warning 风险识别与预警: risk flags and each customer's risk status."""

from __future__ import annotations
