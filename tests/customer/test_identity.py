"""Resident identity numbers, unified social credit codes, mobile numbers and masking."""

from __future__ import annotations

from datetime import date
from typing import Literal

import pytest

from crmkit.identity import (
    IdentityError,
    ResidentId,
    age_on,
    mask_credit_code,
    mask_phone,
    mask_resident_id,
    normalize_mobile,
    validate_credit_code,
    validate_resident_id,
)

TODAY = date(2024, 6, 15)
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def resident_id(region: str, birth: str, sequence: str) -> str:
    """A number with its check character, computed from the ISO 7064 MOD 11-2 definition."""
    first17 = region + birth + sequence
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(first17))
    return first17 + "10X98765432"[total % 11]


def fullwidth(text: str) -> str:
    """``text`` in full-width characters (U+FF10 and on), as typed with a Chinese input method."""
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


def credit_code(first17: str) -> str:
    """A credit code with its check character, weights computed as 3**i mod 31."""
    total = sum(ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(first17))
    return first17 + ALPHABET[(31 - total % 31) % 31]


# --- resident identity numbers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "number", "birth_date", "sex"),
    [
        ("11010519491231002X", "11010519491231002X", date(1949, 12, 31), "female"),
        ("11010519491231002x", "11010519491231002X", date(1949, 12, 31), "female"),
        ("  11010519491231002X\n", "11010519491231002X", date(1949, 12, 31), "female"),
        (
            resident_id("110101", "19900307", "457"),
            resident_id("110101", "19900307", "457"),
            date(1990, 3, 7),
            "male",
        ),
        (
            resident_id("440524", "20000229", "318"),
            resident_id("440524", "20000229", "318"),
            date(2000, 2, 29),
            "female",
        ),
        (
            resident_id("810000", "19750101", "001"),
            resident_id("810000", "19750101", "001"),
            date(1975, 1, 1),
            "male",
        ),
        (
            resident_id("830000", "19900101", "002"),
            resident_id("830000", "19900101", "002"),
            date(1990, 1, 1),
            "female",
        ),
        (
            resident_id("650102", "19000101", "013"),
            resident_id("650102", "19000101", "013"),
            date(1900, 1, 1),
            "male",
        ),
        (
            resident_id("330106", "20240615", "020"),
            resident_id("330106", "20240615", "020"),
            TODAY,
            "female",
        ),
    ],
)
def test_valid_resident_ids(
    value: str, number: str, birth_date: date, sex: Literal["male", "female"]
) -> None:
    assert validate_resident_id(value, today=TODAY) == ResidentId(
        number=number, birth_date=birth_date, sex=sex
    )


def test_helper_agrees_with_known_valid_number() -> None:
    assert resident_id("110105", "19491231", "002") == "11010519491231002X"
    assert resident_id("440524", "18800101", "001") == "440524188001010014"


def test_check_character_x_is_normalised_to_upper_case() -> None:
    assert validate_resident_id("11010519491231002x", today=TODAY).number.endswith("X")


def test_result_is_frozen() -> None:
    result = validate_resident_id("11010519491231002X", today=TODAY)
    with pytest.raises(AttributeError):
        result.sex = "male"  # type: ignore[misc]


def test_default_today_refuses_a_birth_date_far_in_the_future() -> None:
    with pytest.raises(IdentityError, match="in the future"):
        validate_resident_id(resident_id("110101", "29991231", "001"))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("110105194912310025", "check digit mismatch: expected X, got 5"),
        ("11010519491231002Y", "17 digits followed by a digit or X"),
        ("440524198001010015", "check digit mismatch: expected 3, got 5"),
        (resident_id("110101", "19900307", "457")[:17] + "0", "check digit mismatch"),
        ("1101051949123100X2", "17 digits followed by a digit or X"),
        ("11010519491231002", "must have 18 characters, got 17"),
        ("11010519491231002X0", "must have 18 characters, got 19"),
        ("", "must have 18 characters, got 0"),
        (fullwidth("11010519491231002X"), "17 digits followed by a digit or X"),
        ("110105 9491231002X", "17 digits followed by a digit or X"),
        (resident_id("110101", "19900230", "457"), "birth date 19900230 in resident id is not"),
        (resident_id("110101", "20230229", "457"), "birth date 20230229 in resident id is not"),
        (resident_id("110101", "19901301", "457"), "birth date 19901301 in resident id is not"),
        (resident_id("110101", "19900000", "457"), "birth date 19900000 in resident id is not"),
        (resident_id("110101", "20240616", "457"), "2024-06-16 in resident id is in the future"),
        ("440524188001010014", "1880-01-01 in resident id is before 1900-01-01"),
        (resident_id("110101", "18991231", "457"), "before 1900-01-01"),
        (resident_id("100101", "19900307", "457"), "unknown province code 10"),
        (resident_id("160101", "19900307", "457"), "unknown province code 16"),
        (resident_id("240101", "19900307", "457"), "unknown province code 24"),
        (resident_id("550101", "19900307", "457"), "unknown province code 55"),
        (resident_id("720101", "19900307", "457"), "unknown province code 72"),
        (resident_id("840101", "19900307", "457"), "unknown province code 84"),
        (resident_id("990101", "19900307", "457"), "unknown province code 99"),
        (resident_id("000101", "19900307", "457"), "unknown province code 00"),
    ],
)
def test_invalid_resident_ids(value: str, reason: str) -> None:
    with pytest.raises(IdentityError, match=reason) as caught:
        validate_resident_id(value, today=TODAY)
    assert isinstance(caught.value, ValueError)
    assert reason in caught.value.field_reason


