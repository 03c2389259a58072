"""The three printed forms of a credit limit, as HTML and PDF with signature blocks:

- 客户信用等级评估表 (assessment): the grade's scorecard, factor by factor with points;
- 客户授信额度测算表 (calculation): the limit's calculation step by step and its parts;
- 客户授信额度审议审批表 (approval): the proposal, review, decision trail and committee votes;
  its heading and fields differ for corporate, individual and farm-household customers.

A form is first built as a neutral :class:`Form` (fields, tables, texts, signatures), then
rendered; the HTML and the PDF say the same thing. Names are the staff ids who acted, dates the
business dates (Asia/Shanghai) they acted on; a block nobody signed yet stays blank.
"""

from __future__ import annotations

import html
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crmkit.clock import BUSINESS_TZ, business_today
from crmkit.errors import NotFound
from services.rating import approvals, committee
from services.rating.models import Assessment, CreditLimit, CreditLimitStep, customer_refs
from services.rating.models_committee import CommitteeMeeting, CommitteeVote
from services.rating.schemas_approvals import FormName

PDF_MEDIA_TYPE = "application/pdf"
HTML_MEDIA_TYPE = "text/html; charset=utf-8"
CJK_FONT = "STSong-Light"

KIND_LABELS = {
    "individual": "个人 individual",
    "farm_household": "农户 farm household",
    "individual_business": "个体工商户 individual business",
    "corporate": "公司 corporate",
    "institution": "机关事业单位 institution",
}
STATUS_LABELS = {
    "incomplete": "资料不全 incomplete",
    "assessed": "待认定 assessed",
    "confirmed": "已认定 confirmed",
    "rejected": "已否决 rejected",
    "superseded": "已替代 superseded",
    "proposed": "待审查 proposed",
    "reviewed": "待审批 reviewed",
    "committee": "待贷审会 committee",
    "approved": "已批准 approved",
    "expired": "已到期 expired",
}
STEP_LABELS = {
    "propose": "调查测算 proposal",
    "review": "审查 review",
    "refer": "提交贷审会 referral",
    "committee_open": "召开贷审会 committee convened",
    "vote": "委员表决 vote",
    "sign_off": "主任委员签发 sign-off",
    "approve": "审批同意 approval",
    "reject": "审批否决 rejection",
    "supersede": "被替代 superseded",
    "expire": "到期 expiry",
}
VOTE_LABELS = {"for": "同意 for", "against": "反对 against", "abstain": "弃权 abstain"}
RECOMMENDATION_LABELS = {"approve": "建议同意 approve", "reject": "建议否决 reject"}


@dataclass(frozen=True)
class ApprovalHeading:
    """What the approval form of one group of customer kinds says differently."""

    title: str
    subtitle: str
    name_label: str
    id_label: str
    grade_label: str


APPROVAL_HEADINGS = {
    "corporate": ApprovalHeading(
        "公司客户授信额度审议审批表",
        "Credit-limit review and approval form — corporate customer",
        "企业名称 Enterprise",
        "客户编号 Customer no.",
        "企业信用等级 Enterprise grade",
    ),
    "individual": ApprovalHeading(
        "个人客户授信额度审议审批表",
        "Credit-limit review and approval form — individual customer",
        "借款人姓名 Borrower",
        "客户编号 Customer no.",
        "个人信用等级 Personal grade",
    ),
    "farm_household": ApprovalHeading(
        "农户授信额度审议审批表",
        "Credit-limit review and approval form — farm household",
        "户主姓名 Head of household",
        "农户编号 Household no.",
        "农户信用等级 Household grade",
    ),
}
# Which approval form each customer kind uses.
APPROVAL_GROUP = {
    "corporate": "corporate",
    "institution": "corporate",
    "individual": "individual",
    "individual_business": "individual",
    "farm_household": "farm_household",
}


# -- the neutral form ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    """A table: a caption, column headers and rows (the last row may be a total)."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    total: tuple[str, ...] | None = None
    # Relative column widths (equal when not given).
    widths: tuple[float, ...] | None = None

    def shares(self) -> tuple[float, ...]:
        """Each column's share of the width, adding up to 1."""
        weights = self.widths or (1.0,) * len(self.headers)
        return tuple(w / sum(weights) for w in weights)


@dataclass(frozen=True)
class Text:
    """A block of free text under a caption (a report, an opinion, the minutes)."""

    caption: str
    body: str


@dataclass(frozen=True)
class Signature:
    """A signature block: the post, who signed (blank if nobody yet) and the date."""

    post: str
    name: str = ""
    on: str = ""


