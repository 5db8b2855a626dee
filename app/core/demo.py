"""A deterministic generator of realistic (fictitious) household files for demos, tests and
benchmarks. The same seed always gives the same households.

The county is the real 雷山县 (贵州省黔东南州, code 522634) with two of its real towns, 西江镇 (522634101)
and 永乐镇 (522634102), as the 统计用区划代码 (2022) names them, so that every ID number's first six digits
are a GB/T 2260 county code and a demo export imports back without a warning. The villages under them
are invented (the division data at hand stops at townships; their codes follow the 12-digit rule), as are
the people: names, ID numbers and phones are made up but well-formed (ID numbers start with the county's
code, carry valid check digits and agree with sex and birth date).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

from app.core import idnumber, income

COUNTY = ("522634", "雷山县")
TOWNSHIPS = [
    ("522634101", "西江镇", [("522634101201", "龙井村"), ("522634101202", "石桥村"), ("522634101203", "杨柳村")]),
    ("522634102", "永乐镇", [("522634102201", "新寨村"), ("522634102202", "白岩村"), ("522634102203", "河坝村")]),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱覃武戴孔汤庞樊兰殷施陶洪翟安颜倪严牛温芦季俞章鲁葛伍韦申尤毕聂丛焦向柳邢"
MALE = "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林荣成国庆建文志永春德福贵山海"
FEMALE = "芳娜敏静丽艳娟霞秀英华慧巧美玲桂兰凤琴云莲珍翠红梅月燕萍雪琳洁倩婷"
UNITS = [("县农业农村局", "3"), ("县教育局", "3"), ("县卫生健康局", "3"), ("西江镇人民政府", "4"),
         ("县供电公司", "3"), ("市住建局", "2"), ("县人社局", "3"), ("省交通厅驻县工作组", "1")]
POVERTY_LINES = {2011: 2536, 2012: 2625, 2013: 2736, 2014: 2800, 2015: 2855, 2016: 2952,
                 2017: 3335, 2018: 3535, 2019: 3747, 2020: 4000,
                 # after 2020 counties set a monitoring line of their own; these are demo figures only
                 2021: 6000, 2022: 6500, 2023: 6900, 2024: 7100, 2025: 7300}
DEMO_LINE_SOURCE = {year: ("国家标准(2010年不变价2300元,现价)" if year <= 2016 else "演示数据:县级设定")
                    for year in POVERTY_LINES}
# 防返贫动态监测 (issue #20): the county's 监测收入标准 per year (demo figures, like the lines above), the
# share of households made 监测户 and the weights of the risk types
MONITORING_LINES = {2021: 6000, 2022: 6500, 2023: 6900, 2024: 7100, 2025: 7300, 2026: 7500}
MONITORING_SOURCE = "演示数据:县级设定"
MONITORED_EXITED = 0.05   # of 脱贫户: 脱贫不稳定户 (mostly) or 突发严重困难户
MONITORED_GENERAL = 0.03  # of 一般农户: 边缘易致贫户
RISK_WEIGHTS = {"01": 35, "02": 8, "03": 10, "04": 8, "05": 10, "06": 8, "07": 15, "08": 6}
CAUSE_WEIGHTS = {"1": 30, "2": 14, "3": 8, "4": 4, "5": 5, "6": 2, "7": 12, "8": 9, "9": 10, "10": 2, "11": 4}


def divisions() -> list[tuple[str, str, str, str | None]]:
    """(code, name, level, parent) of the demo county, its 2 townships and 6 villages."""
    rows = [(COUNTY[0], COUNTY[1], "county", None)]
    for tcode, tname, villages in TOWNSHIPS:
        rows.append((tcode, tname, "township", COUNTY[0]))
        rows += [(vcode, vname, "village", tcode) for vcode, vname in villages]
    return rows


def village_codes() -> list[str]:
    return [v for _, _, villages in TOWNSHIPS for v, _ in villages]


class _Names:
    def __init__(self, rng: random.Random):
        self.rng = rng

    def person(self, sex: str, surname: str | None = None) -> str:
        pool = MALE if sex == "1" else FEMALE
        given = self.rng.choice(pool) + (self.rng.choice(pool) if self.rng.random() < 0.7 else "")
        return (surname or self.rng.choice(SURNAMES)) + given


def _birth(rng: random.Random, age: int, year: int = 2025) -> dt.date:
    return dt.date(year - age, rng.randint(1, 12), rng.randint(1, 28))


def _unique_id_number(used: set[str], birth: dt.date, seq: int, sex: str) -> tuple[str, dt.date]:
    """A valid ID number not yet in `used` (added to it): the next free order code for that birth
    date, or the next day when all 500 codes of a date and sex are taken."""
    while True:
        for step in range(500):
            number = idnumber.make(COUNTY[0], birth, seq + step, sex)
            if number not in used:
                used.add(number)
                return number, birth
        birth += dt.timedelta(days=1)


def _member(used, rng, names, relation, sex, age, surname, seq, school_year=2025):
    birth = _birth(rng, age)
    id_number, birth = _unique_id_number(used, birth, seq, sex)
    m = {
        "name": names.person(sex, surname),
        "sex": sex,
        "id_number": id_number,
        "birth_date": birth.isoformat(),
        "relation": relation,
        "ethnicity": rng.choices(["01", "06", "09", "12", "25"], [40, 25, 15, 10, 10])[0],
        "political_status": "01" if age > 30 and rng.random() < 0.06 else "13",
        "basic_medical": rng.random() < 0.97,
        "speaks_mandarin": age > 5 and rng.random() < 0.85,
    }
    if age < 6:
        m.update(education="6", school_status="01" if age >= 3 else "00", labour_skill="4", health=["1"])
    elif age < 16:
        grade = {12: "03", 13: "04", 14: "05", 15: "05"}.get(age, "02")
        m.update(education="2" if grade == "02" else "3", school_status=grade, labour_skill="4", health=["1"])
    elif age < 19 and rng.random() < 0.6:
        m.update(education="3", school_status=rng.choice(["06", "07", "08", "09", "10"]), labour_skill="4", health=["1"])
    else:
        sick = rng.random()
        health = ["1"] if sick > 0.3 else (["2"] if sick > 0.12 else (["3"] if sick > 0.05 else ["4"]))
        if age > 65:
            health = rng.choice([["2"], ["1"], ["2", "4"], ["3"]])
        m.update(
            education=rng.choices(["1", "2", "3", "4", "5"], [15, 35, 35, 10, 5])[0] if age < 60 else rng.choice(["1", "2"]),
            school_status="00",
            health=health,
            labour_skill="3" if "3" in health or "4" in health else ("1" if age < 60 else "4"),
            resident_pension=rng.random() < 0.9,
        )
        if m["labour_skill"] == "1" and rng.random() < 0.55:
            m.update(work_status=rng.choice(["1", "2", "3", "4"]), work_months=rng.randint(3, 11),
                     work_area=rng.choice(["本乡镇", "县城", "贵阳市", "广东省东莞市", "浙江省宁波市"]))
        else:
            m["work_status"] = "0"
    return m


def households(per_village: int = 80, seed: int = 2026, villages: list[str] | None = None,
               today: dt.date | None = None, monitoring: bool = False) -> list[dict]:
    """`iter_households` as a list."""
    return list(iter_households(per_village, seed, villages, today, monitoring))


def iter_households(per_village: int = 80, seed: int = 2026, villages: list[str] | None = None,
                    today: dt.date | None = None, monitoring: bool = False) -> Iterator[dict]:
    """Household documents (the `add --json` shape, without ids) for each village. Visits fall in
    the 100 days before `today` (about one household in ten is overdue for its 90-day visit), and
    households marked as exited have a 2025 income above that year's demo poverty line. With
    `monitoring`, a few households are 监测户 with their risks (`monitor`); the other figures are
    the same with or without it (its choices come from a random stream of their own)."""
    today = today or dt.date.today()
    rng = random.Random(seed)
    watch = random.Random(f"{seed}-monitoring")
    names = _Names(rng)
    used: set[str] = set()
    seq = 0
    for village in villages or village_codes():
        for n in range(1, per_village + 1):
            seq += 1
            surname = rng.choice(SURNAMES)
            head_sex = "1" if rng.random() < 0.85 else "2"
            head_age = rng.randint(28, 78)
            members = [_member(used, rng, names, "01", head_sex, head_age, surname, seq * 7)]
            if rng.random() < 0.8:
                members.append(_member(used, rng, names, "02", "2" if head_sex == "1" else "1",
                                       max(20, head_age + rng.randint(-5, 3)), None, seq * 7 + 1))
            for c in range(rng.choices([0, 1, 2, 3], [15, 35, 35, 15])[0]):
                sex = rng.choice("12")
                age = max(0, head_age - rng.randint(20, 34))
                members.append(_member(used, rng, names, "03" if sex == "1" else "04", sex, age, surname, seq * 7 + 2 + c))
            if head_age < 50 and rng.random() < 0.3:
                members.append(_member(used, rng, names, "12", "2", head_age + rng.randint(22, 30), None, seq * 7 + 6))
            size = len(members)
            cause = rng.choices(list(CAUSE_WEIGHTS), list(CAUSE_WEIGHTS.values()))[0]
            others = rng.sample([c for c in CAUSE_WEIGHTS if c != cause], rng.choice([0, 1, 1, 2]))
            first = dt.date(2014, rng.randint(4, 10), rng.randint(1, 28))
            status = rng.choices(["1", "2", "3", "4"], [25, 55, 15, 5])[0]
            attribute = rng.choices(["1", "2", "3"], [70, 24, 6])[0]
            wage = sum(m.get("work_months", 0) * rng.randint(1800, 3200) for m in members) * 0.4
            business = rng.randint(1500, 9000)
            dibao = rng.randint(1800, 4200) * size if attribute == "2" else 0
            doc = {
                "village_code": village,
                "household_number": f"{village}{n:04d}",
                "group": f"{rng.randint(1, 8)}组",
                "head_name": members[0]["name"],
                "phone": "1" + rng.choice("35789") + "".join(rng.choice("0123456789") for _ in range(9)),
                "bank_name": rng.choice(["农村信用社", "中国农业银行", "中国邮政储蓄银行"]),
                "bank_account": "6228" + "".join(rng.choice("0123456789") for _ in range(15)),
                "identification_standard": rng.choices(["1", "2"], [85, 15])[0],
                "attribute": attribute,
                "status": status,
                "main_cause": cause,
                "other_causes": others,
                "military_family": rng.random() < 0.02,
                "only_child": rng.random() < 0.05,
                "two_daughters": rng.random() < 0.04,
                "first_identified": first.isoformat(),
                "planned_exit_year": rng.randint(2016, 2020),
                "family_size": size,
                "farmland_area": round(rng.uniform(0.5, 6), 1),
                "irrigated_area": round(rng.uniform(0, 2), 1),
                "forest_area": round(rng.uniform(0, 20), 1),
                "production_power": True,
                "household_power": True,
                "broadcast_tv": rng.random() < 0.9,
                "water_difficulty": rng.random() < 0.1,
                "water_safe": rng.random() < 0.9,
                "road_distance": round(rng.uniform(0, 3), 1),
                "road_type": rng.choices(["1", "2", "3"], [20, 30, 50])[0],
                "housing_area": rng.randint(40, 160),
                "dilapidated": rng.choices(["0", "C", "D"], [80, 15, 5])[0],
                "sanitary_toilet": rng.random() < 0.6,
                "fuel_type": rng.choices(["1", "3", "4"], [60, 15, 25])[0],
                "cooperative": rng.random() < 0.3,
                "members": members,
                "incomes": [{
                    "year": 2025,
                    "wage_income": round(wage),
                    "business_income": business,
                    "property_income": (prop := 300 if rng.random() < 0.4 else 0),
                    "dividend_income": prop if rng.random() < 0.7 else 0,
                    "dibao_subsidy": dibao,
                    "eco_compensation": rng.randint(0, 600),
                    "pension_income": 1200 * sum(1 for m in members if m.get("resident_pension") and m["birth_date"] < "1965"),
                    "business_expense": rng.randint(300, 2000),
                }],
                "helpers": [{
                    "name": names.person(rng.choice("12")),
                    "unit": (unit := rng.choice(UNITS))[0],
                    "unit_level": unit[1],
                    "position": rng.choice(["科员", "副局长", "驻村第一书记", "工作队员", "站长"]),
                    "phone": "13" + "".join(rng.choice("0123456789") for _ in range(9)),
                    "start_date": first.replace(day=min(first.day + 1, 28)).isoformat(),
                }],
                "measures": [{
                    "year": 2025,
                    "category": rng.choice(["01", "02", "04", "05", "06", "07"]),
                    "content": rng.choice(["发放生猪仔3头及饲料补助", "推荐到县工业园区务工", "雨露计划职业教育补助",
                                           "家庭医生签约服务", "扶贫小额信贷5万元用于种植", "危房改造补助"]),
                    "unit": unit[0],
                    "amount": rng.choice([1500, 3000, 5000, 50000, 20000]),
                    "date": f"2025-{rng.randint(1, 10):02d}-{rng.randint(1, 28):02d}",
                    "result": "已落实",
                    "household_signed": True,
                }],
                "plans": [{
                    "year": 2026,
                    "targets": "人均纯收入稳定超过当年标准,两不愁三保障达标",
                    "planned_measures": "发展特色种养,稳定务工",
                    "project_name": rng.choice(["精品水果种植", "生态养殖", "茶叶基地"]),
                    "project_scale": f"{rng.randint(1, 10)}亩",
                    "project_funds": rng.choice([3000, 5000, 8000]),
                    "deadline": "2026-12-31",
                }],
                "visits": [{
                    "date": (today - dt.timedelta(days=(rng.randint(1, 11) * 28 + rng.randint(1, 28)) % 100 + 1)).isoformat(),
                    "visitor": names.person(rng.choice("12")),
                    "content": "入户核实家庭人口与收入,宣讲帮扶政策",
                    "household_words": "感谢帮扶,希望继续支持产业发展",
                    "follow_up": "联系农技人员上门指导",
                }],
            }
            if status in ("2", "3"):
                doc["exit_year"] = rng.randint(2016, 2020)
                earned = doc["incomes"][0]
                short = POVERTY_LINES[2025] * 1.15 - income.per_capita(earned, size)
                if short > 0:  # an exited household lives above the line
                    earned["wage_income"] += round(short * size / 100) * 100 + 400
            if status == "4":
                doc["return_reason"] = rng.choice(["家庭成员患大病", "遭受洪灾"])
            if monitoring:
                monitor(doc, watch, today)
            yield doc


def monitor(doc: dict, rng: random.Random, today: dt.date) -> None:
    """Make about 5% of 脱贫户 (status 已脱贫) and 3% of the others (一般农户) 监测户, as the county's
    ledger has them: identified in the last two years, one or two risks found around then (by the
    three ways a risk is found), most still open. About half of the monitored 脱贫户 identified
    long enough ago have had their risk eliminated (their income is above the monitoring
    line: `iter_households` keeps exited households above it): 风险是否消除 是, 风险消除时间 at least six
    months after identification, and every risk 已消除 on that date. Draws from `rng` for every
    household, monitored or not, so the same seed and `today` give the same 监测户."""
    exited = doc["status"] in ("2", "3")
    pick, kind, identified_ago, count, extra_after, eliminate, months = (
        rng.random(), rng.random(), rng.randint(30, 730), rng.choice([1, 1, 1, 2]), rng.randint(10, 90),
        rng.random(), rng.randint(6, 10))
    types = rng.sample(list(RISK_WEIGHTS), 2, counts=list(RISK_WEIGHTS.values()))
    sources = [rng.choices(["1", "2", "3"], [30, 50, 20])[0] for _ in range(2)]
    found_before = rng.randint(3, 40)
    if pick >= (MONITORED_EXITED if exited else MONITORED_GENERAL):
        return
    identified = today - dt.timedelta(days=identified_ago)
    if types[0] == types[1]:
        types[1] = next(t for t in RISK_WEIGHTS if t != types[0])
    risks = [{"risk_type": types[0], "found_date": (identified - dt.timedelta(days=found_before)).isoformat(),
              "source": sources[0], "state": "1", "note": "入户排查发现,已纳入监测并落实帮扶"}]
    if count == 2 and identified + dt.timedelta(days=extra_after) < today:
        risks.append({"risk_type": types[1], "found_date": (identified + dt.timedelta(days=extra_after)).isoformat(),
                      "source": sources[1], "state": "1", "note": "监测期间新发现的风险"})
    doc.update(household_type="2", monitoring_type=("1" if kind < 0.8 else "3") if exited else "2",
               risk_eliminated=False, risk_identified_date=identified.isoformat(), risk_eliminated_date=None,
               risks=risks)
    ended = identified + dt.timedelta(days=months * 31)
    if exited and eliminate < 0.5 and ended < today and all(r["found_date"] < ended.isoformat() for r in risks):
        doc.update(risk_eliminated=True, risk_eliminated_date=ended.isoformat())
        for r in risks:
            r.update(state="2", eliminated_date=ended.isoformat())
