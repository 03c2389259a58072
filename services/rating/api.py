"""Routes of the rating service: parse, call the use case, return the schema."""

from fastapi import APIRouter

from services.rating.api_approvals import router as approvals_router
from services.rating.api_campaigns import router as campaigns_router
from services.rating.api_limits import router as limits_router
from services.rating.api_ratings import router as ratings_router
from services.rating.api_risk import router as risk_router

routers: list[APIRouter] = [
    ratings_router,
    limits_router,
    approvals_router,
    campaigns_router,
    risk_router,
]
