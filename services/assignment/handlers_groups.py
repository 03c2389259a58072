"""Groups 集团客户 from the customer service: ``customer.group_changed`` (version 1).

A member's profile keeps its group as ``group_id``, the customer id of the group's parent (None
once it left). Whether a customer is a group's parent is not stored: it is one while some profile
names it as its group (``customer_profiles.group_id`` is indexed for that count), so a parent
needs no event of its own and stops being one when its last member leaves. The team checks
(the ``group`` case, the same accountable leader) and the assignment rules read both.

A member's events are keyed by its id, so they arrive after its ``customer.created``. An event
for a customer not known here yet fails and is retried, then dead-lettered for a replay, rather
than dropped: its group would otherwise be lost until it changes again.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from crmkit.db import utcnow
from crmkit.events import Envelope
from crmkit.replicas import CUSTOMER_STREAM
from services.assignment.handlers import _profile_of, registry


class GroupMemberNotKnown(LookupError):
    """A group change of a customer this service has no copy of (yet)."""


@registry.on(CUSTOMER_STREAM, "customer.group_changed", versions=(1,))
def group_changed(session: Session, event: Envelope) -> None:
    """Keep the group the customer belongs to now (its parent's id, or None)."""
    data = event.data
    profile = _profile_of(session, data["customer_id"])
    if profile is None:
        raise GroupMemberNotKnown(
            f"customer {data['customer_id']} is not known to the assignment service"
        )
    profile.group_id = data["group_id"]
    profile.updated_at = utcnow()
