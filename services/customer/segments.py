"""Market segments 市场细分 of the three business lines, and GB/T 4754-2017 codes mapped onto the
corporate market's fifteen industry groups.

The segments are the bank's own (seed 000): the agricultural market by area, the corporate market
by the industry groups the seed lists word for word, the personal market by workplace. They live in
``policy/industries.json``, validated when first read; imports that carry a GB/T 4754 section or
division code are placed in a group through :func:`industry_group_for_gbt4754`.
"""

from __future__ import annotations

import re
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crmkit.policy import load_policy_file
from services.customer.schemas import BusinessLine

CATALOG_PATH = Path(__file__).parent / "policy" / "industries.json"
GBT4754_SECTIONS = tuple("ABCDEFGHIJKLMNOPQRST")
GBT4754_DIVISIONS = (1, 97)
DivisionCode = Annotated[str, Field(pattern=r"^[0-9]{2}$")]
_CODE = re.compile(r"^(?P<section>[A-Z])?(?P<digits>[0-9]{2,4})?$")


class MarketCatalogError(ValueError):
    """The market-segment file is unreadable or inconsistent."""


class UnknownBusinessLine(ValueError):
    """A business line that has no market."""


class UnknownIndustryCode(ValueError):
    """A code that is no GB/T 4754-2017 section letter or division."""


class _CatalogModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MarketSegment(_CatalogModel):
    """One sub-market 子市场 of a business line's market."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    name_zh: str


class Market(_CatalogModel):
    """A business line's target market and its sub-markets, in the seed's order."""

    name: str
    name_zh: str
    basis: str
    seed_text: str
    segments: tuple[MarketSegment, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _codes_unique(self) -> Market:
        codes = [segment.code for segment in self.segments]
        if len(set(codes)) != len(codes):
            raise ValueError(f"segment codes of the {self.name} must be unique: {codes}")
        return self


class Gbt4754Section(_CatalogModel):
    """A GB/T 4754-2017 section 门类, its division range 大类 and the group it maps onto."""

    title_zh: str
    divisions: tuple[DivisionCode, DivisionCode]
    group: str

    @model_validator(mode="after")
    def _range_ordered(self) -> Gbt4754Section:
        if self.first_division > self.last_division:
            raise ValueError(f"division range {'-'.join(self.divisions)} is reversed")
        return self

    @property
    def first_division(self) -> int:
        """The first division of the section's range."""
        return int(self.divisions[0])

    @property
    def last_division(self) -> int:
        """The last division of the section's range."""
        return int(self.divisions[1])


class Gbt4754Mapping(_CatalogModel):
    """Every GB/T 4754-2017 section onto a corporate group; the choices the seed leaves open."""

    source: str
    sections: dict[str, Gbt4754Section]
    choices: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sections_cover_the_standard(self) -> Gbt4754Mapping:
        if tuple(sorted(self.sections)) != GBT4754_SECTIONS:
            raise ValueError(f"sections must be exactly {', '.join(GBT4754_SECTIONS)}")
        # The sections' division ranges must follow one another from 01 to 97 with no hole or
        # overlap, so that every division code finds exactly one section.
        ranges = [
            (self.sections[letter].first_division, self.sections[letter].last_division)
            for letter in GBT4754_SECTIONS
        ]
        if ranges[0][0] != GBT4754_DIVISIONS[0] or ranges[-1][1] != GBT4754_DIVISIONS[1]:
            raise ValueError("division ranges must run from 01 to 97")
        for (_, last), (first, _) in pairwise(ranges):
            if first != last + 1:
                raise ValueError(f"division ranges must be contiguous: {last:02d} then {first:02d}")
        return self

    def section_of_division(self, division: int) -> str | None:
        """The section letter whose division range holds ``division``, or None."""
        for letter, section in self.sections.items():
            if section.first_division <= division <= section.last_division:
                return letter
        return None


class MarketCatalog(_CatalogModel):
    """The market segments of every business line and the GB/T 4754 mapping."""

    version: str
    source: str
    note: str
    markets: dict[BusinessLine, Market]
    gbt4754_2017: Gbt4754Mapping

    @model_validator(mode="after")
    def _consistent(self) -> MarketCatalog:
        missing = sorted(set(BusinessLine) - set(self.markets))
        if missing:
            raise ValueError(f"markets missing for business lines: {', '.join(missing)}")
        groups = {segment.code for segment in self.markets[BusinessLine.corporate].segments}
        for letter, section in self.gbt4754_2017.sections.items():
            if section.group not in groups:
                raise ValueError(
                    f"GB/T 4754 section {letter} maps onto {section.group!r}, "
                    "which is no corporate industry group"
                )
        return self


def load_market_catalog(path: Path | None = None) -> MarketCatalog:
    """Read and validate a market-segment file (default: the service's own)."""
    source = path if path is not None else CATALOG_PATH
    return load_policy_file(source, MarketCatalog, "market segments", MarketCatalogError)


@cache
def _catalog() -> MarketCatalog:
    return load_market_catalog()


def market_segments_for(business_line: str) -> list[MarketSegment]:
    """The sub-markets of ``business_line`` (agricultural, corporate, personal), in seed order."""
    try:
        line = BusinessLine(business_line)
    except ValueError:
        known = ", ".join(BusinessLine)
        raise UnknownBusinessLine(
            f"unknown business line {business_line!r}: expected one of {known}"
        ) from None
    return list(_catalog().markets[line].segments)


def is_valid_market_segment(business_line: str, code: str) -> bool:
    """Whether ``code`` is a sub-market of ``business_line``; False for unknown lines too."""
    try:
        segments = market_segments_for(business_line)
    except UnknownBusinessLine:
        return False
    return any(segment.code == code for segment in segments)


def industry_group_for_gbt4754(code: str) -> str:
    """The corporate industry group for a GB/T 4754-2017 code.

    Accepts a section letter (``"C"``), a division (``"13"``), or a longer group or class code
    with or without its letter (``"1311"``, ``"C1311"``), which is placed by its division.
    """
    mapping = _catalog().gbt4754_2017
    text = code.strip().upper()
    match = _CODE.match(text)
    if not text or match is None:
        raise UnknownIndustryCode(
            f"unknown GB/T 4754-2017 industry code {code!r}: expected a section letter A-T "
            "or a division 01-97 (for example 'C' or '13')"
        )
    letter, digits = match.group("section"), match.group("digits")
    if letter is not None and letter not in mapping.sections:
        raise UnknownIndustryCode(
            f"unknown GB/T 4754-2017 section {letter!r} in {code!r}: sections run from A to T"
        )
    if digits is not None:
        division_section = mapping.section_of_division(int(digits[:2]))
        if division_section is None:
            raise UnknownIndustryCode(
                f"unknown GB/T 4754-2017 division {digits[:2]!r} in {code!r}: "
                "divisions run from 01 to 97"
            )
        if letter is not None and letter != division_section:
            raise UnknownIndustryCode(
                f"GB/T 4754-2017 code {code!r} is inconsistent: division {digits[:2]} "
                f"belongs to section {division_section}, not {letter}"
            )
        letter = division_section
    assert letter is not None  # the pattern matched a non-empty text: a letter or digits
    return mapping.sections[letter].group
