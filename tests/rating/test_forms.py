"""The three printed forms of a limit as HTML and PDF: their figures, headings per customer kind,
signature blocks with the names and dates known, and who may print them."""

from __future__ import annotations

import base64
import re
import zlib
from typing import Any

import pytest

from crmkit.clock import business_today
from tests.customer.conftest import Api
from tests.rating.test_approvals import (
    LIMITS,
    approve,
    ok,
    problem,
    proposed_limit,
    review,
)
from tests.rating.test_committee import open_meeting, sign_off, vote

TODAY = business_today().isoformat()
TITLES = {
    "assessment": "客户信用等级评估表",
    "calculation": "客户授信额度测算表",
    "approval": "个人客户授信额度审议审批表",
}


def form(api: Api, limit_id: str, name: str, fmt: str = "html", who: str = "auditor.chen") -> Any:
    return api.as_(who).get(f"{LIMITS}/{limit_id}/forms/{name}?format={fmt}")


def html_of(api: Api, limit_id: str, name: str, who: str = "auditor.chen") -> str:
    resp = form(api, limit_id, name, who=who)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    page: str = resp.text
    assert page.startswith("<!DOCTYPE html>") and "size: A4" in page
    return page


def _pdf_strings(content: bytes) -> list[bytes]:
    """The literal strings ``( … )`` of a PDF content stream, escapes undone."""
    found: list[bytes] = []
    i = 0
    while (start := content.find(b"(", i)) >= 0:
        buf, j, depth = bytearray(), start + 1, 1
        while j < len(content):
            c = content[j]
            if c == 0x5C:  # backslash: an octal code or an escaped character
                k = j + 1
                while k < len(content) and k < j + 4 and 0x30 <= content[k] <= 0x37:
                    k += 1
                if k > j + 1:
                    buf.append(int(content[j + 1 : k], 8))
                    j = k
                    continue
                escaped = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("f"): 12}
                buf.append(escaped.get(content[j + 1], content[j + 1]))
                j += 2
                continue
            if c == 0x28:
                depth += 1
            elif c == 0x29:
                depth -= 1
                if depth == 0:
                    break
            buf.append(c)
            j += 1
        found.append(bytes(buf))
        i = j + 1
    return found


def pdf_text(pdf: bytes) -> str:
    """The text a PDF shows: its page streams decoded (ASCII85, then Flate), the strings of the
    CJK font read as UCS-2 (big-endian)."""
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    shown: list[str] = []
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        data = match.group(1).strip().removesuffix(b"~>")
        content = zlib.decompress(base64.a85decode(data))
        shown += [s.decode("utf-16-be") for s in _pdf_strings(content) if s and len(s) % 2 == 0]
    return "".join(shown)


def pdf_of(api: Api, limit_id: str, name: str) -> str:
    resp = form(api, limit_id, name, "pdf")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/pdf"
    return pdf_text(resp.content)


def approved_limit(api: Api, **kwargs: Any) -> dict[str, Any]:
    limit = proposed_limit(api, "1000000.00", **kwargs)
    ok(review(api, limit["id"]))
    approved = ok(approve(api, limit["id"], "president.zhao", note="Agreed within the plan."))
    return {**limit, **approved}


def test_the_assessment_form_lists_each_factor_with_its_points(api: Api) -> None:
    limit = approved_limit(api)
    rating = ok(api.as_("auditor.chen").get(f"/api/v1/ratings/{limit['assessment_id']}"))
    page = html_of(api, limit["id"], "assessment")
    assert "<h1>客户信用等级评估表</h1>" in page
    for line in rating["explanation"]:
        row = re.search(rf"<tr><td[^>]*>\d+</td><td>{re.escape(line['name'])}</td>.*?</tr>", page)
        assert row is not None, line["name"]
        assert f">{line['points']}<" in row.group(0) and f">{line['max_points']}<" in row.group(0)
    # The factors add up to the score: 9+9+7+6+6+11+6+9+8 = 71 of 100.
    assert '<tr class="total"><td></td><td>合计 Total</td>' in page
    assert '<td class="num">71.00</td><td class="num">100.00</td></tr>' in page
    assert "<th>认定等级 Final grade</th><td>A</td>" in page
    assert "individual v2026-01-01" in page
    assert "签字 Signature: manager.li" in page and "签字 Signature: approver.hq" in page
    assert f"日期 Date: {TODAY}" in page
    text = pdf_of(api, limit["id"], "assessment")
    assert "客户信用等级评估表" in text and "71.00" in text


