"""识别与退出 commands: propose, proposals, advance, notice-period, exit-check, worklist."""

from __future__ import annotations

import sys

from app.cli.common import CommandError, local_time, open_store, print_json, user_errors
from app.core.text import printable
from app.core import procedures
from app.core.procedures import KINDS, STAGE_LABELS, STAGES
from app.services import households, monitoring, proposals, worklists
from app.store.db import short_id

YES = {"yes", "y", "是", "true", "1"}
NO = {"no", "n", "否", "false", "0"}


def _bool(text: str | None) -> bool | None:
    if text is None:
        return None
    word = text.strip().lower()
    if word in YES:
        return True
    if word in NO:
        return False
    raise CommandError(f"“{text}”应为 yes(是)或 no(否)")


def register(sub) -> None:
    p = sub.add_parser("propose", help="发起识别、退出等申报(村民小组提名)")
    p.add_argument("db")
    p.add_argument("--household", required=True, help="贫困户记录 id 或户编号")
    p.add_argument("--kind", required=True, help="exit(脱贫退出)、entry(新识别)、return(返贫纳入)、natural(自然减少)、members(成员增减)、"
                                                "monitor(监测识别)、eliminate(风险消除),也可写中文")
    p.add_argument("--reason", required=True, help="申报理由")
    p.add_argument("--by", help="提名人(如村民小组长姓名)")
    p.add_argument("--date", help="提名日期(默认今天)")
    p.add_argument("--year", type=int, help="退出:收入年度(默认最近一年的收入记录)")
    p.add_argument("--food", help="退出:不愁吃 yes|no")
    p.add_argument("--clothing", help="退出:不愁穿 yes|no")
    p.add_argument("--justification", help="未达到退出标准时的书面说明")
    # 防返贫动态监测 (issue #20)
    p.add_argument("--monitoring-type", help="监测识别:脱贫不稳定户|边缘易致贫户|突发严重困难户")
    p.add_argument("--source", help="监测识别:农户自主申报|干部走访排查|部门筛查预警")
    p.add_argument("--risk", action="append", default=[],
                   help="监测识别:风险类型(因病、因学、因残、因意外事故 …),可写“因病:2026-03-01”带发现日期;可重复")
    p.add_argument("--household-authorised", action="store_true", help="监测识别:农户已签署授权承诺书")
    p.add_argument("--water", help="风险消除:饮水安全有保障 yes|no(默认取户档“饮水是否安全”)")
    p.add_argument("--operator")
    p.set_defaults(func=cmd_propose)

    p = sub.add_parser("proposals", help="列出申报及所处环节")
    p.add_argument("db")
    p.add_argument("--stage", help="只列等待该环节的申报:review、notice、township、county、announce,"
                                   "或 pending(未办结)、returned(已退回)、effective(已生效);也可写中文")
    p.add_argument("--village", help="12位村代码")
    p.add_argument("--household", help="一户的申报和脱贫状态变化(记录 id 或户编号)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--operator")
    p.set_defaults(func=cmd_proposals)

    p = sub.add_parser("advance", help="办理申报的一个环节(通过或退回)")
    p.add_argument("db")
    p.add_argument("--proposal", required=True, help="申报编号(前 8 位即可),或户编号(该户唯一未办结的申报)")
    p.add_argument("--stage", required=True, help="review、notice、township、county、announce(或中文环节名)")
    p.add_argument("--outcome", required=True, choices=["pass", "return"], help="pass 通过,return 退回")
    p.add_argument("--reason", help="意见;退回时必填")
    p.add_argument("--by", help="经办人")
    p.add_argument("--date", help="办理日期(默认今天)")
    p.add_argument("--meeting-date", help="村级评议:评议会日期")
    p.add_argument("--attendance", help="村级评议:参会人数")
    p.add_argument("--votes-for", help="村级评议:赞成票")
    p.add_argument("--votes-against", help="村级评议:反对票")
    p.add_argument("--votes-abstain", help="村级评议:弃权票")
    p.add_argument("--household-signed", action="store_true", help="村级评议:农户已签字同意(脱贫退出必需)")
    p.add_argument("--notice-start", help="村内公示:开始日期")
    p.add_argument("--notice-end", help="村内公示:结束日期(至少 7 天,监测识别至少 5 天)")
    p.add_argument("--operator")
    p.set_defaults(func=cmd_advance)

    p = sub.add_parser("notice-period", help="为通过村级评议的申报设定公示期(以便打印公示)")
    p.add_argument("db")
    p.add_argument("--proposal", required=True)
    p.add_argument("--start", required=True)
    p.add_argument("--end", required=True)
    p.add_argument("--operator")
    p.set_defaults(func=cmd_notice_period)

    p = sub.add_parser("exit-check", help="计算一户的退出标准(收入与两不愁三保障)")
    p.add_argument("db")
    p.add_argument("--household", required=True)
    p.add_argument("--year", type=int)
    p.add_argument("--food")
    p.add_argument("--clothing")
    p.add_argument("--water", help="风险消除:饮水安全有保障 yes|no")
    p.add_argument("--elimination", action="store_true", help="按风险消除标准(监测收入标准、饮水安全、监测时间)计算")
    p.add_argument("--json", action="store_true")
    p.add_argument("--operator")
    p.set_defaults(func=cmd_exit_check)

    p = sub.add_parser("worklist", help="工作清单:缺帮扶责任人、久未走访、各环节待办、退出未达标、待完善、防返贫监测")
    p.add_argument("db")
    p.add_argument("--list", dest="which", default="all",
                   choices=["all", "helpers", "visits", "stages", "exits", "incomplete", "monitoring"],
                   help="只看一张清单(monitoring:防返贫监测的四张清单)")
    p.add_argument("--days", type=int, default=worklists.DEFAULT_VISIT_DAYS, help="多少天未走访算久未走访(默认 90)")
    p.add_argument("--village")
    p.add_argument("--json", action="store_true")
    p.add_argument("--operator")
    p.set_defaults(func=cmd_worklist)


