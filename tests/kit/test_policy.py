"""Policy files: read, validated, and refused with the file and every fault named."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from crmkit.policy import load_policy_file


class Thresholds(BaseModel):
    version: str
    floor: int = Field(ge=0)


class PolicyError(ValueError):
    pass


def test_a_valid_file_becomes_the_model(tmp_path: Path) -> None:
    path = tmp_path / "2026-01-01.json"
    path.write_text('{"version": "2026-01-01", "floor": 100}', encoding="utf-8")
    assert load_policy_file(path, Thresholds, "thresholds", PolicyError) == Thresholds(
        version="2026-01-01", floor=100
    )


def test_every_fault_is_named_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"floor": -1}', encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_policy_file(path, Thresholds, "thresholds", PolicyError)
    text = str(err.value)
    assert text.startswith("thresholds bad.json is refused:")
    assert "version:" in text and "floor:" in text


@pytest.mark.parametrize("content", [None, "{not json"])
def test_an_unreadable_file_is_refused(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "broken.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(PolicyError, match=r"thresholds broken\.json cannot be read"):
        load_policy_file(path, Thresholds, "thresholds", PolicyError)
