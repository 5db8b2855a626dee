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


def synonyms_of(target: str) -> tuple[str, ...]:
    """Other headings accepted for a target (forms/synonyms.toml [headings])."""
    return synonym_table().headings.get(target, ())


def synonym_table():
    from app.core import synonyms  # noqa: PLC0415

    return synonyms.default()


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
            return label if kind in ("household", "member") else f"{'收入' if kind == 'income' else d.kinds[kind].label}·{label}"
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
    return kind in ROW_KINDS if sheet_kind == "household" else kind == sheet_kind


# Kinds a household/member row may carry: the national forms put the year's income on the household's
# row (资产收益分红型收入 …); such a row gives the household one income record.
ROW_KINDS = ("household", "member", "income")


def choices(dictionary: Dictionary | None = None) -> list[tuple[str, str]]:
    """(target, label) of every target a household/member column can map to, for a mapping editor."""
    d = dictionary or default()
    out = [(t, label) for t, label in SPECIAL_TARGETS.items()]
    for k, prefix in (("household", "户"), ("member", "成员"), ("income", "收入")):
        out += [(f"{k}.{f.key}", f"{prefix}·{f.label}") for f in d.kinds[k].fields.values()]
    return out


def known_headers(kind: str = "household", dictionary: Dictionary | None = None) -> dict[str, str]:
    """Normalised header text → target. kind "household" covers household+member sheets (and the
    special targets); any other child kind covers a sheet of that kind."""
    d = dictionary or default()
    out: dict[str, str] = {}
    table = synonym_table().headings
    if kind == "household":
        for k in ("income", "member", "household"):  # household labels win over member ones on a clash
            for f in d.kinds[k].fields.values():
                out[normalise_header(f.label)] = f"{k}.{f.key}"
        for target, words in table.items():
            if fits(target, "household"):
                for w in words:
                    out.setdefault(normalise_header(w), target)
        for target, label in SPECIAL_TARGETS.items():
            out[normalise_header(label)] = target
        kinds = ROW_KINDS
    else:
        for f in d.kinds[kind].fields.values():
            out[normalise_header(f.label)] = f"{kind}.{f.key}"
        for target, words in table.items():
            if target in (VILLAGE_CODE, HEAD_ID_NUMBER, "household.household_number") or target.startswith(kind + "."):
                for w in words:
                    out.setdefault(normalise_header(w), target)
        out[normalise_header(d.kinds["household"].fields["household_number"].label)] = "household.household_number"
        for target in (VILLAGE_CODE, HEAD_ID_NUMBER):  # our own exports head child sheets with these labels
            out.setdefault(normalise_header(SPECIAL_TARGETS[target]), target)
        kinds = (kind,)
    for k in kinds:
        for f in d.kinds[k].fields.values():
            label = normalise_header(f.label)
            if f.type == "bool" and (label.startswith("是否") or not any(w in label for w in ("是否", "有无"))):
                # 是否参加大病保险 for 参加大病保险: official forms differ in 是否 alone
                out.setdefault(label[2:] if label.startswith("是否") else "是否" + label, f"{k}.{f.key}")
            bare = re.sub(r"\([^()]*\)$", "", label)  # 住房面积 for 住房面积(平方米): the unit left out
            if bare and bare != label:
                out.setdefault(bare, f"{k}.{f.key}")
    return out


def suggest(header: str, kind: str = "household", dictionary: Dictionary | None = None) -> str | None:
    """The closest known heading's target for an unmapped header (a typing slip, a longer or shorter
    official heading), or None when nothing is close."""
    import difflib  # noqa: PLC0415

    known = known_headers(kind, dictionary)
    h = normalise_header(header)
    contained = sorted((k for k in known if len(k) >= 2 and (k in h or h in k)), key=lambda k: -len(k))
    if contained:
        return known[contained[0]]
    close = [k for k in difflib.get_close_matches(h, list(known), n=3, cutoff=0.6) if abs(len(k) - len(h)) <= 1]
    return known[close[0]] if close else None  # a slip of one character (户主性名), not a shared word


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


CODE_SOURCES = ("national", "jiandang")


def load_mapping(path) -> dict[str, str]:
    """A mapping file: JSON {"columns": {"表头": "member.id_number", "备注": ""}} (UTF-8)."""
    return load_mapping_file(path)[0]


def load_mapping_file(path) -> tuple[dict[str, str], str | None]:
    """(columns, codes): the mapping and whose bare numeric codes the file holds ("codes":
    "national" | "jiandang", optional)."""
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
    bad = [f"“{h}”对应“{t}”" for h, t in columns.items() if not isinstance(t, str) or not valid_target(t)]
    if bad:
        raise TableError(f"对照文件 {path} 中这些字段在数据字典中不存在:{'、'.join(bad)}。"
                         "字段写作 household.字段名 或 member.字段名(见 docs/tables.md)")
    codes = data.get("codes")
    if codes is not None and codes not in CODE_SOURCES:
        raise TableError(f"对照文件 {path} 中“codes”应为 \"national\"(全国扶贫开发信息系统的代码)或 \"jiandang\"(本程序的代码)")
    return {normalise_header(h): t for h, t in columns.items()}, codes


def save_mapping(path, mapping: dict[str, str], codes: str | None = None) -> None:
    """Write a mapping file atomically (headers and field names only, no personal data)."""
    from app import fileio  # noqa: PLC0415

    data = json.dumps({"columns": mapping, **({"codes": codes} if codes else {})}, ensure_ascii=False, indent=2)
    fileio.write_atomic(path, data + "\n")


def code_for(list_name: str, text) -> str | None:
    """The code a spelling stands for (forms/synonyms.toml and the labels), or None."""
    from app.core import synonyms  # noqa: PLC0415

    return synonyms.code_for(list_name, text)


def code_aliases(dictionary: Dictionary | None = None) -> dict[str, dict[str, str]]:
    """Per code list: accepted spelling (as compared, app.core.synonyms.value_key) → code. Kept for
    callers of the former table; the spellings now live in forms/synonyms.toml."""
    return synonym_table().values


def __getattr__(name: str):
    """SYNONYMS, the former heading table (target → other headings), now read from forms/synonyms.toml."""
    if name == "SYNONYMS":
        return {t: list(words) for t, words in synonym_table().headings.items()}
    raise AttributeError(name)
