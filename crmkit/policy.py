"""Policy is data: versioned JSON files validated by a pydantic model when they are loaded.

Every service keeps its thresholds, scorecards and rules in such files; this reads one and turns
a file that cannot be read or is not valid into one error that names the file and every fault.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def load_policy_file(path: Path, model: type[M], what: str, error: type[Exception]) -> M:
    """The file at ``path`` as a validated ``model``; ``error`` (named ``what``) when it is not."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise error(f"{what} {path.name} cannot be read: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or '(file)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise error(f"{what} {path.name} is refused: {problems}") from exc