def test_the_calculation_form_shows_each_step_and_the_parts(api: Api) -> None:
    limit = approved_limit(api)
    page = html_of(api, limit["id"], "calculation")
    assert "<h1>客户授信额度测算表</h1>" in page
    assert limit["calculation"], "the formula explains itself"
    for line in limit["calculation"]:
        assert f"<td>{line['label']}</td>" in page
    # Credit 0 + guaranteed 0 + secured 0 + adjustment 1,000,000.00 = 1,000,000.00.
    assert '<tr class="total"><td>综合授信额度 Total</td><td class="num">1,000,000.00</td>' in page
    assert "1,000,000.00 (Limit set by the credit plan for the test)" in page
    assert "<th>授信期限 Term</th><td>12 个月 months</td>" in page
    for post, name in (
        ("客户经理 Customer manager", "manager.li"),
        ("审查人 Reviewer", "approver.hq"),
    ):
        assert (
            f'<div class="post">{post}</div><div class="line">签字 Signature: {name}</div>' in page
        )
    text = pdf_of(api, limit["id"], "calculation")
    assert "客户授信额度测算表" in text and "1,000,000.00" in text


def test_the_approval_form_shows_the_trail_and_the_three_signatures(api: Api) -> None:
    limit = approved_limit(api)
    page = html_of(api, limit["id"], "approval")
    assert "<h1>个人客户授信额度审议审批表</h1>" in page
    assert "<th>借款人姓名 Borrower</th><td>Zhang San 张三</td>" in page
    assert "Visited the customer on 2026-11-20" in page  # the investigation report
    assert "Stable income; no overdue record" in page  # the risk analysis
    assert "建议同意 approve Income and collateral verified." in page
    for step in ("调查测算 proposal", "审查 review", "审批同意 approval"):
        assert f"<td>{step}</td>" in page
    assert f"<th>额度起始日 Start date</th><td>{limit['start_date']}</td>" in page
    assert f"<th>额度到期日 Expiry date</th><td>{limit['expiry_date']}</td>" in page
    assert "Agreed within the plan." in page
    signed = re.findall(
        r'<div class="post">(.*?)</div><div class="line">签字 Signature: (.*?)</div>'
        r'<div class="line">日期 Date: (.*?)</div>',
        page,
    )
    assert signed == [
        ("客户经理 Customer manager", "manager.li", TODAY),
        ("审查人 Reviewer", "approver.hq", TODAY),
        ("审批人 Approver", "president.zhao", TODAY),
    ]
    text = pdf_of(api, limit["id"], "approval")
    assert "个人客户授信额度审议审批表" in text and "president.zhao" in text


def test_blocks_nobody_signed_yet_stay_blank(api: Api) -> None:
    limit = proposed_limit(api, "100000.00")
    page = html_of(api, limit["id"], "approval")
    assert 'class="post">审查人 Reviewer</div><div class="line">签字 Signature: </div>' in page
    assert 'class="post">审批人 Approver</div><div class="line">签字 Signature: </div>' in page


