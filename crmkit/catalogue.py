"""Generates the event catalogue (``docs/events.md``) from the JSON Schemas in ``contracts/``.

``make catalogue`` writes it; a test fails when the committed catalogue is out of date.
"""

from __future__ import annotations

import json
from typing import Any

from crmkit.events import CONTRACTS_DIR, all_schemas

HEADER = """# Event catalogue

Generated from `contracts/events/*.json` by `make catalogue`; do not edit by hand.

Every event travels in the same envelope (`crmkit.events.Envelope`):

| field | meaning |
|---|---|
| `id` | UUID of the event; consumers dedupe on it (inbox) |
| `type` | event type, e.g. `customer.created` |
| `version` | version of the payload schema; changes within a version are additive only |
| `source` | publishing service |
| `occurred_at` | when it happened, UTC, ISO 8601 |
| `key` | partition key: the customer id where there is one (one customer's events stay in order) |
| `correlation_id` | the request or event chain it belongs to |
| `causation_id` | the id of the event whose handling caused it, if any |
| `actor` | staff id or client that caused it |
| `data` | the payload described below |

Topics: `<namespace>.<producer>` (namespace `crm` by default). Dead letters go to
`<namespace>.dlq.<consumer service>` as a record `{consumer, reason, attempts, source_topic,
partition, offset, event_id, event_type, payload}` (the original envelope as text), and are kept
in the consumer's database for listing and replay (`/api/v1/admin/<service>/dead-letters`).
"""


def _type_of(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return " \\| ".join(
            f"`{v}`" if isinstance(v, str) else f"`{json.dumps(v)}`" for v in prop["enum"]
        )
    kind = prop.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array":
        return f"array of {_type_of(prop.get('items', {}))}"
    fmt = prop.get("format")
    return f"{kind} ({fmt})" if fmt else str(kind)


SERVICES = ("customer", "rating", "assignment", "visits", "notify")


def consumers_by_type() -> dict[str, list[str]]:
    """Which services consume each event type, read from their handler registries."""
    from importlib import import_module

    found: dict[str, list[str]] = {}
    for service in SERVICES:
        registry = import_module(f"services.{service}.handlers").registry
        for event_type in registry.subscriptions:
            found.setdefault(event_type, []).append(service)
    return found


def render() -> str:
    """The catalogue as Markdown."""
    consumers = consumers_by_type()
    parts = [HEADER]
    for (event_type, version), schema in sorted(all_schemas(CONTRACTS_DIR).items()):
        required = set(schema.get("required", []))
        parts.append(f"\n## `{event_type}` v{version}\n")
        parts.append(f"{schema.get('description', '')}\n")
        readers = ", ".join(f"`{c}`" for c in consumers.get(event_type, [])) or "none yet"
        parts.append(
            f"Producer: `{schema.get('x-producer', '?')}` · topic "
            f"`crm.{schema.get('x-producer', '?')}` · consumers: {readers}\n"
        )
        parts.append("| field | type | required | description |\n|---|---|---|---|")
        for name, prop in schema.get("properties", {}).items():
            parts.append(
                f"| `{name}` | {_type_of(prop)} | {'yes' if name in required else 'no'} | "
                f"{prop.get('description', '')} |"
            )
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(render(), end="")
