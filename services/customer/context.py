"""What the customer use cases need beyond the session: events, keys and tier policy."""

from __future__ import annotations

from dataclasses import dataclass

from crmkit.crypto import FieldCipher
from crmkit.outbox import EventRecorder
from services.customer.tier_policy import TierPolicyBook


@dataclass(frozen=True)
class CustomerContext:
    """What the customer use cases need beyond the session: events, keys and policy."""

    recorder: EventRecorder
    cipher: FieldCipher
    policies: TierPolicyBook
