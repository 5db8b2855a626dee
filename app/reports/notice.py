"""The public notice (公示) of households proposed to enter or leave the register: list, notice
period (at least 7 days; a 监测识别 notice at least 5, app.core.procedures.min_notice_days), place, contact for objections, signature lines.

The renderer takes the (household document, proposal) pairs and the notice facts as parameters, so it
does not depend on how proposals are stored. ID numbers are never printed on a notice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from app.core import procedures
from app.core.income import per_capita
from app.reports.card import latest_income
from app.reports.common import CJK, FONT_CMD, GRID, HEAD_BG, ReportError, head_para, markup, numbered_canvas, para, register_fonts, styles
from app.reports.context import Context, money

MIN_DAYS = procedures.MIN_NOTICE_DAYS  # entry and exit; min_days(kind) for the others
KINDS = {"entry": "拟纳入建档立卡贫困户", "exit": "拟退出(脱贫)贫困户"}
ANNOUNCED = {"entry": "新识别(纳入)建档立卡贫困户", "exit": "贫困户脱贫退出"}
KIND_WORDS = {"monitor": "监测识别", "eliminate": "风险消除"}  # named in the too-short message
LEVELS = ("village", "township", "county")  # 村内公示, 乡级公示 (second 公示), 县级公告
WIDTH = A4[0] - 36 * mm
PAD = 3  # left and right padding of the list's cells, points


@dataclass
class NoticeInfo:
    start: dt.date
    end: dt.date
    place: str
    contact: str
    phone: str = ""
    issuer: str = ""  # e.g. "龙井村村民委员会"; default: the village's name + 村民委员会

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def check(self, level: str = "village", kind: str | None = None) -> None:
        """Refuse a period too short for the notice's kind (monitor: 5 days, the others 7), an empty place
        or contact. `level` "county": a 公告, only dated."""
        least = procedures.min_notice_days(kind)
        if level == "county":  # a 公告 announces a decision: no objection period, no place of display required
            return
        if self.end < self.start:
            raise ReportError(f"公示结束日期 {self.end.isoformat()} 早于开始日期 {self.start.isoformat()}:请核对日期")
        if self.days < least:
            raise ReportError(f"公示期 {self.start.isoformat()} 至 {self.end.isoformat()} 只有 {self.days} 天:"
                              f"{KIND_WORDS.get(kind, '')}公示期至少 {least} 天,请推迟结束日期")
        if not self.place.strip():
            raise ReportError("请填写公示地点(如“村委会公示栏”)")
        if not self.contact.strip():
            raise ReportError("请填写受理异议的联系人(如“村委会 张三”)")


def _note(proposal: dict) -> str:
    """申报类型 (when 返贫纳入), 申报理由 and the village review's vote, from a proposal dict
    (app.services.proposals); for an exit that failed a criterion, the unmet items and the written
    justification first."""
    parts = []
    if proposal.get("assessed_failures"):
        parts.append(f"未达标:{proposal['assessed_failures']}")
        if proposal.get("justification"):
            parts.append(f"书面说明:{proposal['justification']}")
    if proposal.get("proposal_kind") == "return":
        parts.append("返贫纳入")
    for key in ("reasons", "reason", "note"):
        if proposal.get(key):
            parts.append(str(proposal[key]))
            break
    votes = proposal.get("review_votes_for")
    if votes is not None:
        against = proposal.get("review_votes_against")
        parts.append(f"评议赞成 {votes} 票" + (f"、反对 {against} 票" if against is not None else ""))
    return ";".join(parts)


def period_of(items: list[tuple[dict, dict]]) -> tuple[dt.date, dt.date] | None:
    """The notice period recorded on the proposals, if any. One notice has one period: proposals
    that recorded different periods are refused (ReportError), naming the households and periods."""
    periods: dict[tuple[dt.date, dt.date], list[str]] = {}
    for doc, p in items:
        try:
            if p.get("notice_start") and p.get("notice_end"):
                period = (dt.date.fromisoformat(str(p["notice_start"])[:10]),
                          dt.date.fromisoformat(str(p["notice_end"])[:10]))
                periods.setdefault(period, []).append(str(doc.get("head_name") or "?"))
        except ValueError:
            continue
    if len(periods) > 1:
        named = ";".join(f"{'、'.join(names[:3])}{' 等' if len(names) > 3 else ''}:{_date(a)}至{_date(b)}"
                         for (a, b), names in sorted(periods.items()))
        raise ReportError(f"这些申报记录了不同的公示期({named}),一张公示只能有一个公示期。"
                          "请用 jiandang notice-period 把它们设为同一公示期后再打印")
    return next(iter(periods)) if periods else None


def check_reviewed_before(items: list[tuple[dict, dict]], start: dt.date) -> None:
    """A household is publicly noticed only after its village review (民主评议): a proposal whose
    review meeting is after the notice's first day is refused by name."""
    late = []
    for doc, p in items:
        meeting = str(p.get("review_meeting_date") or p.get("review_date") or "")[:10]
        if meeting and meeting > start.isoformat():
            late.append(f"{doc.get('head_name') or '?'}(评议 {meeting})")
    if late:
        raise ReportError(f"公示开始日期 {start.isoformat()} 早于这些户的村级评议日期:{'、'.join(late)}。"
                          "评议之后才能公示,请推迟公示开始日期")


