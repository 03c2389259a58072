"""Events the customer service consumes (none yet: ownership events arrive with assignment)."""

from crmkit.consumer import HandlerRegistry

registry = HandlerRegistry()
