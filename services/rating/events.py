"""Events the rating service publishes (its domain events arrive with its own issue)."""

from crmkit.events import EventSpec

STREAM = "rating"

PUBLISHED: tuple[EventSpec, ...] = ()
