"""Routes: Credit-limit calculation and proposals 授信额度测算."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/api/v1", tags=["credit limits"])
