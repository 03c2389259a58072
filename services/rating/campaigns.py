"""Rating campaigns 集中评级授信: score and propose limits for a scope of customers in
batches, in the seed's three phases, resumable after a restart."""

from __future__ import annotations

from crmkit.runtime import ServiceRuntime


def run_pending(runtime: ServiceRuntime) -> None:
    """Run (or resume) the batch of every campaign that has work left."""
