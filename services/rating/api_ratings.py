"""Routes: Scorecards and assessments 信用等级评估."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["ratings"])
