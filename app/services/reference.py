"""Reference data: the county's administrative divisions (县 / 乡(镇) / 村) and the poverty line per year.

Who may edit (decided here, documented in docs/user-guide.md and docs/cli.md):
- the county database: it is the source; downstream bundles and enrollment packages carry its
  divisions (for each device's area) and all its poverty lines to the laptops;
- a database not enrolled with a county (created with `init --role village|township`, used on its
  own): nobody else can supply its reference data, so it edits its own;
- an enrolled laptop or township office never: what it holds comes from the county and would be
  overwritten by the next downstream bundle. `edit_refusal(store)` says so.

Divisions come from a CSV or Excel file (columns 代码, 名称, optional 级别 and 上级代码, or code/name/
level/parent; read by app.tables.divisions, which hands the rows to `check_divisions` and
`apply_divisions` here) or one at a time. A file is checked completely before anything is written: every
problem names the file, the row and the column, and a file with any problem changes nothing. The
accepted rows are written in one transaction. Divisions are only added or renamed, never removed
(households and bundles refer to their codes).

No Qt here; app/cli/reference_commands.py and app/ui/reference_dialog.py use these functions.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field

from app.core import divisions as codes
from app.store import Store

NAME_MAX = 40
SOURCE_MAX = 200
LINE_MAX = 100000  # 元 per person per year: a line above this is a typing error
FIRST_YEAR = 2000

COLUMN_LABELS = {"code": "代码", "name": "名称", "level": "级别", "parent": "上级代码"}


class ReferenceDataError(ValueError):
    """Reference data refused; the message (Chinese) says why and what to do. `problems` lists
    each problem of an import file."""

    def __init__(self, message: str, problems: list | None = None):
        super().__init__(message)
        self.problems = problems or []


# ---------------------------------------------------------------------- who may edit


def enrolled(store: Store) -> bool:
    """A laptop or township office enrolled with a county (its reference data comes from there)."""
    return store.role != "county" and bool(store.meta("certificate"))


def edit_refusal(store: Store) -> str | None:
    """None when this database may edit its reference data, else the reason (Chinese)."""
    if enrolled(store):
        return ("本机的行政区划、贫困线和防返贫监测标准由县扶贫办统一设定,随登记包和县里下发的同步包更新,不能在本机修改。"
                "如有错漏,请告知县扶贫办,在县级数据库中修改后再同步")
    return None


def require_edit(store: Store) -> None:
    reason = edit_refusal(store)
    if reason:
        raise ReferenceDataError(reason)


# ---------------------------------------------------------------------- divisions: reading


def division_tree(store: Store) -> list[tuple[int, dict]]:
    """(depth, division) in tree order: county, its townships, each township's villages. A division
    whose parent is unknown is listed at the top."""
    rows = store.divisions()
    by_parent: dict[str | None, list[dict]] = {}
    known = {r["code"] for r in rows}
    for r in rows:
        parent = r["parent"] if r["parent"] in known else None
        by_parent.setdefault(parent, []).append(r)
    out: list[tuple[int, dict]] = []

    def walk(parent, depth):
        for r in by_parent.get(parent, []):
            out.append((depth, r))
            walk(r["code"], depth + 1)

    walk(None, 0)
    return out


# ---------------------------------------------------------------------- divisions: checking


@dataclass
class Problem:
    """One thing wrong with an import file: where (file, row, column) and what."""

    file: str
    row: int
    column: str
    message: str

    def line(self) -> str:
        where = f"{self.file}"
        if self.row:
            where += f" 第 {self.row} 行"
        if self.column:
            where += f" 列“{self.column}”"
        return f"{where}:{self.message}"


@dataclass
class DivisionImport:
    """The result of checking a file: the rows to write, what they change, and any problems.
    Nothing is written while `problems` is not empty."""

    file: str
    rows: list[tuple[str, str, str, str | None]] = field(default_factory=list)  # (code, name, level, parent)
    added: list[tuple[str, str, str]] = field(default_factory=list)            # (code, name, level)
    renamed: list[tuple[str, str, str]] = field(default_factory=list)          # (code, old name, new name)
    unchanged: int = 0
    skipped: int = 0                                                            # province/prefecture rows
    problems: list[Problem] = field(default_factory=list)
    applied: bool = False
    private_use: list[tuple[str, str]] = field(default_factory=list)            # (code, name) holding PUA characters

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.problems:
            return f"{self.file}:发现 {len(self.problems)} 处问题,未导入任何区划。请改正后重新导入"
        counts = {level: sum(1 for _, _, lv in self.added if lv == level) for level in codes.LEVELS}
        parts = [f"{codes.LEVEL_LABELS[lv]} {n} 个" for lv, n in counts.items() if n]
        text = f"{self.file}:{'已' if self.applied else '将'}新增 {len(self.added)} 个区划"
        if parts:
            text += "(" + "、".join(parts) + ")"
        text += f",改名 {len(self.renamed)} 个,已有且相同 {self.unchanged} 个"
        if self.skipped:
            text += f",跳过省、市级行 {self.skipped} 行"
        if self.private_use:
            text += "。" + private_use_note(self.private_use)
        return text


def _clean_name(value) -> str:
    """Spaces (also full-width) trimmed and collapsed; the characters kept as typed (（新）stays full-width)."""
    return re.sub(r"\s+", " ", str(value if value is not None else "")).strip()


def check_name(name) -> str:
    """The name as stored; raises ValueError (Chinese) when it is empty, too long or has control characters."""
    text = _clean_name(name)
    if not text:
        raise ValueError("名称为空")
    if len(text) > NAME_MAX:
        raise ValueError(f"名称过长({len(text)} 个字,最多 {NAME_MAX} 个)")
    bad = [ch for ch in text if unicodedata.category(ch).startswith("C") and not private_use(ch)]
    if bad:
        raise ValueError(f"名称含有控制字符({'、'.join(f'U+{ord(ch):04X}' for ch in bad)})")
    return text


def private_use(ch: str) -> bool:
    """A character of Unicode's private-use area: real village names hold some (rare characters each
    province's font vendor added, e.g. in 宜城市 and 东兴市). They are real names and kept; a font
    without them prints a placeholder box."""
    return unicodedata.category(ch) == "Co"


def private_use_note(names: list[tuple[str, str]]) -> str:
    shown = "、".join(f"{name}({code})" for code, name in names[:20]) + (" 等" if len(names) > 20 else "")
    return (f"{len(names)} 个名称含有私用区字符(各地字库自造的生僻字,已照原样保存;本程序的字体没有这些字,"
            f"屏幕和打印件上显示为方框,请核对):{shown}")


def check_divisions(file: str, rows: list[tuple[int, dict]], existing: list[dict]) -> DivisionImport:
    """Check rows (row number, {code, name, level, parent}) against each other and the divisions
    already in the database. Pure: reads nothing, writes nothing."""
    plan = DivisionImport(file)
    label = COLUMN_LABELS
    held = {d["code"]: d for d in existing}
    seen: dict[str, tuple[int, str]] = {}   # code -> (row, name)
    accepted: list[tuple[int, str, str, str, str | None]] = []
    for number, cells in rows:
        raw_code, raw_level = cells.get("code"), cells.get("level")
        if raw_code is None and cells.get("name") is None:
            continue
        city_county = str(raw_code or "").strip()[:6] in codes.county_level_cities() and \
            set(str(raw_code).strip()[6:]) <= {"0"}  # 东莞市 441900: a city that is its own county
        if codes.is_above_county(raw_code) or (raw_level is not None and not city_county and
                                                  _clean_name(raw_level).lower() in codes.ABOVE_COUNTY_WORDS):
            plan.skipped += 1
            continue
        try:
            code = codes.normalise_code(raw_code)
        except ValueError as exc:
            plan.problems.append(Problem(file, number, label["code"], str(exc)))
            continue
        level = codes.level_of(code)
        try:
            name = check_name(cells.get("name"))
        except ValueError as exc:
            plan.problems.append(Problem(file, number, label["name"], f"{exc}(代码 {code})"))
            continue
        if any(private_use(ch) for ch in name):
            plan.private_use.append((code, name))
        if raw_level is not None and not city_county:
            given = codes.level_word(raw_level)
            if given is None:
                plan.problems.append(Problem(file, number, label["level"],
                                             f"级别“{raw_level}”无法识别:应为 县、乡(镇) 或 村(代码 {code})"))
                continue
            if given != level:
                plan.problems.append(Problem(file, number, label["level"],
                                             f"级别写的是“{raw_level}”,但代码 {code} 有 {len(code)} 位,是"
                                             f"{codes.LEVEL_LABELS[level]}级(县 6 位,乡(镇) 9 位,村 12 位)"))
                continue
        parent = codes.parent_code(code)
        raw_parent = cells.get("parent")
        if raw_parent is not None:
            try:
                given_parent = codes.normalise_code(raw_parent)
            except ValueError as exc:
                if level == "county" and codes.is_above_county(raw_parent):
                    given_parent = None  # a county's parent written as its prefecture: fine
                else:
                    plan.problems.append(Problem(file, number, label["parent"], f"上级代码有误:{exc}"))
                    continue
            if given_parent != parent:
                expected = f"应为 {parent}(代码的前 {len(parent)} 位)" if parent else "县级区划没有上级"
                plan.problems.append(Problem(file, number, label["parent"],
                                             f"上级代码 {given_parent} 与代码 {code} 不符:{expected}"))
                continue
        if code in seen:
            first_row, first_name = seen[code]
            if first_name != name:
                plan.problems.append(Problem(file, number, label["code"],
                                             f"代码 {code} 重复:第 {first_row} 行是“{first_name}”,这一行是“{name}”"))
            continue
        seen[code] = (number, name)
        accepted.append((number, code, name, level, parent))
    counties = {code[:6] for _, code, *_ in accepted} | {c for c, d in held.items() if d["level"] == "county"}
    foreign = set()  # rows already refused as another county's: their missing parents are not news
    if len(counties) > 1:
        ours = sorted(c for c, d in held.items() if d["level"] == "county")
        for number, code, *_ in accepted:
            if ours and code[:6] != ours[0]:
                foreign.add(number)
                plan.problems.append(Problem(file, number, label["code"],
                                             f"代码 {code} 不属于本县({ours[0]} {held[ours[0]]['name']}):"
                                             "一个数据库只管一个县的区划,请只保留本县的行"))
        if not ours:
            plan.problems.append(Problem(file, 0, label["code"],
                                         f"文件中有 {len(counties)} 个县的区划({'、'.join(sorted(counties))}):"
                                         "一个数据库只管一个县,请只保留本县的行"))
    known = set(held) | {code for _, code, *_ in accepted}
    parent_column = label["parent"] if any(cells.get("parent") is not None for _, cells in rows) else label["code"]
    for number, code, name, level, parent in accepted:
        if parent and parent not in known and number not in foreign:
            plan.problems.append(Problem(file, number, parent_column,
                                         f"{codes.LEVEL_LABELS[level]} {code}“{name}”的上级 {parent} "
                                         f"既不在文件中,也不在数据库中:请在文件中加上{codes.LEVEL_LABELS[codes.level_of(parent)]}"
                                         f" {parent} 这一行"))
    if not accepted and not plan.problems:
        plan.problems.append(Problem(file, 0, "", "文件中没有任何区划行"))
    plan.problems.sort(key=lambda p: p.row)
    if plan.problems:
        return plan
    for _number, code, name, level, parent in accepted:
        old = held.get(code)
        if old is None:
            plan.added.append((code, name, level))
        elif old["name"] != name:
            plan.renamed.append((code, old["name"], name))
        else:
            plan.unchanged += 1
            continue
        plan.rows.append((code, name, level, parent))
    return plan


def apply_divisions(store: Store, plan: DivisionImport) -> DivisionImport:
    """Write a checked import in one transaction. The plan is checked again against the database
    as it is now (another window may have changed it since); any problem raises and writes nothing."""
    require_edit(store)
    if plan.problems:
        raise ReferenceDataError(plan.summary(), plan.problems)
    with store.transaction():
        now = {d["code"]: d for d in store.divisions()}
        for code, _name, _level, parent in plan.rows:
            if parent and parent not in now and parent not in {r[0] for r in plan.rows}:
                raise ReferenceDataError(f"{plan.file}:上级区划 {parent} 已不在数据库中,未导入任何区划。请重新导入")
        store.set_divisions(plan.rows)
    plan.applied = True
    return plan


# ---------------------------------------------------------------------- divisions: one at a time


def add_division(store: Store, code, name, *, level: str | None = None, parent=None) -> dict:
    """Add one division. The level follows from the code (6/9/12 digits); `level` and `parent`,
    when given, must agree with it. The parent must exist."""
    require_edit(store)
    try:
        code = codes.normalise_code(code)
    except ValueError as exc:
        raise ReferenceDataError(f"代码有误:{exc}") from None
    try:
        name = check_name(name)
    except ValueError as exc:
        raise ReferenceDataError(f"{exc}(代码 {code})") from None
    actual = codes.level_of(code)
    if level is not None:
        given = codes.level_word(level)
        if given is None:
            raise ReferenceDataError(f"级别“{level}”无法识别:应为 county/township/village(县、乡(镇)、村)")
        if given != actual:
            raise ReferenceDataError(f"代码 {code} 有 {len(code)} 位,是{codes.LEVEL_LABELS[actual]}级,"
                                     f"不是{codes.LEVEL_LABELS[given]}级(县 6 位,乡(镇) 9 位,村 12 位)")
    expected = codes.parent_code(code)
    if parent is not None and str(parent).strip():
        try:
            given_parent = codes.normalise_code(parent)
        except ValueError as exc:
            raise ReferenceDataError(f"上级代码有误:{exc}") from None
        if given_parent != expected:
            raise ReferenceDataError(f"上级代码 {given_parent} 与代码 {code} 不符:"
                                     + (f"应为 {expected}(代码的前 {len(expected)} 位)" if expected else "县级区划没有上级"))
    with store.transaction():
        held = {d["code"]: d for d in store.divisions()}
        if code in held:
            raise ReferenceDataError(f"代码 {code} 已有区划“{held[code]['name']}”:要改名请用改名功能")
        counties = sorted(c for c, d in held.items() if d["level"] == "county")
        if counties and code[:6] != counties[0]:
            raise ReferenceDataError(f"代码 {code} 不属于本县({counties[0]} {held[counties[0]]['name']}):"
                                     "一个数据库只管一个县的区划")
        if expected and expected not in held:
            raise ReferenceDataError(f"上级{codes.LEVEL_LABELS[codes.level_of(expected)]} {expected} 还不存在:请先添加它")
        store.set_divisions([(code, name, actual, expected)])
    return {"code": code, "name": name, "level": actual, "parent": expected}


def rename_division(store: Store, code, name) -> tuple[str, str]:
    """Give a division a new name; returns (old name, new name)."""
    require_edit(store)
    try:
        code = codes.normalise_code(code)
    except ValueError as exc:
        raise ReferenceDataError(f"代码有误:{exc}") from None
    try:
        name = check_name(name)
    except ValueError as exc:
        raise ReferenceDataError(str(exc)) from None
    with store.transaction():
        held = {d["code"]: d for d in store.divisions()}
        if code not in held:
            raise ReferenceDataError(f"没有代码为 {code} 的区划:要新增请用新增功能")
        old = held[code]
        store.set_divisions([(code, name, old["level"], old["parent"])])
    return old["name"], name


# ---------------------------------------------------------------------- poverty lines


def parse_year(value) -> int:
    text = unicodedata.normalize("NFKC", str(value if value is not None else "")).strip().removesuffix("年").strip()
    if not text.isdigit():
        raise ReferenceDataError(f"年度“{value}”应为四位数字年份,如 2025")
    year = int(text)
    latest = dt.date.today().year + 1
    if not FIRST_YEAR <= year <= latest:
        raise ReferenceDataError(f"年度 {year} 不合理:应在 {FIRST_YEAR} 到 {latest} 年之间")
    return year


def parse_amount(value) -> float:
    text = unicodedata.normalize("NFKC", str(value if value is not None else "")).strip()
    text = text.replace(",", "").replace("元", "").strip()
    try:
        amount = float(text)
    except ValueError:
        raise ReferenceDataError(f"贫困线“{value}”应为金额(元/人·年),如 4000") from None
    if not amount > 0 or amount != amount:
        raise ReferenceDataError(f"贫困线应大于 0 元,而不是 {value}")
    if amount >= LINE_MAX:
        raise ReferenceDataError(f"贫困线 {amount:.0f} 元/人·年 不合理(应小于 {LINE_MAX} 元):请核对是否多输了位数")
    return round(amount, 2)


def set_poverty_line(store: Store, year, amount, source: str = "") -> dict:
    """Set (or correct) one year's line, with a note on where it comes from (文件、标准)."""
    require_edit(store)
    year, amount = parse_year(year), parse_amount(amount)
    source = _clean_name(source)
    if len(source) > SOURCE_MAX:
        raise ReferenceDataError(f"来源说明过长({len(source)} 个字,最多 {SOURCE_MAX} 个)")
    with store.transaction():
        store.set_poverty_line(year, amount, source)
    return {"year": year, "line": amount, "source": source}