def _row(p: dict, doc: dict | None) -> str:
    return "\t".join([
        short_id(p["id"]),
        KINDS.get(p.get("proposal_kind"), str(p.get("proposal_kind"))),
        str((doc or {}).get("household_number", "")),
        str((doc or {}).get("head_name", "(已删除)")),
        proposals.state_label(p),
        str(p.get("nominate_date", "")),
        _remark(p, doc),
    ])


def _remark(p: dict, doc: dict | None) -> str:
    """未达标 for an exit or 风险消除 that failed a criterion when proposed; for a 监测识别 the open
    risks it is about (风险:因病、因学), as the window's column 标准与风险."""
    if p.get("proposal_kind") == "monitor":
        return monitoring.risks_remark(doc or {})
    return "未达标" if p.get("assessed_failures") else ""


def cmd_propose(args) -> int:
    with open_store(args.db, args.operator) as store:
        with user_errors(proposals.ProcedureError):
            doc = proposals.find_household(store, args.household)
            p = proposals.propose(store, doc["id"], args.kind, reasons=args.reason, by=args.by, date=args.date,
                                  income_year=args.year, food_secure=_bool(args.food),
                                  clothing_secure=_bool(args.clothing), justification=args.justification,
                                  monitoring_type=args.monitoring_type, risk_source=args.source,
                                  risks=[tuple(r.replace("：", ":").split(":", 1)) for r in args.risk],
                                  household_authorised=args.household_authorised or None,
                                  water_secure=_bool(args.water))
        print(f"{p['id']}\t{KINDS[p['proposal_kind']]}\t{proposals.household_title(doc)}\t{proposals.state_label(p)}")
        if p.get("assessed_failures"):
            print(f"注意:未达标项 {p['assessed_failures']},已附书面说明,乡级初核时会列入待核清单", file=sys.stderr)
    return 0


def cmd_proposals(args) -> int:
    with open_store(args.db, args.operator, write=False) as store:
        with user_errors(proposals.ProcedureError):
            waiting = proposals.stage_key(args.stage) if args.stage else None
            household = proposals.find_household(store, args.household) if args.household else None
        items = proposals.proposals(store, village_code=args.village, waiting=waiting,
                                    household_id=household["id"] if household else None)
        docs = {}
        for p in items:
            if p["household_id"] not in docs:
                docs[p["household_id"]] = households.document(store, p["household_id"])
        if args.json:
            out = []
            for p in items:
                doc = docs.get(p["household_id"]) or {}
                a = proposals.assessment_of(store, p, doc) if doc else None
                out.append({**p, "waiting_for": proposals.waiting_for(p), "state": proposals.state_label(p),
                            "household_number": doc.get("household_number"), "head_name": doc.get("head_name"),
                            "exit_assessment": a.as_dict() if a else None})
            if household:
                print_json({"proposals": out, "status": household.get("status"),
                            "status_history": [e.as_dict() for e in proposals.status_history(store, household["id"])]})
            else:
                print_json(out)
            return 0
        print("编号\t类型\t户编号\t户主\t状态\t提名日期\t备注")
        for p in items:
            print(_row(p, docs.get(p["household_id"])))
        print(f"共 {len(items)} 份申报", file=sys.stderr)
        if household:
            print(f"\n{proposals.household_title(household)} 当前状态:"
                  f"{procedures.STATUS_LABELS.get(household.get('status'), household.get('status'))}")
            print("状态变化:")
            for e in proposals.status_history(store, household["id"]):
                d = e.as_dict()
                print(f"  {local_time(e.when)}  {e.operator}  {d['old_label'] or '(新建)'} → {d['new_label']}"
                      + (f"  {e.reason}" if e.reason else ""))
    return 0


