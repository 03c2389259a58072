"""Scorecards 信用等级评估: versioned policy data turned into a fast, pure scoring function.

A scorecard (``policy/scorecards/<id>-<effective date>.json``) lists factors, each with the
points of its bins (numbers: lower bounds, the last bin open-ended) or of its choices, and the
scale that maps the total score to a grade. Financial factors (income or revenue, net assets,
debt ratio, deposits with the bank, repayment record) and non-financial ones (character 品德信誉,
experience 经营经验, family 家庭状况, relationship with the bank 与本行关系 …) add up to 100.

A factor's ``source`` says who knows its value: ``system`` factors come from the bank's own
figures (:func:`system_inputs`) and the manager's entry counts only while the system knows
nothing; ``manual`` factors are entered by the manager, whose entry wins over any value the
system suggests. A missing input is listed, never guessed: the result then has no grade.

Scoring runs a million times in a rating campaign, so everything a call needs is prepared when
the file is loaded: sorted bin bounds searched with :func:`bisect.bisect_right`, points as
integer hundredths, and the explanation line of every choice built once.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crmkit.clock import business_today
from crmkit.policy import load_policy_file
from services.rating.models import CustomerFigures

POLICY_DIR = Path(__file__).with_name("policy") / "scorecards"

GRADES: tuple[str, ...] = ("AAA", "AA", "A", "BBB", "BB", "B", "C")

SIDES = ("financial", "non_financial")


class ScorecardError(Exception):
    """A scorecard file that cannot be used, or no scorecard for a customer kind and day."""


class ScoreInputError(ValueError):
    """An input a factor cannot read (not a number, not one of its choices)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


# -- the policy file -----------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BinPolicy(_Strict):
    """A bin of a number factor: from ``min`` (inclusive; ``None`` for the first bin, open
    below) up to the next bin's ``min``."""

    min: Decimal | None
    label: str = Field(min_length=1)
    points: Decimal = Field(ge=0)


class ChoicePolicy(_Strict):
    value: str = Field(min_length=1)
    label: str = Field(min_length=1)
    points: Decimal = Field(ge=0)


class FactorPolicy(_Strict):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=1)
    side: Literal["financial", "non_financial"]
    source: Literal["system", "manual"]
    type: Literal["number", "choice"]
    unit: str | None = None
    max_points: Decimal = Field(gt=0)
    bins: list[BinPolicy] = Field(default_factory=list)
    choices: list[ChoicePolicy] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> FactorPolicy:
        if self.type == "number":
            if not self.bins or self.choices:
                raise ValueError(f"{self.code}: a number factor has bins and no choices")
            if self.bins[0].min is not None:
                raise ValueError(f"{self.code}: the first bin is open below (min null)")
            bounds = [b.min for b in self.bins[1:]]
            if any(b is None for b in bounds) or bounds != sorted(set(bounds)):  # type: ignore[type-var]
                raise ValueError(f"{self.code}: bin bounds must rise strictly")
            points = [b.points for b in self.bins]
        else:
            if not self.choices or self.bins:
                raise ValueError(f"{self.code}: a choice factor has choices and no bins")
            values = [c.value for c in self.choices]
            if len(set(values)) != len(values):
                raise ValueError(f"{self.code}: choices repeat a value")
            points = [c.points for c in self.choices]
        if max(points) != self.max_points:
            raise ValueError(f"{self.code}: the best bin must give max_points")
        return self


class GradePolicy(_Strict):
    grade: Literal["AAA", "AA", "A", "BBB", "BB", "B", "C"]
    min_score: Decimal = Field(ge=0)
    meaning: str = Field(min_length=1)