def poverty_lines(store: Store) -> list[dict]:
    """Every year's line with its source note, oldest first."""
    rows = store.conn.execute("SELECT year, line, coalesce(source, '') FROM poverty_lines ORDER BY year").fetchall()
    return [{"year": y, "line": line, "source": s} for y, line, s in rows]



# ---------------------------------------------------------------------- 防返贫监测 criteria (issue #20)


def set_monitoring_criteria(store: Store, year, line, min_months=6, risk_days=180, source: str = "") -> dict:
    """Set (or correct) one year's monitoring criteria: the monitoring income line (元/人·年), the
    minimum months under monitoring before a risk may be eliminated, and how many days a risk may
    stay open before the work lists name it."""
    require_edit(store)
    year, amount = parse_year(year), parse_amount(line)
    numbers = {}
    for key, value, label, high in (("min_months", min_months, "最短监测时间(月)", 120),
                                    ("risk_days", risk_days, "风险消除期限(天)", 3650)):
        try:
            numbers[key] = int(str(value).strip())
        except ValueError:
            raise ReferenceDataError(f"{label}应为整数,而不是“{value}”") from None
        if not 0 <= numbers[key] <= high:
            raise ReferenceDataError(f"{label} {numbers[key]} 不在 0 到 {high} 之间")
    source = _clean_name(source)
    if len(source) > SOURCE_MAX:
        raise ReferenceDataError(f"来源说明过长({len(source)} 个字,最多 {SOURCE_MAX} 个)")
    store.set_monitoring_criteria(year, amount, numbers["min_months"], numbers["risk_days"], source)
    return store.monitoring_criteria(year)


def monitoring_criteria(store: Store) -> list[dict]:
    """Every year's monitoring criteria (year, line, min_months, risk_days, source), oldest first."""
    return store.all_monitoring_criteria()
