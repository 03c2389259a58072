"""Routes of the customer service: parse, authorize, call the use case, return the schema."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from crmkit.auth import CurrentCaller
from crmkit.http import RuntimeDep, SessionDep
from crmkit.schemas import Page
from services.customer import service
from services.customer.schemas import CustomerCreate, CustomerOut, CustomerPatch

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=CustomerOut, summary="Create a customer"
)
def create_customer(
    body: CustomerCreate, caller: CurrentCaller, session: SessionDep, runtime: RuntimeDep
) -> CustomerOut:
    customer = service.create_customer(session, runtime.recorder, body, caller)
    return CustomerOut.model_validate(customer)


@router.get("", response_model=Page[CustomerOut], summary="List customers in the caller's scope")
def list_customers(
    caller: CurrentCaller,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[CustomerOut]:
    rows, total = service.list_customers(session, caller, limit, offset)
    return Page[CustomerOut](
        items=[CustomerOut.model_validate(c) for c in rows], total=total, limit=limit, offset=offset
    )


@router.get("/{customer_id}", response_model=CustomerOut, summary="Read one customer")
def get_customer(customer_id: str, caller: CurrentCaller, session: SessionDep) -> CustomerOut:
    return CustomerOut.model_validate(service.get_customer(session, customer_id, caller))


@router.patch("/{customer_id}", response_model=CustomerOut, summary="Change master data")
def update_customer(
    customer_id: str,
    body: CustomerPatch,
    caller: CurrentCaller,
    session: SessionDep,
    runtime: RuntimeDep,
) -> CustomerOut:
    customer = service.update_customer(session, runtime.recorder, customer_id, body, caller)
    return CustomerOut.model_validate(customer)


routers = [router]