@dataclass(frozen=True)
class Form:
    code: str
    title: str
    subtitle: str
    reference: str
    fields: tuple[tuple[str, str], ...]
    sections: tuple[Grid | Text, ...]
    signatures: tuple[Signature, ...]
    printed_on: str = field(default_factory=lambda: business_today().isoformat())


# -- values as printed --------------------------------------------------------------------------
def amount(value: Decimal | str | None) -> str:
    """Money with thousands separators and two places; blank when unknown."""
    if value is None or value == "":
        return ""
    try:
        return f"{Decimal(str(value)):,.2f}"
    except InvalidOperation:
        return str(value)


def day_of(moment: datetime | None) -> str:
    """The business date of a moment (Asia/Shanghai), blank when unknown."""
    return moment.astimezone(BUSINESS_TZ).date().isoformat() if moment else ""


def when(moment: datetime | None) -> str:
    return moment.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M") if moment else ""


def text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是 yes" if value else "否 no"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _customer(session: Session, customer_id: str) -> tuple[str, str | None]:
    row = session.execute(
        select(customer_refs.c.name, customer_refs.c.kind).where(
            customer_refs.c.customer_id == customer_id
        )
    ).one_or_none()
    return (str(row.name), str(row.kind)) if row is not None else ("", None)


def _steps(session: Session, limit_id: str) -> list[CreditLimitStep]:
    return list(
        session.scalars(
            select(CreditLimitStep)
            .where(CreditLimitStep.credit_limit_id == limit_id)
            .order_by(CreditLimitStep.at, CreditLimitStep.id)
        ).all()
    )


# -- the three forms ----------------------------------------------------------------------------
def build_form(session: Session, limit: CreditLimit, name: FormName) -> Form:
    """The form ``name`` of ``limit``, filled with what is known of it."""
    if name is FormName.assessment:
        return assessment_form(session, limit)
    if name is FormName.calculation:
        return calculation_form(session, limit)
    return approval_form(session, limit)


def assessment_form(session: Session, limit: CreditLimit) -> Form:
    """客户信用等级评估表: the assessment the limit's grade comes from."""
    assessment = session.get(Assessment, limit.assessment_id)
    customer_name, _ = _customer(session, limit.customer_id)
    if assessment is None:  # the foreign key keeps it; only a broken copy lacks it
        raise NotFound(f"no assessment {limit.assessment_id} behind credit limit {limit.id}")
    lines = assessment.lines or []
    rows = tuple(
        (
            str(n),
            text(line.get("name") or line.get("code")),
            _side(line.get("side")),
            text(line.get("value")),
            text(line.get("bin")),
            amount(line.get("points")),
            amount(line.get("max_points")),
        )
        for n, line in enumerate(lines, start=1)
    )
    maximum = sum((Decimal(str(line.get("max_points") or 0)) for line in lines), Decimal(0))
    fields = (
        ("客户名称 Customer", customer_name),
        ("客户编号 Customer no.", assessment.customer_id),
        ("客户类型 Kind", KIND_LABELS.get(assessment.kind, assessment.kind)),
        ("所属机构 Org unit", assessment.org_unit),
        ("评分卡 Scorecard", f"{assessment.scorecard_id} v{assessment.scorecard_version}"),
        ("评估日期 Assessed on", day_of(assessment.assessed_at)),
        ("评估得分 Score", amount(assessment.score)),
        ("系统评定等级 Computed grade", text(assessment.computed_grade)),
        ("建议等级 Proposed grade", text(assessment.proposed_grade)),
        ("调整理由 Adjustment reason", text(assessment.adjustment_reason)),
        ("认定等级 Final grade", text(assessment.final_grade)),
        ("有效期至 Valid until", text(assessment.valid_until)),
        ("状态 Status", STATUS_LABELS.get(assessment.status, assessment.status)),
    )
    sections: list[Grid | Text] = [
        Grid(
            "评分因素 Factors",
            (
                "序号 No.",
                "因素 Factor",
                "类别 Side",
                "取值 Value",
                "档次 Bin",
                "得分 Points",
                "满分 Max",
            ),
            rows,
            ("", "合计 Total", "", "", "", amount(assessment.score), amount(maximum)),
            widths=(0.7, 3.0, 1.6, 1.6, 2.6, 1.1, 1.1),
        )
    ]
    if assessment.missing:
        sections.append(Text("缺少资料 Inputs missing", ", ".join(assessment.missing)))
    if assessment.decision_note:
        sections.append(Text("认定意见 Decision note", assessment.decision_note))
    signatures = (
        Signature(
            "客户经理 Customer manager", assessment.assessed_by, day_of(assessment.assessed_at)
        ),
        Signature("审批人 Approver", text(assessment.decided_by), day_of(assessment.decided_at)),
    )
    return Form(
        "assessment",
        "客户信用等级评估表",
        "Customer credit-grade assessment",
        assessment.id,
        fields,
        tuple(sections),
        signatures,
    )


