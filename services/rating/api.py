"""Routes of the rating service (its domain routes arrive with its own issue)."""

from fastapi import APIRouter

routers: list[APIRouter] = []
