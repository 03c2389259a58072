"""Tables of the rating database."""

from crmkit.db import KitTables, ServiceBase, new_metadata
from crmkit.replicas import define_customer_refs


class Base(ServiceBase):
    __abstract__ = True
    metadata = new_metadata()


kit = KitTables.define(Base.metadata)
# This service's copy of the customers it serves, kept from customer events.
customer_refs = define_customer_refs(Base.metadata)