def _side(side: object) -> str:
    return {"financial": "财务 financial", "non_financial": "非财务 non-financial"}.get(
        str(side), text(side)
    )


def calculation_form(session: Session, limit: CreditLimit) -> Form:
    """客户授信额度测算表: how the limit was calculated, step by step, and its parts."""
    customer_name, _ = _customer(session, limit.customer_id)
    fields = (
        ("客户名称 Customer", customer_name),
        ("客户编号 Customer no.", limit.customer_id),
        ("客户类型 Kind", KIND_LABELS.get(limit.kind, limit.kind)),
        ("所属机构 Org unit", limit.org_unit),
        ("信用等级 Grade", limit.grade),
        ("测算公式 Formula", f"{limit.formula_id} v{limit.formula_version}"),
        ("授信期限 Term", f"{limit.term_months} 个月 months"),
        ("循环使用 Revolving", text(limit.revolving)),
        ("测算日期 Calculated on", day_of(limit.proposed_at)),
    )
    steps = tuple(
        (str(n), text(line.get("label")), text(line.get("formula")), text(line.get("value")))
        for n, line in enumerate(limit.calculation or [], start=1)
    )
    sections: list[Grid | Text] = [
        Grid(
            "测算过程 Calculation",
            ("序号 No.", "项目 Item", "公式 Formula", "结果 Value"),
            steps,
            widths=(0.7, 3.0, 4.0, 2.0),
        ),
        _amounts_grid(limit),
        *_guarantee_grids(limit),
    ]
    if limit.pricing:
        sections.append(
            Text("定价提示 Pricing hint", "; ".join(f"{k}: {v}" for k, v in limit.pricing.items()))
        )
    signatures = (
        Signature("客户经理 Customer manager", limit.proposed_by, day_of(limit.proposed_at)),
        Signature("审查人 Reviewer", text(limit.reviewed_by), day_of(limit.reviewed_at)),
    )
    return Form(
        "calculation",
        "客户授信额度测算表",
        "Credit-limit calculation",
        limit.id,
        fields,
        tuple(sections),
        signatures,
    )


def _amounts_grid(limit: CreditLimit) -> Grid:
    adjustment = amount(limit.adjustment_amount)
    if limit.adjustment_reason:
        adjustment = f"{adjustment} ({limit.adjustment_reason})"
    return Grid(
        "额度构成 Amounts (CNY)",
        ("项目 Part", "金额 Amount"),
        (
            ("信用额度 Credit", amount(limit.credit_amount)),
            ("保证额度 Guaranteed", amount(limit.guaranteed_amount)),
            ("抵质押额度 Secured", amount(limit.secured_amount)),
            ("调整 Adjustment", adjustment),
        ),
        ("综合授信额度 Total", amount(limit.total_amount)),
    )


def _guarantee_grids(limit: CreditLimit) -> list[Grid]:
    grids: list[Grid] = []
    if limit.collaterals:
        grids.append(
            Grid(
                "抵质押物 Collateral",
                ("类型 Type", "评估价值 Appraised value", "说明 Description"),
                tuple(
                    (
                        text(c.get("type")),
                        amount(c.get("appraised_value")),
                        text(c.get("description")),
                    )
                    for c in limit.collaterals
                ),
            )
        )
    if limit.guarantors:
        grids.append(
            Grid(
                "保证人 Guarantors",
                ("名称 Name", "担保金额 Amount", "净资产 Net assets", "信用等级 Grade"),
                tuple(
                    (
                        text(g.get("name")),
                        amount(g.get("amount")),
                        amount(g.get("net_assets")),
                        text(g.get("grade")),
                    )
                    for g in limit.guarantors
                ),
            )
        )
    if limit.sub_limits:
        grids.append(
            Grid(
                "分项额度 Sub-limits",
                ("产品 Product", "金额 Amount"),
                tuple((text(s.get("product")), amount(s.get("amount"))) for s in limit.sub_limits),
            )
        )
    return grids


