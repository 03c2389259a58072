"""Events the customer service publishes."""

from crmkit.events import EventSpec

STREAM = "customer"

CUSTOMER_CREATED = EventSpec("customer.created", 1, STREAM, "A customer record was created")
CUSTOMER_UPDATED = EventSpec("customer.updated", 1, STREAM, "A customer's master data changed")
CUSTOMER_FINANCIALS_UPDATED = EventSpec(
    "customer.financials_updated",
    1,
    STREAM,
    "Core banking's figures for a customer on a business date were recorded",
)
CUSTOMER_TIER_CHANGED = EventSpec(
    "customer.tier_changed", 1, STREAM, "A customer's tier changed under the tier policy"
)
CUSTOMER_STATUS_CHANGED = EventSpec(
    "customer.status_changed", 1, STREAM, "A customer's status changed"
)
CUSTOMER_MERGED = EventSpec(
    "customer.merged", 1, STREAM, "Two records were found to be one customer and were merged"
)
CUSTOMER_ERASED = EventSpec(
    "customer.erased", 1, STREAM, "A data subject's personal data was erased on request (PIPL)"
)
CUSTOMER_GROUP_CHANGED = EventSpec(
    "customer.group_changed",
    1,
    STREAM,
    "A customer joined a group 集团客户, left it or moved to another (group_member relationships)",
)

PUBLISHED = (
    CUSTOMER_CREATED,
    CUSTOMER_UPDATED,
    CUSTOMER_FINANCIALS_UPDATED,
    CUSTOMER_TIER_CHANGED,
    CUSTOMER_STATUS_CHANGED,
    CUSTOMER_MERGED,
    CUSTOMER_ERASED,
    CUSTOMER_GROUP_CHANGED,
)
