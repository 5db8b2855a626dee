"""Validation of household documents against the dictionary.

Validation reports; it never changes or discards input. Every finding names the record, the field,
the rule and carries a Chinese message and a severity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from app.core.text import printable
from app.core import divisions, idnumber, values
from app.core.dictionary import Dictionary, Field, default
from app.core.rules import RULES

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    record_id: str | None
    kind: str
    field: str
    rule: str
    message: str
    severity: str = ERROR
    record_label: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        level = "错误" if self.severity == ERROR else "提醒"
        d = default()
        kind = d.kinds.get(self.kind)
        where = self.record_label or (kind.label if kind is not None else self.kind)
        return printable(f"[{level}] {where} · {field_label(d, self.kind, self.field)}:{self.message}")


def field_label(d: Dictionary, kind: str, key: str) -> str:
    """What a finding is about, as the user reads it: a field's label, or for a rule about a whole
    list of child records (``members``, ``helpers``) that kind's label (家庭成员, 帮扶责任人)."""
    k = d.kinds.get(kind)
    if k is not None and key in k.fields:
        return k.fields[key].label
    if key == "village_code":
        return "所在村"
    for child in d.child_kinds(kind):
        if key in (child.key, collection(child.key)):
            return child.label
    return key


def collection(kind: str) -> str:
    """The key under which a household document lists its child records of `kind`."""
    return kind + "s"


def household_label(fields: dict | None) -> str:
    """The one way messages name a household: `户主“邵成德”(户编号 5226341012011002)`; a value not
    yet filled in reads 未填 / 未编号."""
    fields = fields or {}
    return f"户主“{fields.get('head_name') or '未填'}”(户编号 {fields.get('household_number') or '未编号'})"


def record_label(dictionary: Dictionary, kind: str, record: dict) -> str:
    k = dictionary.kinds[kind]
    title = record.get(k.title_field) if k.title_field else None
    return f"{k.label}“{title}”" if title not in (None, "") else k.label


def check_field(field: Field, value, record: dict, dictionary: Dictionary) -> list[tuple[str, str, str]]:
    """(rule, message, severity) problems of one field's stored value."""
    out = []
    if values.is_empty(value):
        # a read-only field with a default (household status: 未脱贫) is filled in when the record
        # is first saved; nobody can type it, so its absence is not the user's error
        if field.required and field.visible(record) and not (field.readonly and field.default is not None):
            out.append(("required", f"“{field.label}”为必填项", ERROR))
        return out
    stored, message = values.coerce(field, value, dictionary)
    if message:
        out.append(("type", message, ERROR))
        return out
    if stored != value and field.type in ("integer", "decimal", "date", "bool", "code", "multi_code"):
        # stored values are canonical; a non-canonical one came from outside the store
        out.append(("type", f"“{field.label}”的值“{value}”格式不规范", WARNING))
    t = field.type
    if t in ("integer", "decimal") and isinstance(stored, (int, float)):
        if field.min is not None and stored < field.min:
            out.append(("range", f"“{field.label}”不能小于 {field.min:g}", ERROR))
        if field.max is not None and stored > field.max:
            out.append(("range", f"“{field.label}”不能大于 {field.max:g}", ERROR))
    if t == "text" and field.max_length and len(str(stored)) > field.max_length:
        out.append(("length", f"“{field.label}”最多 {field.max_length} 个字", ERROR))
    if t == "text" and field.pattern == "digits" and not str(stored).replace(" ", "").isdigit():
        out.append(("pattern", f"“{field.label}”只能包含数字", ERROR))
    if t == "multi_code" and field.max_items and len(stored) > field.max_items:
        out.append(("range", f"“{field.label}”最多选 {field.max_items} 项", ERROR))
    if t == "id_number":
        try:
            idnumber.parse(stored)
        except idnumber.IdNumberError as exc:
            out.append(("id_number", str(exc), ERROR))
    if t == "phone" and not values.phone_ok(stored):
        out.append(("phone", f"“{field.label}”“{stored}”不对:应为11位手机号或带区号的固定电话", ERROR))
    if t == "date" and stored > values.dt.date.today().isoformat() and field.key not in ("deadline", "end_date"):
        out.append(("range", f"“{field.label}”晚于今天", WARNING))
    if t == "date" and stored < _EARLIEST.get(field.key, PROGRAM_START):
        what = "1900 年以前" if field.key == "birth_date" else "2013 年建档立卡工作开始以前"
        out.append(("range", f"“{field.label}” {stored} 在{what},请核对", WARNING))
    return out