def _date(d: dt.date) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def notice_rows(kind: str, items: list[tuple[dict, dict]], ctx: Context,
                level: str = "village") -> tuple[list[str], list[float], list[list[str]]]:
    if kind == "entry":
        headings = ["序号", "村民小组", "户主姓名", "家庭人口", "识别标准", "贫困户属性", "主要致贫原因", "备注"]
        widths = [10, 16, 20, 17, 18, 24, 22, 37]
    else:
        headings = ["序号", "村民小组", "户主姓名", "家庭人口", "年人均纯收入(元)", "扶贫标准(元)", "贫困户属性", "备注"]
        widths = [10, 16, 20, 17, 26, 20, 22, 33]
    if level != "village":  # a township's or county's notice lists several villages
        headings.insert(1, "村")
        widths.insert(1, 18)
    rows = []
    for i, (doc, proposal) in enumerate(items, 1):
        people = str(len(doc.get("members", [])) or doc.get("family_size") or "")
        row = [str(i), str(doc.get("group") or ""), str(doc.get("head_name") or ""), people]
        if level != "village":
            row.insert(1, ctx.division(doc.get("village_code")))
        if kind == "entry":
            row += [ctx.show("household", "identification_standard", doc.get("identification_standard")),
                    ctx.show("household", "attribute", doc.get("attribute")),
                    ctx.show("household", "main_cause", doc.get("main_cause"))]
        else:
            income = latest_income(doc)
            size = doc.get("family_size") if isinstance(doc.get("family_size"), int) else len(doc.get("members", []))
            line, _ = ctx.line_for(income["year"]) if income else (None, None)
            pc = per_capita(income, size) if income else None
            if pc is None and proposal and proposal.get("assessed_per_capita") is not None:
                pc, line = proposal.get("assessed_per_capita"), proposal.get("assessed_line")
            row += [money(pc, 2), money(line),
                    ctx.show("household", "attribute", doc.get("attribute"))]
        row.append(_note(proposal or {}))
        rows.append(row)
    return headings, widths, rows


_STEPS = {  # what each level's notice says was done before it
    ("entry", "village"): "经农户申请、村民小组提名、村级民主评议",
    ("entry", "township"): "经农户申请、村民小组提名、村级民主评议、村内公示和乡(镇)初核",
    ("entry", "county"): "经农户申请、村民小组提名、村级民主评议、村内公示、乡(镇)初核和公示、县级审定",
    ("exit", "village"): "经村两委和驻村工作队核实、民主评议",
    ("exit", "township"): "经村两委和驻村工作队核实、民主评议、村内公示和乡(镇)初核",
    ("exit", "county"): "经村两委和驻村工作队核实、民主评议、村内公示、乡(镇)初核和县级审定",
}


