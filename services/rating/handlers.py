"""Events the rating service consumes."""

from crmkit.consumer import HandlerRegistry
from crmkit.replicas import register_customer_replica
from services.rating.models import customer_refs

registry = HandlerRegistry()
register_customer_replica(registry, customer_refs)