FROM_ID_NUMBER = ("sex", "birth_date")  # the editor fills these from a valid ID number (app.ui.forms)
PROGRAM_START = "2013-01-01"  # 建档立卡 began in 2013-2014: a programme date before it is a typing slip
_EARLIEST = {"birth_date": "1900-01-01"}


def validate_record(kind: str, record: dict, household: dict | None = None, dictionary: Dictionary | None = None) -> list[Finding]:
    """Field checks and the kind's named rules for one record (household rules need the document)."""
    d = dictionary or default()
    k = d.kind(kind)
    rid = record.get("id")
    label = record_label(d, kind, record)
    findings = []
    for field in k.fields.values():
        for rule, message, severity in check_field(field, record.get(field.key), record, d):
            findings.append(Finding(rid, kind, field.key, rule, message, severity, label))
    if any(f.rule == "id_number" for f in findings):
        # sex and birth date are filled in from a valid ID number: while the number is wrong, its
        # own error is the one to fix, not a second "“性别”为必填项"
        findings = [f for f in findings if not (f.rule == "required" and f.field in FROM_ID_NUMBER)]
    for name in k.rules:
        for field, message, severity in RULES[name](record, household if household is not None else record):
            findings.append(Finding(rid, kind, field, name, message, severity, label))
    return findings


def validate_household(doc: dict, dictionary: Dictionary | None = None,
                       known_villages: divisions.KnownVillages | None = None) -> list[Finding]:
    """Validate a whole household document: the household, every member and child record."""
    d = dictionary or default()
    findings = []
    code = doc.get("village_code")
    label = record_label(d, "household", doc)
    if not divisions.is_village_code(code or ""):
        findings.append(Finding(doc.get("id"), "household", "village_code", "village_code",
                                f"村代码“{code or ''}”应为12位统计用区划代码(县6位+乡3位+村3位)", ERROR, label))
    elif known_villages is not None and code not in known_villages:
        findings.append(Finding(doc.get("id"), "household", "village_code", "village_code",
                                known_villages.not_known(code), WARNING, label))
    number = doc.get("household_number")
    if number not in (None, "") and divisions.is_village_code(code or "") and not number_fits_village(number, code):
        findings.append(Finding(doc.get("id"), "household", "household_number", "household_number",
                                f"户编号“{number}”应为本户的村代码 {code} 加序号(如 {code}0001):"
                                "请核对户编号和村代码;新户可以不填户编号,由程序自动编号", ERROR, label))
    findings += validate_record("household", doc, doc, d)
    for child in d.child_kinds("household"):
        for record in doc.get(collection(child.key), []):
            findings += validate_record(child.key, record, doc, d)
    seen: dict[str, str] = {}
    for m in doc.get("members", []):
        number = m.get("id_number")
        if number:
            number = idnumber.normalise(number)
            if number in seen:
                findings.append(Finding(m.get("id"), "member", "id_number", "duplicate_id_number",
                                        f"身份证号码与本户成员“{seen[number]}”重复", ERROR, record_label(d, "member", m)))
            seen[number] = m.get("name") or "?"
    return findings


def number_fits_village(number, village_code: str) -> bool:
    """Whether a 户编号 is the village's code followed by a sequence number: 4 digits in this
    program's own numbers; the national system's exports write 3, ledgers of very large villages up
    to 6."""
    text = str(number)
    tail = text[len(village_code):]
    return text.startswith(village_code) and 1 <= len(tail) <= 6 and tail.isascii() and tail.isdigit()


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == ERROR for f in findings)


_REQUIRED: dict[int, tuple] = {}  # id(dictionary) -> (dictionary, required household fields, required member fields)


def _required_fields(d: Dictionary) -> tuple[list, list]:
    """(key, show_if condition or None) of the required fields of a household and of a member."""
    found = _REQUIRED.get(id(d))
    if found is None or found[0] is not d:
        found = _REQUIRED[id(d)] = (d, *[[(f.key, f.show_if) for f in d.kinds[k].fields.values() if f.required]
                                         for k in ("household", "member")])
    return found[1], found[2]


def completeness(doc: dict, dictionary: Dictionary | None = None) -> float:
    """Share (0..1) of required, visible fields filled in across the household and its members."""
    d = dictionary or default()
    house_fields, member_fields = _required_fields(d)  # the window's list asks this of every household
    total = filled = 0
    for fields, records in ((house_fields, (doc,)), (member_fields, doc.get("members", []))):
        for record in records:
            for key, condition in fields:  # Field.visible and values.is_empty, inline
                if condition is None or condition.holds(record):
                    total += 1
                    value = record.get(key)
                    filled += not (value is None or value == "" or value == [])
    return filled / total if total else 1.0
