"""Events the assignment service publishes: who owns and who serves each customer, the staff,
handovers, and the target-list entries (leads) as they are distributed, move and are won.

The customer service keeps its ownership read model from the ownership events. Lead events are
keyed by the entry's id, so one entry's events stay in order.
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

HANDOVER_STARTED = EventSpec(
    "handover.started", 1, STREAM, "A staff member's book was frozen for handover (离岗交接)"
)
HANDOVER_COMPLETED = EventSpec(
    "handover.completed", 1, STREAM, "Every customer of a frozen book moved to its new owner"
)
STAFF_CHANGED = EventSpec(
    "staff.changed",
    1,
    STREAM,
    "A staff member was added or changed: roles, line, grade, unit, capacity, status",
)

LEAD_DISTRIBUTED = EventSpec(
    "lead.distributed",
    1,
    STREAM,
    "A target-list entry was given its marketer: distributed, or awarded to a bidder (名单制)",
)
LEAD_STAGE_CHANGED = EventSpec(
    "lead.stage_changed", 1, STREAM, "A target-list entry moved along the funnel, or was lost"
)
LEAD_WON = EventSpec(
    "lead.won",
    1,
    STREAM,
    "A target-list entry was won and became a customer (its marketer owns it if nobody did)",
)

PUBLISHED: tuple[EventSpec, ...] = (
    OWNERSHIP_ASSIGNED,
    OWNERSHIP_TRANSFERRED,
    OWNERSHIP_RELEASED,
    HANDOVER_STARTED,
    HANDOVER_COMPLETED,
    STAFF_CHANGED,
    LEAD_DISTRIBUTED,
    LEAD_STAGE_CHANGED,
    LEAD_WON,
)