@pytest.mark.parametrize(
    ("kind", "title", "name_label"),
    [
        ("corporate", "公司客户授信额度审议审批表", "企业名称 Enterprise"),
        ("individual", "个人客户授信额度审议审批表", "借款人姓名 Borrower"),
        ("farm_household", "农户授信额度审议审批表", "户主姓名 Head of household"),
    ],
)
def test_the_approval_form_heading_and_fields_follow_the_customer_kind(
    api: Api, kind: str, title: str, name_label: str
) -> None:
    limit = proposed_limit(api, "200000.00", kind=kind, name="Qingshan Farm 青山")
    page = html_of(api, limit["id"], "approval")
    assert f"<title>{title}</title>" in page and f"<h1>{title}</h1>" in page
    assert f"<th>{name_label}</th><td>Qingshan Farm 青山</td>" in page
    assert ("<th>业务条线 Business line</th>" in page) is (kind == "corporate")
    assert title in pdf_of(api, limit["id"], "approval")


def test_the_committees_approval_form_shows_the_votes_and_every_members_block(api: Api) -> None:
    limit = proposed_limit(api, "6000000.00", kind="corporate", name="Hengda Feed Co. 恒达饲料")
    ok(review(api, limit["id"]))
    ok(open_meeting(api, limit["id"]), 201)
    ok(vote(api, limit["id"], "committee.wu", "for", "Cash flow covers it."), 201)
    ok(vote(api, limit["id"], "committee.zheng", "abstain", "Sector risk."), 201)
    ok(vote(api, limit["id"], "committee.feng", "for", "Collateral adequate."), 201)
    ok(sign_off(api, limit["id"], minutes="Meeting No. 7: approved, 2 for, 1 abstaining."))
    page = html_of(api, limit["id"], "approval")
    assert "<h1>公司客户授信额度审议审批表</h1>" in page
    assert (
        "<td>committee.wu (主任委员 chair)</td><td>同意 for</td><td>Cash flow covers it.</td>"
        in (page)
    )
    assert "<td>committee.zheng</td><td>弃权 abstain</td><td>Sector risk.</td>" in page
    assert "<td>合计 Tally</td><td>2 同意 / 0 反对 / 1 弃权</td>" in page
    assert "Meeting No. 7: approved, 2 for, 1 abstaining." in page
    posts = re.findall(
        r'<div class="post">(.*?)</div><div class="line">签字 Signature: (.*?)<', page
    )
    assert posts == [
        ("客户经理 Customer manager", "manager.li"),
        ("审查人 Reviewer", "approver.hq"),
        ("贷审会主任委员 Committee chair", "committee.wu"),
        ("贷审会委员 Committee member", "committee.zheng"),
        ("贷审会委员 Committee member", "committee.feng"),
    ]
    text = pdf_of(api, limit["id"], "approval")
    assert "贷审会主任委员" in text and "committee.feng" in text


def test_text_from_people_is_escaped(api: Api) -> None:
    limit = proposed_limit(api, "100000.00", name="<script>alert(1)</script>")
    page = html_of(api, limit["id"], "approval")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_accept_header_asks_for_the_pdf(api: Api) -> None:
    limit = proposed_limit(api, "100000.00")
    resp = api.as_("auditor.chen").get(
        f"{LIMITS}/{limit['id']}/forms/calculation", headers={"Accept": "application/pdf"}
    )
    assert resp.status_code == 200 and resp.content.startswith(b"%PDF-")
    assert (
        resp.headers["content-disposition"] == f'inline; filename="calculation-{limit["id"]}.pdf"'
    )
    plain = api.as_("auditor.chen").get(f"{LIMITS}/{limit['id']}/forms/calculation")
    assert plain.headers["content-type"].startswith("text/html")


def test_who_prints_the_forms(api: Api) -> None:
    limit = proposed_limit(api, "100000.00")
    for reader in ("auditor.chen", "manager.li", "approver.qian", "risk.he", "admin"):
        for name in TITLES:
            assert form(api, limit["id"], name, who=reader).status_code == 200, (reader, name)
    err = problem(form(api, limit["id"], "approval", who="manager.zhou"), 403)
    assert "you may not read the limits of customer" in err["detail"]
    problem(form(api, limit["id"], "approval", who="teller.wang"), 403)
    problem(form(api, limit["id"], "contract"), 422)
    problem(form(api, limit["id"], "approval", "docx"), 422)
