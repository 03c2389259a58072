"""Events the notify service publishes (its domain events arrive with its own issue)."""

from crmkit.events import EventSpec

STREAM = "notify"

PUBLISHED: tuple[EventSpec, ...] = ()