def _guarantee_mode(limit: CreditLimit) -> str:
    """How the limit is secured, as the approval form states it 担保方式."""
    modes = []
    if limit.credit_amount > 0:
        modes.append("信用 credit")
    if limit.guaranteed_amount > 0:
        modes.append("保证 guarantee" if len(limit.guarantors) < 2 else "联保 joint guarantee")
    if limit.secured_amount > 0:
        modes.append("抵质押 collateral")
    return " + ".join(modes) or "信用 credit"


def approval_form(session: Session, limit: CreditLimit) -> Form:
    """客户授信额度审议审批表 of the customer's kind: the proposal, the reports, the review, the
    decision trail and, for the committee, the votes and minutes."""
    customer_name, kind = _customer(session, limit.customer_id)
    group = APPROVAL_GROUP.get(kind or limit.kind, "individual")
    heading = APPROVAL_HEADINGS[group]
    meeting = committee.meeting_of(session, limit.id)
    votes = committee.votes_of(session, meeting.id) if meeting is not None else []
    steps = _steps(session, limit.id)
    fields = [
        (heading.name_label, customer_name),
        (heading.id_label, limit.customer_id),
        ("客户类型 Kind", KIND_LABELS.get(limit.kind, limit.kind)),
        ("所属机构 Org unit", limit.org_unit),
    ]
    if group == "corporate":
        fields.append(("业务条线 Business line", limit.business_line))
    fields += [
        (heading.grade_label, limit.grade),
        ("综合授信额度 Total limit (CNY)", amount(limit.total_amount)),
        ("担保方式 Security", _guarantee_mode(limit)),
        ("授信期限 Term", f"{limit.term_months} 个月 months"),
        ("循环使用 Revolving", text(limit.revolving)),
        ("额度起始日 Start date", text(limit.start_date)),
        ("额度到期日 Expiry date", text(limit.expiry_date)),
        ("状态 Status", STATUS_LABELS.get(limit.status, limit.status)),
    ]
    sections: list[Grid | Text] = [_amounts_grid(limit)]
    if group == "corporate":
        sections += _guarantee_grids(limit)
    elif limit.guarantors or limit.collaterals:
        sections += [g for g in _guarantee_grids(limit) if not g.caption.startswith("分项")]
    sections += [
        Text("调查报告 Investigation report", limit.investigation_report),
        Text("风险分析 Risk analysis", limit.risk_analysis),
    ]
    review = next((s for s in steps if s.step == "review"), None)
    if limit.review_opinion is not None:
        recommendation = approvals.recommendation_of(review.note if review else None)
        label = RECOMMENDATION_LABELS.get(recommendation or "", "")
        sections.append(Text("审查意见 Review opinion", f"{label} {limit.review_opinion}".strip()))
    sections.append(
        Grid(
            "审批流程 Decision trail",
            ("环节 Step", "经办人 By", "时间 At", "办结期限 Due", "逾期 Late", "意见 Note"),
            tuple(
                (
                    _step_label(s.step),
                    s.actor,
                    when(s.at),
                    when(s.due_at),
                    "是 yes" if s.late else "",
                    text(s.note),
                )
                for s in steps
            ),
            widths=(2.0, 1.7, 1.9, 1.9, 0.8, 3.7),
        )
    )
    if meeting is not None:
        sections.append(_votes_grid(meeting, votes))
        if meeting.minutes:
            sections.append(Text("会议纪要 Minutes", meeting.minutes))
    if limit.decision_note:
        sections.append(Text("审批结论 Decision", limit.decision_note))
    return Form(
        "approval",
        heading.title,
        heading.subtitle,
        limit.id,
        tuple(fields),
        tuple(sections),
        _approval_signatures(limit, meeting, votes),
    )


def _step_label(step: str) -> str:
    if step.startswith(approvals.LATE_PREFIX):
        waited = step.removeprefix(approvals.LATE_PREFIX)
        return f"超期 late: {STEP_LABELS.get(waited, waited)}"
    return STEP_LABELS.get(step, step)


def _votes_grid(meeting: CommitteeMeeting, votes: Sequence[CommitteeVote]) -> Grid:
    cast = {v.member: v for v in votes}
    rows = tuple(
        (
            member + (" (主任委员 chair)" if member == meeting.chair else ""),
            VOTE_LABELS.get(cast[member].vote, cast[member].vote) if member in cast else "",
            cast[member].opinion if member in cast else "",
            when(cast[member].at) if member in cast else "",
        )
        for member in meeting.members
    )
    total = (
        "合计 Tally",
        f"{sum(v.vote == 'for' for v in votes)} 同意 / {sum(v.vote == 'against' for v in votes)}"
        f" 反对 / {sum(v.vote == 'abstain' for v in votes)} 弃权",
        "",
        "",
    )
    return Grid(
        "贷审会表决 Committee votes",
        ("委员 Member", "表决 Vote", "意见 Opinion", "时间 At"),
        rows,
        total,
        widths=(2.6, 1.6, 4.0, 1.8),
    )


