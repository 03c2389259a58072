"""Events the visits service publishes (its domain events arrive with its own issue)."""

from crmkit.events import EventSpec

STREAM = "visits"

PUBLISHED: tuple[EventSpec, ...] = ()