def _notice_body(kind: str, level: str, items: list[tuple[dict, dict]]) -> str:
    steps = _STEPS[(kind, level)]
    n = len(items)
    if level == "county":
        verb = "纳入建档立卡贫困户" if kind == "entry" else "退出(脱贫)"
        procedure = "建档立卡贫困户识别程序" if kind == "entry" else "贫困户退出程序"
        return f"根据{procedure},{steps},以下 {n} 户{verb},现予以公告。"
    if kind == "entry":
        return f"根据建档立卡贫困户识别程序,{steps},拟将以下 {n} 户纳入建档立卡贫困户,现予以公示。"
    short = [p for _, p in items if (p or {}).get("assessed_failures")]
    signed = "该户已签字认可" if n == 1 else "以上农户均已签字认可"
    if not short:
        return (f"根据贫困户退出程序,{steps},以下 {n} 户年人均纯收入稳定超过"
                f"扶贫标准,实现“两不愁三保障”,{signed},拟退出(脱贫),现予以公示。")
    # never say of a household what the check found untrue: its unmet items are in 备注
    if len(short) == n:  # no 其余 0 户 … sentence when every household has an unmet item
        which = "1 户经核实尚有未达到退出标准的项目" if n == 1 else f"{n} 户经核实均尚有未达到退出标准的项目"
        return (f"根据贫困户退出程序,{steps},以下 {n} 户拟退出(脱贫)。"
                f"{which},备注中列明未达标项目和书面说明,一并公示、接受群众监督。{signed},现予以公示。")
    return (f"根据贫困户退出程序,{steps},以下 {n} 户拟退出(脱贫)。"
            f"其中 {len(short)} 户经核实尚有未达到退出标准的项目,备注中列明未达标项目和书面说明,"
            f"一并公示、接受群众监督;其余 {n - len(short)} 户年人均纯收入稳定超过扶贫标准,"
            f"实现“两不愁三保障”。{signed},现予以公示。")


