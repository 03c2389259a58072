"""Events the assignment service publishes: who owns and who serves each customer.

The customer service keeps its ownership read model from these events.
"""

from crmkit.events import EventSpec

STREAM = "assignment"

OWNERSHIP_ASSIGNED = EventSpec(
    "ownership.assigned",
    1,
    STREAM,
    "A staff member became a customer's owner or a member of the team serving it",
)
OWNERSHIP_TRANSFERRED = EventSpec(
    "ownership.transferred", 1, STREAM, "The customer's owner changed (handover)"
)
OWNERSHIP_RELEASED = EventSpec(
    "ownership.released", 1, STREAM, "A staff member no longer owns or serves the customer"
)

PUBLISHED: tuple[EventSpec, ...] = (OWNERSHIP_ASSIGNED, OWNERSHIP_TRANSFERRED, OWNERSHIP_RELEASED)
