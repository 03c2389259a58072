"""Optimistic concurrency of updates: the caller names the version it read."""

from __future__ import annotations

from crmkit.errors import Conflict, PreconditionFailed, PreconditionRequired


def check_version(what: str, current: int, body_version: int | None, if_match: str | None) -> None:
    """Refuse an update that does not name ``current``, the version of ``what`` stored.

    ``If-Match`` (an ETag ``"3"``) answers 412 when stale; a ``version`` field 409; neither, 428.
    """
    if if_match is not None:
        expected = if_match.strip().removeprefix("W/").strip('"')
        if expected != str(current):
            raise PreconditionFailed(
                f"{what} is at version {current}, not {expected}", current_version=current
            )
        return
    if body_version is None:
        raise PreconditionRequired(
            "Name the version you read: an If-Match header or a version field.",
            errors=[{"field": "version", "reason": "required for an update"}],
        )
    if body_version != current:
        raise Conflict(
            f"{what} changed since version {body_version}; read it again",
            current_version=current,
        )