def notice_story(place_code: str, kind: str, items: list[tuple[dict, dict]], info: NoticeInfo, ctx: Context,
                 level: str = "village") -> list:
    """The story of a notice. `level` "village": 村内公示 of a village; "township": the township's
    公示 after 乡级初核 (a 9-digit code); "county": the county's 公告 after 县级审定 (a 6-digit code)."""
    if kind not in KINDS:
        raise ReportError(f"公示类型应为 entry(纳入)或 exit(退出),而不是“{kind}”")
    if level not in LEVELS:
        raise ReportError(f"公示级别应为 village、township 或 county,而不是“{level}”")
    info.check(level)
    st = styles()
    place = ctx.division(place_code)
    year = info.start.year
    if level == "county":
        title = f"{place}{year}年{ANNOUNCED[kind]}公告"
    else:
        title = f"{place}{year}年{KINDS[kind]}公示" + ("(乡级)" if level == "township" else "")
    body = _notice_body(kind, level, items)
    story = [Paragraph(markup(title), st["title"]), Spacer(1, 4 * mm), Paragraph(markup(body), st["notice"]), Spacer(1, 3 * mm)]
    headings, widths, rows = notice_rows(kind, items, ctx, level)
    k = WIDTH / (sum(widths) * mm)
    data = [[head_para(h, st["head"], w * mm * k - 2 * PAD) for h, w in zip(headings, widths)]]
    centred = {0, headings.index("家庭人口")}
    name_at = headings.index("户主姓名")
    for r in rows:
        data.append([Paragraph(markup(v), st["cell_c"]) if c in centred else para(v, st["cell"], c == name_at)
                     for c, v in enumerate(r)])
    if not rows:
        data.append([Paragraph(markup("(本期无拟公示的户)"), st["cell_c"])] + [""] * (len(headings) - 1))
    table = Table(data, colWidths=[w * mm * k for w in widths], repeatRows=1)
    cmds = [FONT_CMD, ("GRID", (0, 0), (-1, -1), 0.5, GRID), ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("LEFTPADDING", (0, 0), (-1, -1), PAD), ("RIGHTPADDING", (0, 0), (-1, -1), PAD)]
    if not rows:
        cmds.append(("SPAN", (0, 1), (-1, 1)))
    table.setStyle(TableStyle(cmds))
    story.append(table)
    right = styles()["body"].clone("right", alignment=2, fontSize=11, leading=18)
    if level == "county":
        issuer = info.issuer or f"{place}扶贫开发领导小组"
        story += [Spacer(1, 5 * mm), Paragraph(markup("特此公告。"), st["notice"]),
                  KeepTogether([Spacer(1, 10 * mm), Paragraph(markup(f"{issuer}(盖章)"), right),
                                Paragraph(markup(_date(info.start)), right)])]
        return story
    contact = info.contact + (f",联系电话 {info.phone}" if info.phone else "")
    # the period, place and objection lines stay on the page of the signatures and seal (a long list
    # must not leave the signature block alone on the last page, apart from what it signs)
    closing = [
        Spacer(1, 5 * mm),
        Paragraph(markup(f"公示时间:{_date(info.start)}至{_date(info.end)}(共 {info.days} 天)。"), st["notice"]),
        Paragraph(markup(f"公示地点:{info.place}。"), st["notice"]),
        Paragraph(markup(f"公示期间,如有异议,请以书面或口头形式向{contact}反映。"
                         "反映情况要实事求是,提倡署名反映。"), st["notice"]),
    ]
    if level == "township":
        issuer = info.issuer or f"{place}人民政府"
        story.append(KeepTogether(closing + [Spacer(1, 10 * mm), Paragraph(markup(f"{issuer}(盖章)"), right),
                                             Paragraph(markup(_date(info.start)), right)]))
        return story
    issuer = info.issuer or f"{place}村民委员会"
    sign = village_signatures(st)
    story.append(KeepTogether(closing + [Spacer(1, 6 * mm), sign, Spacer(1, 8 * mm),
                               Paragraph(markup(f"{issuer}(盖章)"), right),
                               Paragraph(markup(_date(info.start)), right)]))
    return story


def build_notice(path: str, place_code: str, kind: str, items: list[tuple[dict, dict]], info: NoticeInfo,
                 ctx: Context, level: str = "village") -> int:
    register_fonts()
    story = notice_story(place_code, kind, items, info, ctx, level)
    doc = SimpleDocTemplate(path, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=18 * mm,
                            bottomMargin=16 * mm, title="公告" if level == "county" else "公示",
                            author=ctx.site_name or "jiandang", initialFontName=CJK)
    doc.build(story, canvasmaker=numbered_canvas())
    return doc.page


def village_signatures(st) -> Table:
    """The four signature lines under a village notice (村党组织书记, 村委会主任, 驻村工作队队长, 监督人)."""
    sign = Table([
        [Paragraph(markup("村党组织书记(签字):"), st["body"]), "", Paragraph(markup("村委会主任(签字):"), st["body"]), ""],
        [Paragraph(markup("驻村工作队队长(签字):"), st["body"]), "", Paragraph(markup("监督人(签字):"), st["body"]), ""],
    ], colWidths=[WIDTH * 0.27, WIDTH * 0.23] * 2, rowHeights=[12 * mm, 12 * mm])
    sign.setStyle(TableStyle([FONT_CMD, ("LINEBELOW", (1, 0), (1, -1), 0.5, GRID), ("LINEBELOW", (3, 0), (3, -1), 0.5, GRID),
                              ("VALIGN", (0, 0), (-1, -1), "BOTTOM")]))
    return sign
