"""Identity numbers of customers: validation, normalisation and masking. Pure functions, no I/O.

Resident identity number 居民身份证号码 (GB 11643-1999)
    Eighteen characters: a six-digit administrative division code of the place of first
    registration (its first two digits are the province), the date of birth as ``YYYYMMDD``, a
    three-digit sequence number whose last digit is odd for men and even for women, and a check
    character. The check character is ISO 7064 MOD 11-2: the first seventeen digits are weighted by
    ``2**(18 - i) mod 11`` (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2), and the sum mod 11
    indexes ``"10X98765432"``. The fifteen-digit numbers of the first generation card (withdrawn in
    2013) carry no check character and are refused.

Unified social credit code 统一社会信用代码 (GB 32100-2015)
    Eighteen characters over a 31-character alphabet (the digits and the capital letters without
    I, O, Z, S and V, which are too easily read as digits): the registration authority, the
    organisation category, the six-digit administrative division code, the nine-character
    organisation code and a check character. The check character is ISO 7064 MOD 31-3 style: the
    first seventeen characters, by their index in the alphabet, are weighted by ``3**i mod 31``, and
    the check index is ``31 - (sum mod 31)``, with 31 read as 0.

Mainland mobile numbers
    Eleven digits, ``1`` then ``3``-``9``; written with spaces or hyphens and with the country
    code ``+86``, ``0086`` or ``86`` in front, all of which normalise to the bare eleven digits.

Masking keeps only the parts an employee needs to recognise a number (the region of an identity
number, the last four digits) so that lists, logs and exports do not carry the full value.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Literal

__all__ = [
    "CREDIT_CODE_ALPHABET",
    "CREDIT_CODE_AUTHORITIES",
    "IdentityError",
    "ResidentId",
    "age_on",
    "mask_credit_code",
    "mask_phone",
    "mask_resident_id",
    "normalize_mobile",
    "validate_credit_code",
    "validate_resident_id",
]

_RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_ID_CHECK_CHARS = "10X98765432"
# The weighted sum over the ASCII codes of the digits exceeds the sum over the digits by this
# much ("0" is 48): one C-level pass over the bytes replaces seventeen int() conversions.
_RESIDENT_ID_ASCII_OFFSET = 48 * sum(_RESIDENT_ID_WEIGHTS)
# ASCII only: str.isdigit() would let full-width and other Unicode digits through.
_RESIDENT_ID_PATTERN = re.compile(r"[0-9]{17}[0-9X]")
_EARLIEST_BIRTH_DATE = date(1900, 1, 1)
# 11-15 North, 21-23 North-east, 31-37 East, 41-46 South-central, 50-54 South-west,
# 61-65 North-west, 71 Taiwan, 81 Hong Kong, 82 Macao, 83 Taiwan residence permits.
_PROVINCE_RANGES = ((11, 15), (21, 23), (31, 37), (41, 46), (50, 54), (61, 65), (71, 71), (81, 83))
_PROVINCE_CODES = frozenset(code for low, high in _PROVINCE_RANGES for code in range(low, high + 1))

CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# Registration authorities of GB 32100-2015 (1 institutional organisation, 2 foreign affairs,
# 3 judicial administration, 4 culture, 5 civil affairs, 6 tourism, 7 religion, 8 trade unions,
# 9 market regulation, A the central military commission's organisation office, N agriculture,
# Y others): law firms (3) and trade unions (8) are customers too.
CREDIT_CODE_AUTHORITIES = frozenset("123456789ANY")

_MOBILE_SEPARATORS = re.compile(r"[ \-]")
_MOBILE_PATTERN = re.compile(r"1[3-9][0-9]{9}")


class IdentityError(ValueError):
    """An identity number, credit code or phone number that is not valid; the message says why."""

    def __init__(self, field_reason: str) -> None:
        super().__init__(field_reason)
        self.field_reason = field_reason


@dataclass(frozen=True)
class ResidentId:
    """A valid resident identity number and what it tells about its holder."""

    number: str
    birth_date: date
    sex: Literal["male", "female"]


def _upper_ascii(text: str) -> str:
    # str.upper() turns some non-ASCII characters into ASCII letters (the ligature U+FB00 into
    # "FF"); such input is left as it is, to be refused rather than silently rewritten.
    return text.upper() if text.isascii() else text


def _resident_id_check_char(first17: str) -> str:
    # Called with seventeen ASCII digits only (the pattern is checked first).
    total = sum(map(operator.mul, first17.encode("ascii"), _RESIDENT_ID_WEIGHTS))
    return _RESIDENT_ID_CHECK_CHARS[(total - _RESIDENT_ID_ASCII_OFFSET) % 11]


def validate_resident_id(value: str, today: date | None = None) -> ResidentId:
    """Validate an 18-character resident identity number 居民身份证号码 (GB 11643-1999).

    Surrounding whitespace is ignored and a lower-case ``x`` check character is accepted; the
    returned number is upper-case. ``today`` (the current date if not given) bounds the birth
    date: a number born in the future is refused, as is one born before 1900-01-01.

    Raises:
        IdentityError: the format, province code, birth date or check character is wrong.
    """
    reference = today if today is not None else date.today()
    return _validated_resident_id(_upper_ascii(value.strip()), reference)


# A pure function of its arguments with an immutable result: a bulk import validates each number
# when it reads a row and again when it applies it, and the second time is a lookup. Refusals are
# exceptions, which are not cached.
@lru_cache(maxsize=4096)
def _validated_resident_id(number: str, reference: date) -> ResidentId:
    if len(number) != 18:
        raise IdentityError(f"resident id must have 18 characters, got {len(number)}")
    if not _RESIDENT_ID_PATTERN.fullmatch(number):
        raise IdentityError(
            "resident id must be 17 digits followed by a digit or X as check character"
        )
    province = number[:2]
    if int(province) not in _PROVINCE_CODES:
        raise IdentityError(f"unknown province code {province} in resident id")
    raw_birth = number[6:14]
    try:
        birth_date = date(int(raw_birth[:4]), int(raw_birth[4:6]), int(raw_birth[6:8]))
    except ValueError:
        raise IdentityError(f"birth date {raw_birth} in resident id is not a date") from None
    if birth_date > reference:
        raise IdentityError(f"birth date {birth_date.isoformat()} in resident id is in the future")
    if birth_date < _EARLIEST_BIRTH_DATE:
        raise IdentityError(
            f"birth date {birth_date.isoformat()} in resident id is before "
            f"{_EARLIEST_BIRTH_DATE.isoformat()}"
        )
    expected = _resident_id_check_char(number[:17])
    if number[17] != expected:
        raise IdentityError(f"check digit mismatch: expected {expected}, got {number[17]}")
    sex: Literal["male", "female"] = "male" if int(number[16]) % 2 == 1 else "female"
    return ResidentId(number=number, birth_date=birth_date, sex=sex)


def age_on(birth_date: date, on: date) -> int:
    """Age in completed years on the day ``on``.

    Someone born on 29 February becomes a year older on 1 March in common years.

    Raises:
        ValueError: ``on`` is before ``birth_date``.
    """
    if on < birth_date:
        raise ValueError(f"date {on.isoformat()} is before the birth date {birth_date.isoformat()}")
    had_birthday = (on.month, on.day) >= (birth_date.month, birth_date.day)
    return on.year - birth_date.year - (0 if had_birthday else 1)


def _credit_code_check_char(first17: str) -> str:
    total = sum(
        CREDIT_CODE_ALPHABET.index(c) * w
        for c, w in zip(first17, _CREDIT_CODE_WEIGHTS, strict=True)
    )
    check = 31 - total % 31
    return CREDIT_CODE_ALPHABET[0 if check == 31 else check]


def validate_credit_code(value: str) -> str:
    """Validate a unified social credit code 统一社会信用代码 (GB 32100-2015).

    Surrounding whitespace is ignored and lower-case letters are accepted; the code is returned
    upper-case.

    Raises:
        IdentityError: the length, a character, the registration authority, the administrative
            division code or the check character is wrong.
    """
    code = _upper_ascii(value.strip())
    if len(code) != 18:
        raise IdentityError(f"credit code must have 18 characters, got {len(code)}")
    for position, char in enumerate(code, start=1):
        if char not in CREDIT_CODE_ALPHABET:
            raise IdentityError(
                f"character {char!r} at position {position} is not allowed in a credit code"
            )
    if code[0] not in CREDIT_CODE_AUTHORITIES:
        raise IdentityError(f"unknown registration authority code {code[0]} in credit code")
    division = code[2:8]
    if not division.isdigit():
        raise IdentityError(
            f"administrative division code {division} in credit code must be six digits"
        )
    expected = _credit_code_check_char(code[:17])
    if code[17] != expected:
        raise IdentityError(f"check character mismatch: expected {expected}, got {code[17]}")
    return code


def normalize_mobile(value: str) -> str:
    """The 11-digit form of a mainland China mobile number.

    Spaces and hyphens are ignored, and a country code ``+86``, ``0086`` or ``86`` in front is
    dropped: ``"+86 138-1234-5678"`` gives ``"13812345678"``.

    Raises:
        IdentityError: the value is not a mainland mobile number (landlines included).
    """
    digits = _MOBILE_SEPARATORS.sub("", value.strip())
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86"):
        # Unambiguous: a mobile number itself starts with 1, never with 86.
        digits = digits[2:]
    if not _MOBILE_PATTERN.fullmatch(digits):
        raise IdentityError(f"{value!r} is not a mainland China mobile number")
    return digits


def _mask(value: str, keep_first: int, keep_last: int) -> str:
    # Too short to show both ends and still hide something: hide it all.
    if len(value) <= keep_first + keep_last:
        return "*" * len(value)
    hidden = len(value) - keep_first - keep_last
    return value[:keep_first] + "*" * hidden + value[len(value) - keep_last :]


def mask_resident_id(value: str) -> str:
    """Keep the region code (first 6) and the last 4 characters: ``110101********4578``."""
    return _mask(value, 6, 4)


def mask_credit_code(value: str) -> str:
    """Keep the first 2 and the last 4 characters: ``91************0Y43``."""
    return _mask(value, 2, 4)


def mask_phone(value: str) -> str:
    """Keep the first 3 and the last 4 digits: ``138****5678``."""
    return _mask(value, 3, 4)
