"""Routes: Rating campaigns 集中评级授信 and their progress."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["rating campaigns"])
