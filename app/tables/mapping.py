"""Column headers to dictionary fields.

A *target* is ``"household.<field>"``, ``"member.<field>"``, ``"<kind>.<field>"`` for the other child
kinds (on sheets named after the kind, e.g. 家庭收入), or one of the special targets below; ``""`` means
"ignore this column". A mapping maps header text (as written in the file, whitespace removed) to a target.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from app.core.dictionary import Dictionary, default

VILLAGE_CODE = "village_code"          # 12-digit village code
VILLAGE_NAME = "village_name"          # village name, looked up in the database's divisions
HEAD_ID_NUMBER = "head_id_number"      # the head's ID number on a member or household row (grouping key)
SPECIAL_TARGETS = {
    VILLAGE_CODE: "村代码",
    VILLAGE_NAME: "村名称",
    HEAD_ID_NUMBER: "户主公民身份号码",
}

# Common spellings in county ledgers, beyond the dictionary's own labels.
SYNONYMS: dict[str, list[str]] = {
    "household.household_number": ["户编号", "户号", "贫困户编号", "户编码", "家庭编号"],
    "household.head_name": ["户主姓名", "户主", "户主名称"],
    "household.group": ["村民小组", "组", "组别", "小组", "所在组", "村组"],
    "household.phone": ["联系电话", "电话", "手机", "手机号", "手机号码", "联系方式", "户主电话"],
    "household.bank_name": ["开户银行", "开户行"],
    "household.bank_account": ["银行账号", "银行卡号", "账号", "银行帐号", "存折账号"],
    "household.attribute": ["贫困户属性", "户属性", "贫困属性", "属性"],
    "household.status": ["脱贫状态", "贫困状态", "户状态"],
    "household.main_cause": ["主要致贫原因", "致贫原因"],
    "household.family_size": ["家庭人口数", "人口数", "家庭人口", "户人口数", "人口", "家庭人数"],
    "household.first_identified": ["首次识别时间", "识别时间", "识别年月", "纳入时间"],
    "household.planned_exit_year": ["计划脱贫年度", "计划脱贫年份"],
    "household.exit_year": ["脱贫年度", "脱贫年份", "脱贫时间"],
    "member.name": ["姓名", "成员姓名", "家庭成员姓名"],
    "member.id_number": ["公民身份号码", "证件号码", "身份证号", "身份证号码", "身份证", "证件号", "残疾证号"],
    "member.relation": ["与户主关系", "与户主的关系", "关系"],
    "member.sex": ["性别"],
    "member.birth_date": ["出生日期", "出生年月", "生日"],
    "member.health": ["健康状况", "健康状态"],
    "member.labour_skill": ["劳动技能", "劳动能力"],
    "member.education": ["文化程度", "学历"],
    "member.work_months": ["务工时间(月)", "务工时间", "务工月数"],
    VILLAGE_CODE: ["村代码", "村编码", "行政区划代码", "区划代码", "村级代码", "统计用区划代码"],
    VILLAGE_NAME: ["村名称", "村名", "行政村", "所在村", "村"],
    HEAD_ID_NUMBER: ["户主公民身份号码", "户主身份证号", "户主身份证号码", "户主证件号码"],
}

_SPACES = re.compile(r"[\s\u3000]+")
_BRACKETS = str.maketrans("()（）【】[]", "()()()()")


def normalise_header(text) -> str:
    """Header text as compared: no whitespace or line breaks, full-width brackets made half-width,
    a leading '*' (required marker) dropped."""
    if text is None:
        return ""
    return _SPACES.sub("", str(text)).translate(_BRACKETS).lstrip("*＊")


def target_label(target: str, dictionary: Dictionary | None = None) -> str:
    d = dictionary or default()
    if target in SPECIAL_TARGETS:
        return SPECIAL_TARGETS[target]
    if "." in target:
        kind, key = target.split(".", 1)
        if kind in d.kinds and key in d.kinds[kind].fields:
            label = d.kinds[kind].fields[key].label
            return label if kind in ("household", "member") else f"{d.kinds[kind].label}·{label}"
    return target


def valid_target(target: str, dictionary: Dictionary | None = None) -> bool:
    d = dictionary or default()
    if target == "" or target in SPECIAL_TARGETS:
        return True
    kind, _, key = target.partition(".")
    return kind in d.kinds and key in d.kinds[kind].fields and (kind == "household" or d.kinds[kind].parent == "household")


def fits(target: str, sheet_kind: str) -> bool:
    """Whether a target can be used on a sheet of that kind ("household": households and members)."""
    if target == "" or target in SPECIAL_TARGETS or target == "household.household_number":
        return True
    kind = target.split(".", 1)[0]
    return kind in ("household", "member") if sheet_kind == "household" else kind == sheet_kind


def choices(dictionary: Dictionary | None = None) -> list[tuple[str, str]]:
    """(target, label) of every target a household/member column can map to, for a mapping editor."""
    d = dictionary or default()
    out = [(t, label) for t, label in SPECIAL_TARGETS.items()]
    for k, prefix in (("household", "户"), ("member", "成员")):
        out += [(f"{k}.{f.key}", f"{prefix}·{f.label}") for f in d.kinds[k].fields.values()]
    return out


def known_headers(kind: str = "household", dictionary: Dictionary | None = None) -> dict[str, str]:
    """Normalised header text → target. kind "household" covers household+member sheets (and the
    special targets); any other child kind covers a sheet of that kind."""
    d = dictionary or default()
    out: dict[str, str] = {}
    if kind == "household":
        for k in ("member", "household"):  # household labels win over member ones on a clash
            for f in d.kinds[k].fields.values():
                out[normalise_header(f.label)] = f"{k}.{f.key}"
        for target, words in SYNONYMS.items():
            for w in words:
                out.setdefault(normalise_header(w), target)
        for target, label in SPECIAL_TARGETS.items():
            out[normalise_header(label)] = target
    else:
        for f in d.kinds[kind].fields.values():
            out[normalise_header(f.label)] = f"{kind}.{f.key}"
        for target, words in SYNONYMS.items():
            if target in (VILLAGE_CODE, HEAD_ID_NUMBER) or target == "household.household_number":
                for w in words:
                    out.setdefault(normalise_header(w), target)
        out[normalise_header(d.kinds["household"].fields["household_number"].label)] = "household.household_number"
    return out


def sheet_kind(title: str, dictionary: Dictionary | None = None) -> str:
    """The child kind a sheet holds when it is named after one (家庭收入, 帮扶措施 …), else household."""
    d = dictionary or default()
    t = normalise_header(title)
    for k in d.child_kinds("household"):
        if k.key != "member" and t == normalise_header(k.label):
            return k.key
    return "household"


def guess(headers: list[str], kind: str = "household", saved: dict[str, str] | None = None,
          dictionary: Dictionary | None = None) -> dict[str, str]:
    """A target for each header ("" when unknown). A saved mapping wins over the built-in names."""
    known = known_headers(kind, dictionary)
    saved = {normalise_header(k): v for k, v in (saved or {}).items()}
    out = {}
    for h in headers:
        n = normalise_header(h)
        if not n:
            continue
        out[n] = saved[n] if n in saved else known.get(n, "")
    return out


def load_mapping(path) -> dict[str, str]:
    """A mapping file: JSON {"columns": {"表头": "member.id_number", "备注": ""}} (UTF-8)."""
    from app.tables.reader import TableError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise TableError(f"无法读取对照文件 {path}:{exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise TableError(f"对照文件 {path} 不是有效的 JSON:{exc}") from None
    columns = data.get("columns") if isinstance(data, dict) else None
    if not isinstance(columns, dict):
        raise TableError(f"对照文件 {path} 应为 {{\"columns\": {{\"表头\": \"字段\"}}}} 的形式")
    bad = [f"“{h}”→“{t}”" for h, t in columns.items() if not isinstance(t, str) or not valid_target(t)]
    if bad:
        raise TableError(f"对照文件 {path} 中这些字段在数据字典中不存在:{'、'.join(bad)}。"
                         "字段写作 household.字段名 或 member.字段名(见 docs/tables.md)")
    return {normalise_header(h): t for h, t in columns.items()}


def save_mapping(path, mapping: dict[str, str]) -> None:
    """Write a mapping file atomically (headers and field names only, no personal data)."""
    from app import fileio  # noqa: PLC0415

    fileio.write_atomic(path, json.dumps({"columns": mapping}, ensure_ascii=False, indent=2) + "\n")


# Other spellings of code labels seen in ledgers (the label itself and the code always work too).
CODE_ALIASES: dict[str, dict[str, str]] = {
    "relation": {"户主": "01", "本人": "01", "妻子": "02", "妻": "02", "丈夫": "02", "夫": "02", "儿子": "03",
                 "长子": "03", "次子": "03", "女儿": "04", "长女": "04", "次女": "04", "儿媳": "05", "女婿": "06",
                 "父亲": "11", "母亲": "12"},
    "household_attribute": {"一般户": "1", "低保户": "2", "五保户": "3", "特困户": "3", "特困供养户": "3",
                            "一般脱贫户": "1", "低保脱贫户": "2", "特困供养脱贫户": "3"},
    "education": {"文盲": "1", "半文盲": "1", "大专": "5", "本科": "5", "大学": "5"},
    "dilapidated_level": {"C": "C", "D": "D", "c": "C", "d": "D"},
}


def code_aliases(dictionary: Dictionary | None = None) -> dict[str, dict[str, str]]:
    """Per code list: accepted spelling → code. Covers CODE_ALIASES, each part of a label written
    with '/', the label without a leading 之 (子, 女, 孙子 …) and full-/half-width brackets."""
    d = dictionary or default()
    out: dict[str, dict[str, str]] = {}
    for name, codes in d.codes.items():
        table: dict[str, str] = {}
        for code, label in codes.items():
            for part in [label, *label.split("/")]:
                for variant in (part, part.translate(_BRACKETS), part.replace("(", "(").replace(")", ")")):
                    table.setdefault(variant, code)
                    if variant.startswith("之") and len(variant) > 1:
                        table.setdefault(variant[1:], code)
        for alias, code in CODE_ALIASES.get(name, {}).items():
            table.setdefault(alias, code)
        out[name] = table
    return out
