"""What import-table is told beyond the file: --set values, --codes, --allow-incomplete, and the
required columns a file lacks (said once for the whole file)."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.core import values
from app.core.dictionary import Dictionary, default
from app.tables import mapping as mp
from app.tables.reader import TableError


@dataclass
class Options:
    """How to read the file beyond its own columns (import-table --set, --codes, --allow-incomplete)."""

    fixed: dict = field(default_factory=dict)   # target -> value for every row that leaves it empty
    codes: str | None = None                    # whose bare numeric codes: "national", "jiandang" or None
    allow_incomplete: bool = False              # import households whose only problem is a missing required value


# required fields a file may leave out because they are filled another way
DERIVED = {
    "member.sex": "member.id_number",            # from the ID number
    "member.birth_date": "member.id_number",
    "household.family_size": None,               # counted from the members
    "household.head_name": "member.relation",    # the member whose 与户主关系 is 户主
}


def missing_columns(targets: set, d: Dictionary) -> list[tuple[str, str]]:
    """(target, label) of every required household or member field no column (nor --set) gives."""
    out = []
    kinds = ["household", "member"] + sorted({t.split(".")[0] for t in targets if t.startswith("income.")})
    for kind in kinds:
        for f in d.kinds[kind].fields.values():
            target = f"{kind}.{f.key}"
            if not f.required or f.show_if is not None or (f.readonly and f.default is not None) or target in targets:
                continue
            if target in DERIVED and (DERIVED[target] is None or DERIVED[target] in targets):
                continue
            out.append((target, f.label))
    return out


def resolve_target(name: str, d: Dictionary | None = None) -> str | None:
    """A field given by its label (识别标准, 成员·民族), a heading synonym or its name
    (identification_standard, household.identification_standard) as a target, or None."""
    d = d or default()
    text = mp.normalise_header(name)
    if mp.valid_target(text, d) and "." in text:
        return text
    for kind in ("household", "member"):
        if text in d.kinds[kind].fields:
            return f"{kind}.{text}"
    for target, label in mp.choices(d):
        if text in (mp.normalise_header(label), mp.normalise_header(label.split("·", 1)[-1])):
            return target if "." in target else None
    target = mp.known_headers("household", d).get(text)
    return target if target and "." in target else None


def parse_fixed(items: list[str], d: Dictionary | None = None) -> dict[str, str]:
    """--set FIELD=VALUE arguments as {target: value}; raises TableError naming a bad one."""
    d = d or default()
    out = {}
    for item in items or []:
        name, sep, value = str(item).partition("=")
        if not sep or not name.strip() or not value.strip():
            raise TableError(f"--set “{item}”应写作 字段=值,如 --set 识别标准=国家标准")
        target = resolve_target(name, d)
        if target is None:
            near = mp.suggest(name, "household", d)
            hint = f"最接近的是“{mp.target_label(near, d)}”;" if near and "." in near else ""
            raise TableError(f"--set “{item}”:数据字典中没有“{name.strip()}”这个字段({hint}写中文名称或字段名,"
                             "见 docs/tables.md)")
        out[target] = value.strip()
    return out


def fixed_values(fixed: dict, d: Dictionary, codes: str | None = None) -> dict:
    """--set values checked and coerced once: a wrong one refuses the whole import (every row would
    carry it). A bare number in a code field is read as the file's cells are (--codes)."""
    out = {}
    for target, raw in (fixed or {}).items():
        kind, key = target.split(".", 1)
        f = d.kinds[kind].fields[key]
        message = None
        if f.type == "code":
            raw, message = bare_code(f, raw, codes, d)
        if message:
            raise TableError(f"--set {f.label}={raw}:{message}。未导入任何数据。")
        value, message = values.coerce(f, raw, d)
        if message:
            raise TableError(f"--set {f.label}={raw}:{message}。未导入任何数据。")
        out[target] = value
    return out


CODES_HINT = "或用 --codes national / --codes jiandang 说明是哪一方的代码"  # the window says CODES_HINT_WINDOW
CODES_HINT_WINDOW = "或在右上的“代码列中的数字”中选择是哪一方的代码"


def bare_code(f, raw, codes: str | None, d: Dictionary):
    """(value, message): a bare number in a code column read as whose codes the mapping says
    (--codes national|jiandang); without that it is refused with the labels to write instead,
    because the national system and this program number some lists differently."""
    if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, str) and raw.strip().isdigit())):
        return raw, None
    from app.core import synonyms  # noqa: PLC0415

    text = str(raw).strip()
    labels = "、".join(d.codes[f.codes].values()) if len(d.codes[f.codes]) <= 20 else "代码表中的文字"
    if codes == "jiandang" or f.codes in synonyms.default().standard:
        return text, None
    if codes == "national":
        if f.codes in synonyms.default().national:
            code = synonyms.national_code(f.codes, text)
            if code is None:
                return raw, f"“{text}”不是全国扶贫开发信息系统“{f.label}”的代码(可填文字:{labels})"
            return code, None
        return text, None  # lists the national system numbers as this program does
    return raw, (f"“{f.label}”写的是数字代码“{text}”:全国系统和本程序的代码不全相同,无法确定含义。"
                 f"请填文字({labels}),{CODES_HINT}")