class ScorecardPolicy(_Strict):
    """One scorecard version as the bank writes it."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=60)
    version: str = Field(min_length=1, max_length=20)
    kinds: list[
        Literal["individual", "farm_household", "individual_business", "corporate", "institution"]
    ] = Field(min_length=1)
    effective_from: date
    description: str = Field(min_length=1)
    max_score: Decimal = Field(gt=0)
    scale: list[GradePolicy]
    factors: list[FactorPolicy] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> ScorecardPolicy:
        codes = [f.code for f in self.factors]
        if len(set(codes)) != len(codes):
            raise ValueError("factor codes repeat")
        if sum(f.max_points for f in self.factors) != self.max_score:
            raise ValueError("the factors' max_points must add up to max_score")
        if tuple(g.grade for g in self.scale) != GRADES:
            raise ValueError(f"the scale lists every grade once, best first: {GRADES}")
        mins = [g.min_score for g in self.scale]
        if mins != sorted(set(mins), reverse=True) or mins[-1] != 0:
            raise ValueError("the scale's min_score falls strictly and the last grade starts at 0")
        return self


# -- the explanation and the result --------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FactorLine:
    """One row of the explanation 评估表: the value a factor read, its bin, points and maximum."""

    code: str
    name: str
    side: str  # "financial" | "non_financial"
    value: str | None
    bin: str | None
    points: Decimal
    max_points: Decimal

    def as_dict(self) -> dict[str, str | None]:
        """The row as stored and sent (numbers as exact decimal strings)."""
        return {
            "code": self.code,
            "name": self.name,
            "side": self.side,
            "value": self.value,
            "bin": self.bin,
            "points": str(self.points),
            "max_points": str(self.max_points),
        }


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """A scored set of inputs: ``grade`` is ``None`` while any input is ``missing``."""

    scorecard_id: str
    version: str
    score: Decimal
    grade: str | None
    lines: tuple[FactorLine, ...]
    missing: tuple[str, ...]


# -- compiled factors ----------------------------------------------------------------------------
_HUNDRED = Decimal(100)
_TWO_PLACES = Decimal("0.01")


def _hundredths(points: Decimal) -> int:
    scaled = points * _HUNDRED
    if scaled != scaled.to_integral_value():
        raise ScorecardError(f"points {points} have more than two decimal places")
    return int(scaled)


def _points(points: Decimal) -> Decimal:
    return points.quantize(_TWO_PLACES)


def to_number(value: object) -> Decimal:
    """An input as an exact decimal: Decimal, int, a numeric string, or a float by its shortest
    repr (so 0.7 is 0.7, not its binary neighbour). Raises ``ValueError`` otherwise."""
    kind = type(value)
    if kind is Decimal:
        number = value
    elif kind is int:
        number = Decimal(value)  # type: ignore[arg-type]
    elif kind is str:
        try:
            number = Decimal(value)  # type: ignore[arg-type]  # surrounding blanks are allowed
        except InvalidOperation:
            raise ValueError("not a number") from None
    elif kind is float:
        number = Decimal(repr(value))
    else:
        raise ValueError("not a number")
    if not number.is_finite():  # type: ignore[attr-defined]
        raise ValueError("not a finite number")
    return number  # type: ignore[return-value]


# Writing a FactorLine's slots through their descriptors builds a line without the frozen
# dataclass's guarded __setattr__: a fifth of the cost, on the path that runs a million times.
_new_object = object.__new__
(_set_code, _set_name, _set_side, _set_value, _set_bin, _set_points, _set_max) = (
    FactorLine.__dict__[name].__set__
    for name in ("code", "name", "side", "value", "bin", "points", "max_points")
)


def _line_of(proto: FactorLine, value: str) -> FactorLine:
    """A copy of ``proto`` (a bin's line) with the value read."""
    line = _new_object(FactorLine)
    _set_code(line, proto.code)
    _set_name(line, proto.name)
    _set_side(line, proto.side)
    _set_value(line, value)
    _set_bin(line, proto.bin)
    _set_points(line, proto.points)
    _set_max(line, proto.max_points)
    return line


def _missing_line(policy: FactorPolicy) -> FactorLine:
    """The line of a factor without a value: no bin, no points."""
    return FactorLine(
        policy.code,
        policy.name,
        policy.side,
        None,
        None,
        Decimal("0.00"),
        _points(policy.max_points),
    )


class _NumberFactor:
    __slots__ = ("bins", "bounds", "code", "missing_line")

    def __init__(self, policy: FactorPolicy) -> None:
        self.code = policy.code
        self.missing_line = _missing_line(policy)
        # bins[0] is open below; bisect_right over the other lower bounds gives the bin index.
        self.bounds: list[Decimal] = [b.min for b in policy.bins[1:] if b.min is not None]
        # Per bin: its points in hundredths and its line (without the value).
        max_points = _points(policy.max_points)
        self.bins = [
            (
                _hundredths(b.points),
                FactorLine(
                    policy.code,
                    policy.name,
                    policy.side,
                    None,
                    b.label,
                    _points(b.points),
                    max_points,
                ),
            )
            for b in policy.bins
        ]

    def score(self, value: object) -> tuple[int, FactorLine]:
        try:
            number = to_number(value)
        except ValueError as exc:
            raise ScoreInputError(self.code, str(exc)) from None
        cents, proto = self.bins[bisect_right(self.bounds, number)]
        return cents, _line_of(proto, str(number))


class _ChoiceFactor:
    __slots__ = ("by_value", "code", "missing_line")

    def __init__(self, policy: FactorPolicy) -> None:
        self.code = policy.code
        self.missing_line = _missing_line(policy)
        max_points = _points(policy.max_points)
        # Per choice: its points in hundredths and its whole line, built once.
        self.by_value = {
            c.value: (
                _hundredths(c.points),
                FactorLine(
                    policy.code,
                    policy.name,
                    policy.side,
                    c.value,
                    c.label,
                    _points(c.points),
                    max_points,
                ),
            )
            for c in policy.choices
        }

    def score(self, value: object) -> tuple[int, FactorLine]:
        found = self.by_value.get(value) if isinstance(value, str) else None
        if found is None:
            allowed = ", ".join(self.by_value)
            raise ScoreInputError(self.code, f"{value!r} is not one of: {allowed}")
        return found


# -- the scorecard -------------------------------------------------------------------------------
class Scorecard:
    """One loaded scorecard version; :meth:`score` is pure and fast."""

    def __init__(self, policy: ScorecardPolicy) -> None:
        self.policy = policy
        self.id = policy.id
        self.version = policy.version
        self.kinds: tuple[str, ...] = tuple(policy.kinds)
        self.effective_from = policy.effective_from
        self.description = policy.description
        self.max_score = _points(policy.max_score)
        self._factors: tuple[_NumberFactor | _ChoiceFactor, ...] = tuple(
            _NumberFactor(f) if f.type == "number" else _ChoiceFactor(f) for f in policy.factors
        )
        self.factor_codes: tuple[str, ...] = tuple(f.code for f in policy.factors)
        self.system_codes: frozenset[str] = frozenset(
            f.code for f in policy.factors if f.source == "system"
        )
        # Scale as (minimum in hundredths, grade), best first.
        self._scale = tuple((_hundredths(g.min_score), g.grade) for g in policy.scale)
        self.meanings: dict[str, str] = {g.grade: g.meaning for g in policy.scale}

    def __repr__(self) -> str:
        return f"Scorecard({self.id!r}, {self.version!r})"

    def score(self, inputs: Mapping[str, object]) -> ScoreResult:
        """Score ``inputs`` (factor code → value). A factor without a value is listed in
        ``missing`` with no points and the result has no grade. Raises
        :class:`ScoreInputError` for a value a factor cannot read."""
        total = 0
        lines: list[FactorLine] = []
        missing: list[str] = []
        get = inputs.get
        for factor in self._factors:
            value = get(factor.code)
            if value is None or (value.__class__ is str and not value):
                missing.append(factor.code)
                lines.append(factor.missing_line)
                continue
            cents, line = factor.score(value)
            total += cents
            lines.append(line)
        grade = None if missing else self._grade_of_hundredths(total)
        return ScoreResult(
            self.id,
            self.version,
            Decimal(total).scaleb(-2),
            grade,
            tuple(lines),
            tuple(missing),
        )

    def _grade_of_hundredths(self, total: int) -> str:
        for minimum, grade in self._scale:
            if total >= minimum:
                return grade
        return GRADES[-1]

    def grade_of(self, score: Decimal) -> str:
        """The grade of a score on this card's scale (the highest grade whose minimum it
        reaches)."""
        for minimum, grade in self._scale:
            if score * _HUNDRED >= minimum:
                return grade
        return GRADES[-1]

    def inputs_from(
        self, system: Mapping[str, object], entered: Mapping[str, object]
    ) -> dict[str, object]:
        """The values to score: for ``system`` factors the system's value (the entry only while
        the system has none), for ``manual`` factors the entry (the system's value only when
        nothing was entered)."""
        merged: dict[str, object] = {}
        for code in self.factor_codes:
            mine, theirs = system.get(code), entered.get(code)
            if theirs == "":
                theirs = None
            if code in self.system_codes:
                value = mine if mine is not None else theirs
            else:
                value = theirs if theirs is not None else mine
            if value is not None:
                merged[code] = value
        return merged

    def unknown_codes(self, entered: Mapping[str, object]) -> list[str]:
        """Codes in ``entered`` that are no factor of this card."""
        known = set(self.factor_codes)
        return sorted(code for code in entered if code not in known)


# -- loading -------------------------------------------------------------------------------------
def load_scorecards(directory: Path = POLICY_DIR) -> list[Scorecard]:
    """Every scorecard file in ``directory``, validated; oldest first per id."""
    cards = [
        Scorecard(load_policy_file(path, ScorecardPolicy, "scorecard", ScorecardError))
        for path in sorted(directory.glob("*.json"))
    ]
    if not cards:
        raise ScorecardError(f"no scorecard in {directory}")
    seen: set[tuple[str, str]] = set()
    for card in cards:
        if (card.id, card.version) in seen:
            raise ScorecardError(f"scorecard {card.id} version {card.version} is defined twice")
        seen.add((card.id, card.version))
    return sorted(cards, key=lambda c: (c.id, c.effective_from, c.version))


@cache
def _loaded() -> tuple[Scorecard, ...]:
    return tuple(load_scorecards())


def scorecards() -> list[Scorecard]:
    """Every scorecard version of the bank's policy."""
    return list(_loaded())


def scorecard(scorecard_id: str, version: str | None = None) -> Scorecard | None:
    """A scorecard by id (its latest version unless ``version`` is given)."""
    found = [c for c in _loaded() if c.id == scorecard_id and version in (None, c.version)]
    return found[-1] if found else None


def scorecard_for(kind: str, on: date | None = None) -> Scorecard:
    """The scorecard in force for a customer kind on a business date (today by default): of the
    cards for that kind, the one with the latest ``effective_from`` on or before the day."""
    day = on or business_today()
    in_force = [c for c in _loaded() if kind in c.kinds and c.effective_from <= day]
    if not in_force:
        raise ScorecardError(f"no scorecard in force for {kind} customers on {day}")
    return max(in_force, key=lambda c: (c.effective_from, c.version))


# -- what the system knows -----------------------------------------------------------------------
def repayment_record(loans: Decimal | None, overdue_amount: Decimal | None) -> str | None:
    """The repayment record core banking's figures show: ``overdue`` when anything is overdue,
    ``normal`` for a borrower with nothing overdue, ``no_history`` for a customer with no loans."""
    if overdue_amount is None:
        return None
    if overdue_amount > 0:
        return "overdue"
    return "normal" if loans is not None and loans > 0 else "no_history"


def system_inputs(figures: CustomerFigures | None) -> dict[str, object]:
    """Factor values the bank's own figures give: ``deposit_balance`` (the latest deposit
    balance with the bank) and ``repayment_record`` (from the overdue amount and loans). Empty
    until core banking has sent a snapshot."""
    if figures is None or figures.business_date is None:
        return {}
    known: dict[str, object] = {}
    if figures.deposits is not None:
        known["deposit_balance"] = figures.deposits
    record = repayment_record(figures.loans, figures.overdue_amount)
    if record is not None:
        known["repayment_record"] = record
    return known