# --- age ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("birth_date", "on", "age"),
    [
        (date(1990, 3, 7), date(1990, 3, 7), 0),
        (date(1990, 3, 7), date(2024, 3, 6), 33),
        (date(1990, 3, 7), date(2024, 3, 7), 34),
        (date(1990, 3, 7), date(2024, 12, 31), 34),
        (date(2000, 2, 29), date(2018, 2, 28), 17),
        (date(2000, 2, 29), date(2018, 3, 1), 18),
        (date(2000, 2, 29), date(2020, 2, 29), 20),
        (date(1949, 12, 31), date(1950, 1, 1), 0),
    ],
)
def test_age_on(birth_date: date, on: date, age: int) -> None:
    assert age_on(birth_date, on) == age


def test_age_before_birth_is_refused() -> None:
    with pytest.raises(ValueError, match="before the birth date"):
        age_on(date(1990, 3, 7), date(1990, 3, 6))


# --- unified social credit codes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("91350100M000100Y43", "91350100M000100Y43"),
        ("91350100m000100y43", "91350100M000100Y43"),
        (" 91350100M000100Y43 ", "91350100M000100Y43"),
        (credit_code("11100000000013127"), credit_code("11100000000013127")),
        (credit_code("51440300MJL123456"), credit_code("51440300MJL123456")),
        (credit_code("92330106MA2ABCDEF"), credit_code("92330106MA2ABCDEF")),
        (credit_code("Y1110108MA0123456"), credit_code("Y1110108MA0123456")),
    ],
)
def test_valid_credit_codes(value: str, code: str) -> None:
    assert validate_credit_code(value) == code


def test_helper_agrees_with_known_valid_code() -> None:
    assert credit_code("91350100M000100Y4") == "91350100M000100Y43"


def test_check_character_is_zero_when_the_sum_is_a_multiple_of_31() -> None:
    def weighted(prefix: str) -> int:
        return sum(ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(prefix))

    # The last weight (28) is prime to 31, so exactly one filler makes the sum a multiple of 31
    # and exercises the rule that a check index of 31 is written 0.
    prefix = next(p for p in ("9111000060000000" + c for c in ALPHABET) if weighted(p) % 31 == 0)
    assert validate_credit_code(prefix + "0") == prefix + "0"
    with pytest.raises(IdentityError, match="expected 0, got 1"):
        validate_credit_code(prefix + "1")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("91350100M000100Y42", "check character mismatch: expected 3, got 2"),
        ("91350100M000101Y43", "check character mismatch"),
        ("91350101M000100Y43", "check character mismatch"),
        ("91350100M000100Y4", "must have 18 characters, got 17"),
        ("91350100M000100Y433", "must have 18 characters, got 19"),
        ("", "must have 18 characters, got 0"),
        ("91350100I000100Y43", "'I' at position 9 is not allowed"),
        ("91350100O000100Y43", "'O' at position 9 is not allowed"),
        ("91350100Z000100Y43", "'Z' at position 9 is not allowed"),
        ("91350100S000100Y43", "'S' at position 9 is not allowed"),
        ("91350100V000100Y43", "'V' at position 9 is not allowed"),
        ("91350100M000100Y4-", "'-' at position 18 is not allowed"),
        (
            "91350100M000100\ufb00" + credit_code("91350100M000100FF")[-1],
            "must have 18 characters, got 17",
        ),
        (fullwidth("91350100M000100Y43"), "'\uff19' at position 1 is not allowed"),
        (credit_code("B1350100M000100Y4"), "unknown registration authority code B"),
        (credit_code("01350100M000100Y4"), "unknown registration authority code 0"),
        (credit_code("913501A0M000100Y4"), "administrative division code 3501A0"),
        (credit_code("91M50100M000100Y4"), "administrative division code M50100"),
    ],
)
def test_invalid_credit_codes(value: str, reason: str) -> None:
    with pytest.raises(IdentityError, match=reason):
        validate_credit_code(value)


# --- mobile numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+86 138 1234 5678",
        "+8613812345678",
        "0086 13812345678",
        "86-138-1234-5678",
        "8613812345678",
        " 13812345678 ",
    ],
)
def test_mobile_forms_are_normalised(value: str) -> None:
    assert normalize_mobile(value) == "13812345678"


@pytest.mark.parametrize("second_digit", "3456789")
def test_every_mobile_prefix_is_accepted(second_digit: str) -> None:
    number = f"1{second_digit}912345678"
    assert normalize_mobile(number) == number


@pytest.mark.parametrize(
    "value",
    [
        "010-12345678",
        "0755 8888 8888",
        "+86 10 1234 5678",
        "12345678901",
        "11812345678",
        "23812345678",
        "1381234567",
        "138123456789",
        "+1 138 1234 5678",
        "138.1234.5678",
        "1381234567" + fullwidth("8"),
        "",
    ],
)
def test_non_mobile_numbers_are_refused(value: str) -> None:
    with pytest.raises(IdentityError, match="not a mainland China mobile number"):
        normalize_mobile(value)


# --- masking ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("110101199003074578", "110101********4578"),
        ("11010519491231002X", "110105********002X"),
        ("12345678901", "123456*8901"),
        ("1234567890", "**********"),
        ("1234", "****"),
        ("", ""),
    ],
)
def test_mask_resident_id(value: str, masked: str) -> None:
    assert mask_resident_id(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("91350100M000100Y43", "91************0Y43"),
        ("9135100", "91*5100"),
        ("913510", "******"),
        ("9", "*"),
        ("", ""),
    ],
)
def test_mask_credit_code(value: str, masked: str) -> None:
    assert mask_credit_code(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("13812345678", "138****5678"),
        ("12345678", "123*5678"),
        ("1234567", "*******"),
        ("12", "**"),
        ("", ""),
    ],
)
def test_mask_phone(value: str, masked: str) -> None:
    assert mask_phone(value) == masked
