"""Market segments of the three business lines and the GB/T 4754-2017 mapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.customer.schemas import BusinessLine
from services.customer.segments import (
    CATALOG_PATH,
    MarketCatalogError,
    UnknownBusinessLine,
    UnknownIndustryCode,
    industry_group_for_gbt4754,
    is_valid_market_segment,
    load_market_catalog,
    market_segments_for,
)

# Seed 000 l.151-179, word for word (the seed's 鱼 in 农、林、牧、鱼业 included).
SEED_CORPORATE_GROUPS = [
    "农、林、牧、鱼业",
    "采矿业",
    "电力、热力、燃气及水生产和供应业",
    "制造业",
    "建筑业",
    "财税金融业",
    "房地产业",
    "批发和零售业",
    "交通运输、仓储和邮政业",
    "住宿和餐饮业",
    "信息技术服务业",
    "公共设施管理业",
    "居民服务、修理和其他服务业",
    "教育、卫生、文化、体育和娱乐业",
    "公共管理、社会保障和社会组织",
]

GROUP_OF_SECTION = {
    "A": "农、林、牧、鱼业",
    "B": "采矿业",
    "C": "制造业",
    "D": "电力、热力、燃气及水生产和供应业",
    "E": "建筑业",
    "F": "批发和零售业",
    "G": "交通运输、仓储和邮政业",
    "H": "住宿和餐饮业",
    "I": "信息技术服务业",
    "J": "财税金融业",
    "K": "房地产业",
    "L": "居民服务、修理和其他服务业",
    "M": "信息技术服务业",
    "N": "公共设施管理业",
    "O": "居民服务、修理和其他服务业",
    "P": "教育、卫生、文化、体育和娱乐业",
    "Q": "教育、卫生、文化、体育和娱乐业",
    "R": "教育、卫生、文化、体育和娱乐业",
    "S": "公共管理、社会保障和社会组织",
    "T": "公共管理、社会保障和社会组织",
}

# The first and last division of every section, GB/T 4754-2017.
DIVISION_BOUNDS = [
    ("01", "A"),
    ("05", "A"),
    ("06", "B"),
    ("12", "B"),
    ("13", "C"),
    ("43", "C"),
    ("44", "D"),
    ("46", "D"),
    ("47", "E"),
    ("50", "E"),
    ("51", "F"),
    ("52", "F"),
    ("53", "G"),
    ("60", "G"),
    ("61", "H"),
    ("62", "H"),
    ("63", "I"),
    ("65", "I"),
    ("66", "J"),
    ("69", "J"),
    ("70", "K"),
    ("71", "L"),
    ("72", "L"),
    ("73", "M"),
    ("75", "M"),
    ("76", "N"),
    ("79", "N"),
    ("80", "O"),
    ("82", "O"),
    ("83", "P"),
    ("84", "Q"),
    ("85", "Q"),
    ("86", "R"),
    ("90", "R"),
    ("91", "S"),
    ("96", "S"),
    ("97", "T"),
]


def group_code(name_zh: str) -> str:
    return next(s.code for s in market_segments_for("corporate") if s.name_zh == name_zh)


def test_the_corporate_market_has_the_seeds_fifteen_groups_word_for_word():
    segments = market_segments_for("corporate")

    assert [segment.name_zh for segment in segments] == SEED_CORPORATE_GROUPS
    assert len({segment.code for segment in segments}) == 15
    assert segments[0].code == "agriculture_forestry_husbandry_fishery"
    assert segments[1].code == "mining"


def test_the_quoted_seed_sentence_splits_into_the_groups():
    quoted = load_market_catalog().markets[BusinessLine.corporate].seed_text
    lead_in = "公司客户市场按照客户群体的行业特点和性质进一步细分为"
    trailer = "等十五个子市场。"

    items = quoted.removeprefix(lead_in).removesuffix(trailer).split(";")

    assert items == SEED_CORPORATE_GROUPS


@pytest.mark.parametrize(
    ("business_line", "codes"),
    [
        ("agricultural", ["farm", "forest_farm", "township"]),
        ("personal", ["public_institution", "tertiary_industry"]),
    ],
)
def test_agricultural_and_personal_markets(business_line, codes):
    assert [segment.code for segment in market_segments_for(business_line)] == codes


def test_chinese_names_of_the_areas_and_workplaces():
    assert [s.name_zh for s in market_segments_for("agricultural")] == ["农场", "林场", "乡镇"]
    assert [s.name_zh for s in market_segments_for("personal")] == ["行政事业单位", "第三产业"]


@pytest.mark.parametrize(
    ("business_line", "code", "expected"),
    [
        ("agricultural", "forest_farm", True),
        ("agricultural", "mining", False),
        ("corporate", "mining", True),
        ("corporate", "farm", False),
        ("personal", "tertiary_industry", True),
        ("personal", "township", False),
        ("treasury", "mining", False),
        ("corporate", "", False),
    ],
)
def test_is_valid_market_segment(business_line, code, expected):
    assert is_valid_market_segment(business_line, code) is expected


def test_an_unknown_business_line_has_no_segments():
    with pytest.raises(UnknownBusinessLine, match="expected one of agricultural, corporate"):
        market_segments_for("treasury")


@pytest.mark.parametrize(("section", "group"), sorted(GROUP_OF_SECTION.items()))
def test_every_gbt4754_section_maps_onto_a_seed_group(section, group):
    assert industry_group_for_gbt4754(section) == group_code(group)


@pytest.mark.parametrize(("division", "section"), DIVISION_BOUNDS)
def test_divisions_map_through_their_section(division, section):
    assert industry_group_for_gbt4754(division) == group_code(GROUP_OF_SECTION[section])


def test_every_seed_group_is_reachable_from_some_section():
    reached = {industry_group_for_gbt4754(section) for section in GROUP_OF_SECTION}

    assert reached == {segment.code for segment in market_segments_for("corporate")}


@pytest.mark.parametrize(
    ("code", "group"),
    [
        ("C1311", "manufacturing"),
        ("1311", "manufacturing"),
        ("061", "mining"),
        (" c13 ", "manufacturing"),
        ("J6620", "fiscal_tax_finance"),
    ],
)
def test_longer_codes_are_placed_by_their_division(code, group):
    assert industry_group_for_gbt4754(code) == group


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("", "expected a section letter A-T or a division 01-97"),
        ("U", "sections run from A to T"),
        ("00", "divisions run from 01 to 97"),
        ("98", "divisions run from 01 to 97"),
        ("C06", "division 06 belongs to section B, not C"),
        ("7", "expected a section letter A-T"),
        ("AB", "expected a section letter A-T"),
        ("131100", "expected a section letter A-T"),
    ],
)
def test_unknown_codes_are_refused_clearly(code, message):
    with pytest.raises(UnknownIndustryCode, match=message) as refused:
        industry_group_for_gbt4754(code)

    assert isinstance(refused.value, ValueError)


def shipped_catalog() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    return data


def write_catalog(directory: Path, data: dict[str, Any]) -> Path:
    path = directory / "industries.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["gbt4754_2017"]["sections"]["L"].update(group="leasing"),
            "no corporate industry group",
        ),
        (
            lambda d: d["gbt4754_2017"]["sections"]["K"].update(divisions=["71", "71"]),
            "contiguous",
        ),
        (lambda d: d["gbt4754_2017"]["sections"].pop("T"), "sections must be exactly"),
        (lambda d: d["markets"].pop("personal"), "markets missing for business lines: personal"),
        (
            lambda d: d["markets"]["agricultural"]["segments"].append(
                {"code": "farm", "name": "farm", "name_zh": "农场"}
            ),
            "must be unique",
        ),
    ],
)
def test_inconsistent_catalogs_are_refused(tmp_path, change, message):
    data = shipped_catalog()
    change(data)

    with pytest.raises(MarketCatalogError, match=message):
        load_market_catalog(write_catalog(tmp_path, data))
