"""Events the customer service publishes."""

from crmkit.events import EventSpec

STREAM = "customer"

CUSTOMER_CREATED = EventSpec("customer.created", 1, STREAM, "A customer record was created")
CUSTOMER_UPDATED = EventSpec("customer.updated", 1, STREAM, "A customer's master data changed")

PUBLISHED = (CUSTOMER_CREATED, CUSTOMER_UPDATED)
