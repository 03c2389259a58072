"""Events the assignment service publishes (its domain events arrive with its own issue)."""

from crmkit.events import EventSpec

STREAM = "assignment"

PUBLISHED: tuple[EventSpec, ...] = ()
