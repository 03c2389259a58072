"""Routes of the visits service: parse, call the use case, return the schema."""

from fastapi import APIRouter

from services.visits.api_complaints import router as complaints_router
from services.visits.api_followups import router as followups_router
from services.visits.api_marketing import router as marketing_router
from services.visits.api_surveys import router as surveys_router
from services.visits.api_visits import router as visits_router

routers: list[APIRouter] = [
    visits_router,
    followups_router,
    complaints_router,
    surveys_router,
    marketing_router,
]
