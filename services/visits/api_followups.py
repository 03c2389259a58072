"""Routes: Next contacts due, overdue lists, daily agendas, day plans and activity."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["follow-ups"])
