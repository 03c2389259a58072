"""Events the rating service publishes: grades, credit limits and their approval, risk status.

Keyed by the customer id, so one customer's rating events stay in order.
"""

from crmkit.events import EventSpec

STREAM = "rating"

RATING_ASSESSED = EventSpec(
    "rating.assessed",
    1,
    STREAM,
    "A customer was scored by a scorecard; the grade awaits confirmation (信用等级评估)",
)
RATING_CONFIRMED = EventSpec(
    "rating.confirmed",
    1,
    STREAM,
    "An approver confirmed a customer's grade, as computed or adjusted",
)
RATING_REJECTED = EventSpec(
    "rating.rejected", 1, STREAM, "An approver rejected an assessment (with the reason)"
)
CREDIT_LIMIT_PROPOSED = EventSpec(
    "credit_limit.proposed", 1, STREAM, "A credit limit was calculated and proposed (授信额度测算)"
)
CREDIT_LIMIT_REVIEWED = EventSpec(
    "credit_limit.reviewed", 1, STREAM, "A reviewer examined a proposed limit (审查)"
)
CREDIT_LIMIT_REFERRED = EventSpec(
    "credit_limit.referred",
    1,
    STREAM,
    "A limit above the matrix's committee line went to the credit committee (贷审会)",
)
CREDIT_LIMIT_VOTED = EventSpec(
    "credit_limit.voted", 1, STREAM, "A member of the credit committee voted on a limit"
)
CREDIT_LIMIT_APPROVED = EventSpec(
    "credit_limit.approved", 1, STREAM, "A credit limit was approved and is in force (审批)"
)
CREDIT_LIMIT_REJECTED = EventSpec(
    "credit_limit.rejected", 1, STREAM, "A proposed credit limit was rejected"
)
CREDIT_LIMIT_EXPIRED = EventSpec(
    "credit_limit.expired", 1, STREAM, "An approved credit limit reached its expiry date"
)
CREDIT_LIMIT_STEP_LATE = EventSpec(
    "credit_limit.step_late",
    1,
    STREAM,
    "A step of a limit's approval passed its deadline without being done (限时办结)",
)
RISK_FLAGGED = EventSpec(
    "risk.flagged",
    1,
    STREAM,
    "A customer was flagged as a risk (风险预警): by a signal or by hand; a team is required",
)
RISK_CLEARED = EventSpec("risk.cleared", 1, STREAM, "A customer's risk flag was cleared")

PUBLISHED: tuple[EventSpec, ...] = (
    RATING_ASSESSED,
    RATING_CONFIRMED,
    RATING_REJECTED,
    CREDIT_LIMIT_PROPOSED,
    CREDIT_LIMIT_REVIEWED,
    CREDIT_LIMIT_REFERRED,
    CREDIT_LIMIT_VOTED,
    CREDIT_LIMIT_APPROVED,
    CREDIT_LIMIT_REJECTED,
    CREDIT_LIMIT_EXPIRED,
    CREDIT_LIMIT_STEP_LATE,
    RISK_FLAGGED,
    RISK_CLEARED,
)