def _approval_signatures(
    limit: CreditLimit, meeting: CommitteeMeeting | None, votes: Sequence[CommitteeVote]
) -> tuple[Signature, ...]:
    signatures = [
        Signature("客户经理 Customer manager", limit.proposed_by, day_of(limit.proposed_at)),
        Signature("审查人 Reviewer", text(limit.reviewed_by), day_of(limit.reviewed_at)),
    ]
    if meeting is None:
        signatures.append(
            Signature("审批人 Approver", text(limit.decided_by), day_of(limit.decided_at))
        )
        return tuple(signatures)
    signatures.append(
        Signature("贷审会主任委员 Committee chair", meeting.chair, day_of(meeting.signed_at))
    )
    voted = {v.member: v.at for v in votes}
    signatures += [
        Signature("贷审会委员 Committee member", member, day_of(voted.get(member)))
        for member in meeting.members
        if member != meeting.chair
    ]
    return tuple(signatures)


# -- HTML ---------------------------------------------------------------------------------------
_CSS = """
@page { size: A4; margin: 16mm 14mm; }
body { font-family: "Songti SC", "SimSun", "Noto Serif CJK SC", serif; font-size: 10.5pt;
       color: #000; margin: 0 auto; max-width: 182mm; }
h1 { font-size: 17pt; text-align: center; margin: 0 0 2mm; letter-spacing: 1pt; }
.subtitle { text-align: center; margin: 0 0 4mm; font-size: 9.5pt; }
.reference { display: flex; justify-content: space-between; font-size: 8.5pt; margin-bottom: 2mm; }
table { width: 100%; border-collapse: collapse; margin-bottom: 4mm; page-break-inside: auto; }
th, td { border: 0.6pt solid #000; padding: 1.2mm 1.6mm; vertical-align: top; text-align: left; }
th { background: #eee; font-weight: bold; }
td.num { text-align: right; white-space: nowrap; }
tr.total td { font-weight: bold; }
table.fields th { width: 32%; }
h2 { font-size: 11pt; margin: 3mm 0 1.5mm; }
.text { border: 0.6pt solid #000; padding: 2mm; min-height: 10mm; white-space: pre-wrap;
        margin-bottom: 4mm; }
.signatures { display: flex; flex-wrap: wrap; gap: 4mm; margin-top: 6mm; }
.signature { flex: 1 1 54mm; border: 0.6pt solid #000; padding: 2mm; min-height: 20mm; }
.signature .post { font-weight: bold; }
.signature .line { margin-top: 3mm; }
"""