def cmd_advance(args) -> int:
    with open_store(args.db, args.operator) as store:
        with user_errors(proposals.ProcedureError):
            p = proposals.advance(
                store, args.proposal, args.stage, args.outcome, reason=args.reason, date=args.date, by=args.by,
                meeting_date=args.meeting_date, attendance=args.attendance, votes_for=args.votes_for,
                votes_against=args.votes_against, votes_abstain=args.votes_abstain,
                household_signed=True if args.household_signed else None,
                notice_start=args.notice_start, notice_end=args.notice_end)
        doc = households.document(store, p["household_id"]) or {}
        print(f"{short_id(p['id'])}\t{proposals.household_title(doc)}\t{proposals.state_label(p)}")
        if p.get("stage") == "announce" and procedures.EFFECT.get(p["proposal_kind"]):
            print(f"脱贫状态:{procedures.STATUS_LABELS.get(doc.get('status'), doc.get('status'))}")
    return 0


def cmd_notice_period(args) -> int:
    with open_store(args.db, args.operator) as store:
        with user_errors(proposals.ProcedureError):
            p = proposals.plan_notice(store, args.proposal, args.start, args.end)
        print(f"{short_id(p['id'])}\t公示期 {p['notice_start']} 至 {p['notice_end']}")
    return 0


def cmd_exit_check(args) -> int:
    with open_store(args.db, args.operator, write=False) as store:
        with user_errors(proposals.ProcedureError):
            doc = proposals.find_household(store, args.household)
        if args.elimination:
            from app.services import monitoring

            a = monitoring.assess(store, doc, year=args.year, food_secure=_bool(args.food),
                                  clothing_secure=_bool(args.clothing), water_secure=_bool(args.water))
        else:
            a = proposals.exit_assessment(store, doc, year=args.year, food_secure=_bool(args.food),
                                          clothing_secure=_bool(args.clothing))
        what = "风险消除标准" if args.elimination else "退出标准"
        if args.json:
            print_json(a.as_dict())
        else:
            print(f"{proposals.household_title(doc)} {what}({a.year or '无收入'} 年)")
            for c in a.criteria:
                print(f"  {'✓' if c.ok else '✗'} {c.label}:{c.detail}")
            print("结论:" + (f"达到{what}" if a.passed else f"未达到{what}"))
    return 0 if a.passed else 1


def cmd_worklist(args) -> int:
    if args.days < 0:
        raise CommandError("--days 不能为负数")
    with open_store(args.db, args.operator, write=False) as store:
        lists = worklists.build(store, village_code=args.village, visit_days=args.days)
    if args.json:
        data = lists.as_dict()
        if args.which != "all":
            key = {"helpers": "missing_helper", "visits": "no_recent_visit", "stages": "waiting",
                   "exits": "failing_exits", "incomplete": "incomplete", "monitoring": "monitoring"}[args.which]
            data = {"on": data["on"], key: data[key], "notices": data["notices"]}
        print_json(data)
        return 0
    for notice in lists.notices:
        print(f"提醒:{notice}")
    sections = []
    if args.which in ("all", "helpers"):
        sections.append(("缺帮扶责任人", lists.missing_helper))
    if args.which in ("all", "visits"):
        sections.append((f"{args.days} 天内未走访", lists.no_recent_visit))
    if args.which in ("all", "stages"):
        for stage in STAGES[1:]:
            sections.append((f"等待{STAGE_LABELS[stage]}", lists.waiting[stage]))
    if args.which in ("all", "monitoring"):  # 防返贫动态监测 (issue #20)
        m = lists.monitoring
        sections += [("收入接近或低于监测收入标准", m.near_line), ("监测对象无在帮措施", m.no_measure),
                     (f"监测对象 {args.days} 天内未走访", m.not_visited), ("风险超期未消除", m.risks_overdue)]
    if args.which in ("all", "exits"):
        sections.append(("退出未达标(乡级初核重点核查)", lists.failing_exits))
    if args.which in ("all", "incomplete"):
        sections.append(("待完善(必填项未填)", lists.incomplete))
    for title, entries in sections:
        print(f"== {title}:{len(entries)} 户")
        for e in entries:
            pid = f"\t申报 {short_id(e.proposal_id)}" if e.proposal_id else ""
            print("\t".join(printable(x) for x in (e.household_number, e.head_name, f"{e.detail}{pid}")))
    return 0