def render_html(form: Form) -> str:
    """The form as one printable HTML page (A4, inline CSS, nothing loaded from elsewhere)."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>{e(form.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(form.title)}</h1>",
        f'<p class="subtitle">{e(form.subtitle)}</p>',
        f'<div class="reference"><span>编号 Ref. {e(form.reference)}</span>'
        f"<span>打印日期 Printed {e(form.printed_on)}</span></div>",
        '<table class="fields">',
        *(f"<tr><th>{e(label)}</th><td>{e(value)}</td></tr>" for label, value in form.fields),
        "</table>",
    ]
    for section in form.sections:
        parts.append(f"<h2>{e(section.caption)}</h2>")
        if isinstance(section, Text):
            parts.append(f'<div class="text">{e(section.body)}</div>')
            continue
        parts.append("<table><colgroup>")
        parts += [f'<col style="width: {share:.1%}">' for share in section.shares()]
        parts.append("</colgroup><thead><tr>")
        parts += [f"<th>{e(h)}</th>" for h in section.headers]
        parts.append("</tr></thead><tbody>")
        parts += [_html_row(row) for row in section.rows]
        if section.total is not None:
            parts.append(_html_row(section.total, css="total"))
        parts.append("</tbody></table>")
    parts.append('<div class="signatures">')
    for sig in form.signatures:
        parts.append(
            f'<div class="signature"><div class="post">{e(sig.post)}</div>'
            f'<div class="line">签字 Signature: {e(sig.name)}</div>'
            f'<div class="line">日期 Date: {e(sig.on)}</div></div>'
        )
    parts.append("</div></body></html>")
    return "\n".join(parts)


def _html_row(cells: Iterable[str], css: str = "") -> str:
    klass = f' class="{css}"' if css else ""
    tds = "".join(
        f'<td class="num">{html.escape(c)}</td>' if _numeric(c) else f"<td>{html.escape(c)}</td>"
        for c in cells
    )
    return f"<tr{klass}>{tds}</tr>"


def _numeric(cell: str) -> bool:
    return bool(cell) and cell.replace(",", "").replace(".", "", 1).lstrip("-").isdigit()


# -- PDF ----------------------------------------------------------------------------------------
@cache
def _pdf_font() -> str:
    """Register the CJK font reportlab ships (Adobe's STSong-Light, no file needed) once."""
    from reportlab.pdfbase import pdfmetrics  # type: ignore[import-untyped]
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont  # type: ignore[import-untyped]

    pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    return CJK_FONT


def render_pdf(form: Form) -> bytes:
    """The form as an A4 PDF; Chinese in STSong-Light."""
    from reportlab.lib import colors  # type: ignore[import-untyped]
    from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
    from reportlab.lib.styles import ParagraphStyle  # type: ignore[import-untyped]
    from reportlab.lib.units import mm  # type: ignore[import-untyped]
    from reportlab.platypus import (  # type: ignore[import-untyped]
        Paragraph,
        SimpleDocTemplate,
        Spacer,
        Table,
        TableStyle,
    )

    font = _pdf_font()
    body = ParagraphStyle("body", fontName=font, fontSize=9, leading=12, wordWrap="CJK")
    bold = ParagraphStyle("head", parent=body, textColor=colors.black)
    title = ParagraphStyle("title", fontName=font, fontSize=16, leading=22, alignment=1)
    subtitle = ParagraphStyle("subtitle", parent=body, alignment=1, spaceAfter=6)
    caption = ParagraphStyle(
        "caption", parent=body, fontSize=10.5, leading=14, spaceBefore=6, spaceAfter=3
    )
    grid = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("FONTNAME", (0, 0), (-1, -1), font),
        ]
    )
    width = A4[0] - 28 * mm

    def para(value: str, style: Any = body) -> Any:
        return Paragraph(html.escape(value).replace("\n", "<br/>"), style)

    right = ParagraphStyle("right", parent=body, alignment=2)
    reference = Table(
        [[para(f"编号 Ref. {form.reference}"), para(f"打印日期 Printed {form.printed_on}", right)]],
        colWidths=[width * 0.7, width * 0.3],
    )
    reference.setStyle(TableStyle([("LEFTPADDING", (0, 0), (0, 0), 0)]))
    story: list[Any] = [para(form.title, title), para(form.subtitle, subtitle), reference]
    fields = Table(
        [[para(label, bold), para(value)] for label, value in form.fields],
        colWidths=[width * 0.32, width * 0.68],
    )
    fields.setStyle(grid)
    fields.setStyle(TableStyle([("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#eeeeee"))]))
    story.append(fields)
    for section in form.sections:
        story.append(para(section.caption, caption))
        if isinstance(section, Text):
            box = Table([[para(section.body)]], colWidths=[width])
            box.setStyle(grid)
            story.append(box)
            continue
        rows = [[para(h, bold) for h in section.headers]]
        rows += [[para(c) for c in row] for row in section.rows]
        if section.total is not None:
            rows.append([para(c, bold) for c in section.total])
        table = Table(rows, colWidths=[width * share for share in section.shares()], repeatRows=1)
        table.setStyle(grid)
        table.setStyle(TableStyle([("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee"))]))
        story.append(table)
    story.append(Spacer(1, 6 * mm))
    cells = [
        para(f"{sig.post}\n签字 Signature: {sig.name}\n日期 Date: {sig.on}")
        for sig in form.signatures
    ]
    per_row = 3
    sig_rows = [cells[i : i + per_row] for i in range(0, len(cells), per_row)]
    sig_rows[-1] += [para("")] * (per_row - len(sig_rows[-1]))
    signatures = Table(
        sig_rows, colWidths=[width / per_row] * per_row, rowHeights=[22 * mm] * len(sig_rows)
    )
    signatures.setStyle(grid)
    story.append(signatures)

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=14 * mm,
        rightMargin=14 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title=form.title,
        subject=form.subtitle,
        author="rating",
    )
    doc.build(story)
    return out.getvalue()
