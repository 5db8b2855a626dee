"""Household files as documents: read, check and save a household with its members and child
records in one transaction.

A *household document* is the JSON shape that `jiandang add --json` reads and `jiandang list --json`
prints (see docs/json.md)::

    {"id": "...", "village_code": "522634101201", "head_name": "...", ...household fields...,
     "members": [{"id": "...", "name": "...", ...}], "incomes": [...], "helpers": [...],
     "measures": [...], "plans": [...], "visits": [...]}

Records of a household that a document leaves out are kept as they are. A child record with
``"removed_reason": CODE`` is removed (a tombstone with that reason, from the 成员增减 code list).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from app.core import idnumber, procedures, values
from app.core.dictionary import Dictionary, default
from app.core.divisions import KnownVillages
from app.core.validation import (
    ERROR, WARNING, Finding, collection, has_errors, household_label, record_label, validate_household,
)
from app.store import Record, Store, StoreError

ROUTING_KEYS = {"id", "village_code"}
REMOVED = "removed_reason"


class InputError(ValueError):
    """A document that cannot be taken as it is; the message names the record and the fields."""


class StatusChangeRefused(InputError):
    """The document changes the household's 脱贫状态, which only an effective proposal may do."""


class ValidationFailed(ValueError):
    """Saving was refused because of error-level findings (nothing was written)."""

    def __init__(self, findings: list[Finding]):
        self.findings = findings
        errors = [f for f in findings if f.severity == ERROR]
        super().__init__("\n".join(str(f) for f in errors))


@dataclass
class SaveResult:
    household_id: str
    created: bool
    changes: int
    findings: list[Finding] = field(default_factory=list)
    child_ids: dict[str, list[str]] = field(default_factory=dict)
    cleared: list[str] = field(default_factory=list)  # labels of stored household fields the document left out


# ---------------------------------------------------------------------- reading


def _as_dict(record: Record) -> dict:
    return {"id": record.id, **record.fields}


def _creation_order(record: Record) -> tuple[str, str]:
    """Children in the order they were created, the same at every site: by the clock of their
    creation (the earliest clock they carry; unique per site, and carried with them by sync), then id.
    Storage order (rowid) differs between a laptop and the county that merged it."""
    return (min(record.clocks.values(), default=record.hlc) if record.clocks else record.hlc, record.id)


def assemble(household: Record, children: list[Record], dictionary: Dictionary | None = None) -> dict:
    """A household document from its records."""
    d = dictionary or default()
    doc = {"id": household.id, "village_code": household.village_code, **household.fields}
    for kind in d.child_kinds("household"):
        doc[collection(kind.key)] = []
    own = {kind.key for kind in d.child_kinds("household")}
    for child in sorted(children, key=_creation_order):
        if not child.deleted and child.kind in own:  # proposals also name the household as parent
            doc[collection(child.kind)].append(_as_dict(child))
    return doc


def document(store: Store, household_id: str) -> dict | None:
    """The current document of one household, or None if there is no such (live) household."""
    household = store.get(household_id)
    if household is None or household.kind != "household" or household.deleted:
        return None
    return assemble(household, list(store.records(parent_id=household_id)))


def find_id(store: Store, ref: str) -> str | None:
    """The record id of a live household given its record id or its 户编号 (what `jiandang list`
    prints and the card shows), or None."""
    ref = (ref or "").strip()
    if not ref:
        return None
    record = store.get(ref)
    if record is not None and record.kind == "household" and not record.deleted:
        return record.id
    for record in store.records("household"):
        if record.fields.get("household_number") == ref:
            return record.id
    return None


DOCUMENT_BATCH = 500


def iter_documents(store: Store, village_code: str | None = None,
                   progress: Callable[[int, int], None] | None = None) -> Iterator[dict]:
    """Documents of every household (of a village), in entry order, assembled a batch of households
    at a time: memory stays flat however many households the database holds (`list --json`,
    `validate`, printing a large village)."""
    d = default()
    own = [kind.key for kind in d.child_kinds("household")]
    total = store.count("household", village_code) if progress else 0
    batch: list[Record] = []
    done = 0

    def assembled(houses: list[Record]) -> list[dict]:
        children: dict[str, list[Record]] = defaultdict(list)
        for record in store.children_of([h.id for h in houses], own):
            children[record.parent_id].append(record)
        return [assemble(h, children.get(h.id, []), d) for h in houses]

    for household in store.records("household", village_code=village_code):
        batch.append(household)
        if len(batch) >= DOCUMENT_BATCH:
            for doc in assembled(batch):
                done += 1
                if progress and done % 200 == 0:
                    progress(done, total)
                yield doc
            batch = []
    if batch:
        for doc in assembled(batch):
            done += 1
            if progress and done % 200 == 0:
                progress(done, total)
            yield doc


def documents(store: Store, village_code: str | None = None, ids: list[str] | None = None,
              progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Documents of every household (of a village, or with the given ids), in entry order."""
    if ids is not None:
        return [doc for doc in (document(store, i) for i in ids) if doc]
    return list(iter_documents(store, village_code, progress))


# ---------------------------------------------------------------------- checking input


TEXT_TYPES = ("text", "phone", "id_number")
_JSON_TYPE_WORDS = {int: "数字", float: "数字", bool: "true/false", list: "列表", dict: "对象"}


def _check_types(record: dict, kind, where: str) -> None:
    """A number, list or object given for a text field (JSON `"head_name": 12345` or `["a"]`) is
    refused naming the field: stored as "12345" or "['a']" it would look like data someone typed."""
    for key, value in record.items():
        f = kind.fields.get(key)
        if f is not None and f.type in TEXT_TYPES and value is not None and not isinstance(value, str):
            raise InputError(f"{where}: “{f.label}”({key})应为文字(JSON 中加引号),而不是"
                             f"{_JSON_TYPE_WORDS.get(type(value), type(value).__name__)}")


def check_keys(doc: dict, where: str, dictionary: Dictionary | None = None) -> None:
    """Refuse keys the dictionary does not know, naming them (never silently dropped), and values
    of the wrong JSON type for text fields."""
    d = dictionary or default()
    if not isinstance(doc, dict):
        raise InputError(f"{where}: 应为一个 JSON 对象")
    allowed = set(d.kinds["household"].fields) | ROUTING_KEYS | {collection(k.key) for k in d.child_kinds("household")}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise InputError(f"{where}: 字典中没有这些字段:{', '.join(unknown)}。请检查拼写,或先更新 forms/ 数据字典")
    _check_types(doc, d.kinds["household"], where)
    for kind in d.child_kinds("household"):
        items = doc.get(collection(kind.key), [])
        if not isinstance(items, list):
            raise InputError(f"{where}: “{collection(kind.key)}”应为列表")
        allowed_child = set(kind.fields) | {"id", REMOVED}
        for i, item in enumerate(items, 1):
            if not isinstance(item, dict):
                raise InputError(f"{where} · {kind.label}第 {i} 条: 应为一个 JSON 对象")
            unknown = sorted(set(item) - allowed_child)
            if unknown:
                raise InputError(f"{where} · {kind.label}第 {i} 条: 字典中没有这些字段:{', '.join(unknown)}")
            _check_types(item, kind, f"{where} · {kind.label}第 {i} 条")


def _coerce_record(kind: str, record: dict, d: Dictionary, findings: list, household_label: str) -> dict:
    """Canonical values; a value that cannot be understood is kept as typed and reported."""
    out = {}
    for key, value in record.items():
        f = d.kinds[kind].fields.get(key)
        if f is None:
            out[key] = value
            continue
        stored, message = values.coerce(f, value, d)
        out[key] = stored
        if message:
            findings.append(Finding(record.get("id"), kind, key, "type", message, ERROR,
                                    record_label(d, kind, record) if kind != "household" else household_label))
    if kind == "member":
        _split_certificate(out)
        _fill_from_id_number(out)
    return out


def _split_certificate(member: dict) -> None:
    """A 20-digit disability certificate number given as the ID number: the first 18 are the citizen
    ID (so the person is found as a duplicate on them), the whole number goes to 残疾证号."""
    given = member.get("disability_certificate")
    if isinstance(given, str) and given.strip():
        member["disability_certificate"] = given = idnumber.normalise(given)
        citizen, certificate = idnumber.split_certificate(given)
        if certificate and member.get("id_number") in (None, ""):
            member["id_number"] = citizen  # only the certificate given: its first 18 are the ID number
    number = member.get("id_number")
    if not isinstance(number, str):
        return
    citizen, certificate = idnumber.split_certificate(number)
    if certificate:
        member["id_number"] = citizen
        member.setdefault("disability_certificate", certificate)
        if not member.get("disability_certificate"):
            member["disability_certificate"] = certificate


def _fill_from_id_number(member: dict) -> None:
    """A valid ID number gives the birth date and sex when they are left empty (as the editor fills
    them while typing); given values are kept, and a disagreement is reported by validation."""
    number = member.get("id_number")
    if not isinstance(number, str) or not idnumber.is_valid(number):
        return
    info = idnumber.parse(number)
    if member.get("birth_date") in (None, ""):
        member["birth_date"] = info.birth_date.isoformat()
    if member.get("sex") in (None, ""):
        member["sex"] = info.sex


def next_household_number(store: Store, village_code: str) -> str:
    """The next free 户编号 in a village (app.sync.numbers.next_number): on an enrolled device only
    from its blocks; with none left it raises NumbersExhausted."""
    from app.sync import numbers  # noqa: PLC0415 - only enrolled devices have blocks

    return numbers.next_number(store, village_code)


def duplicate_id_findings(store: Store, doc: dict, batch: dict[str, str] | None = None) -> list[Finding]:
    """Members of this document whose ID number another household in the database already holds.
    `batch`: households saved earlier in the same run (id -> how the input names them, e.g. 本文件第 1
    户), named that way: they are not in the database when the run is refused."""
    d = default()
    own = {m.get("id") for m in doc.get("members", []) if m.get("id")}
    findings = []
    for m in doc.get("members", []):
        number = m.get("id_number")
        if not number or not idnumber.is_valid(number):
            continue
        for other_id in store.find_id_number(number):
            if other_id in own:
                continue
            other = store.get(other_id)
            house = store.get(other.parent_id) if other and other.parent_id else None
            if other is None or (house is not None and house.id == doc.get("id")):
                continue
            if house is not None and batch and house.id in batch:
                message = f"身份证号码与{batch[house.id]}的成员“{other.fields.get('name', '?')}”相同"
            else:
                where = household_label(house.fields) if house else "另一户"
                message = f"身份证号码已登记在{where}的成员“{other.fields.get('name', '?')}”名下"
            findings.append(Finding(m.get("id"), "member", "id_number", "duplicate_id_number", message,
                                    ERROR, record_label(d, "member", m)))
    return findings


# ---------------------------------------------------------------------- saving


def prepare(store: Store, doc: dict, where: str = "文档", batch: dict[str, str] | None = None) -> tuple[dict, list[Finding], dict | None]:
    """Check a document's keys, coerce its values and merge it over the stored household.
    Returns (merged document, findings, stored document or None)."""
    d = default()
    check_keys(doc, where, d)
    findings: list[Finding] = []
    stored = document(store, doc["id"]) if doc.get("id") else None
    if doc.get("id") and stored is None:
        if store.get(doc["id"]) is not None:
            raise InputError(f"{where}: 记录 {doc['id']} 不是一个现存的贫困户")
        raise InputError(f"{where}: 本数据库中没有 id 为 {doc['id']} 的贫困户。新户不要填 id(由程序生成);"
                         "要修改已有的户,请用 jiandang list --json 取得它的 id")
    house_fields = {k: v for k, v in doc.items() if k in d.kinds["household"].fields}
    label = f"贫困户“{doc.get('head_name') or (stored or {}).get('head_name') or '?'}”"
    house_fields = _coerce_record("household", house_fields, d, findings, label)
    merged = dict(stored) if stored else {}
    merged.update(house_fields)
    if stored:
        for key in d.kinds["household"].fields:  # the document is the household's full state
            if key not in house_fields and key not in procedures.MONITORING_FIELDS:  # (but for what only
                merged.pop(key, None)                                            # procedures write, #20)
    merged["village_code"] = doc.get("village_code") or (stored or {}).get("village_code")
    merged["id"] = doc.get("id")
    for kind in d.child_kinds("household"):
        key = collection(kind.key)
        existing = {r["id"]: r for r in (stored or {}).get(key, [])}
        order = list(existing)
        for i, item in enumerate(doc.get(key, []), 1):
            item = dict(item)
            removed = item.pop(REMOVED, None)
            if item.get("id") and item["id"] not in existing:
                if store.get(item["id"]) is not None:
                    raise InputError(f"{where} · {kind.label}第 {i} 条: 记录 {item['id']} 不属于这一户")
                raise InputError(f"{where} · {kind.label}第 {i} 条: 这一户没有 id 为 {item['id']} 的{kind.label}记录。"
                                 "新增的记录不要填 id;要修改已有的,请用 jiandang list --json 取得它的 id")
            coerced = _coerce_record(kind.key, item, d, findings, label)
            if removed is not None:
                if not item.get("id") or item["id"] not in existing:
                    raise InputError(f"{where} · {kind.label}第 {i} 条: 只能删除已有的记录(需要 id)")
                reason = str(removed)
                if reason not in d.codes["member_change_reason"]:
                    raise InputError(f"{where} · {kind.label}第 {i} 条: 删除原因“{reason}”不在成员增减代码表中")
                existing[item["id"]] = {**existing[item["id"]], REMOVED: reason}
                continue
            if coerced.get("id") in existing:
                existing[coerced["id"]] = coerced
            else:
                placeholder = coerced.get("id") or f"new:{kind.key}:{i}"
                coerced["id"] = coerced.get("id") or None
                existing[placeholder] = coerced
                order.append(placeholder)
        merged[key] = [existing[k] for k in order]
    check_view = {**merged, **{collection(k.key): [r for r in merged[collection(k.key)] if REMOVED not in r]
                               for k in d.child_kinds("household")}}
    known = known_villages(store)
    for f in validate_household(check_view, d, known):
        if f.rule == "village_code" and stored is None and f.severity != ERROR:
            # a new household in a village this database does not know would get a household
            # number nobody can place; an existing one (synced before its village) stays editable
            advice = known.advice(merged.get("village_code"))
            f = Finding(f.record_id, f.kind, f.field, f.rule, f"{f.message}:{advice}", ERROR, f.record_label)
        findings.append(f)
    findings += duplicate_id_findings(store, check_view, batch)
    findings += duplicate_number_findings(store, check_view, stored, batch)
    findings += block_findings(store, check_view, stored)
    # a value that could not be read is reported while reading and again by the rules: say it once
    seen, unique = set(), []
    for f in findings:
        key = (f.record_id, f.record_label, f.kind, f.field, f.message)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return merged, unique, stored


def duplicate_number_findings(store: Store, doc: dict, stored: dict | None = None,
                              batch: dict[str, str] | None = None) -> list[Finding]:
    """The document's 户编号 when another household in the database already has it (a new number,
    or a changed one: a number that was already shared stays reported by `validate`)."""
    number = str(doc.get("household_number") or "").strip()
    if not number or (stored is not None and str(stored.get("household_number") or "").strip() == number):
        return []
    others = [h for h in store.find_household_number(number) if h != doc.get("id")]
    if not others:
        return []
    other = store.get(others[0])
    head = other.fields.get("head_name", "?") if other else "?"
    where = batch[others[0]] if batch and others[0] in batch else f"户主“{head}”的户"
    return [Finding(doc.get("id"), "household", "household_number", "duplicate_household_number",
                    f"户编号 {number} 已用在{where}上:一个户编号只能属于一户。请核对户编号;"
                    "新户可以不填,由本机自动编号", ERROR, record_label(default(), "household", doc))]


def block_findings(store: Store, doc: dict, stored: dict | None = None) -> list[Finding]:
    """On an enrolled laptop, a new or changed 户编号 must come from the laptop's blocks (its
    certificate's and the county's top-ups): another laptop may be issuing any other number, and the
    county refuses a bundle that carries one."""
    from app.sync import numbers  # noqa: PLC0415 - only enrolled devices have blocks

    number = str(doc.get("household_number") or "").strip()
    village = doc.get("village_code") or ""
    if not number or (stored is not None and str(stored.get("household_number") or "").strip() == number):
        return []
    blocks = numbers.device_blocks(store, village) if village else None
    if blocks is None or not number.startswith(village) or not number[len(village):].isdigit():
        return []  # not a laptop, or the shape is reported by validation
    if numbers.in_blocks(int(number[len(village):]), blocks):
        return []
    return [Finding(doc.get("id"), "household", "household_number", "number_block",
                    f"户编号 {number} 不在本机的户编号段({numbers.describe(blocks)})内:其他号码可能由别的电脑使用,"
                    "县里会拒收。新户请不填户编号,由本机自动编号", ERROR, record_label(default(), "household", doc))]


def _refuse_foreign_village(store: Store, village: str | None, where: str) -> None:
    """A household may be placed only in a village this database may work in. On an enrolled
    laptop a household outside its certificate would make the county refuse every later bundle
    from it, so this is refused outright, drafts included."""
    certificate = store.meta("certificate")
    if certificate and village:
        from app.sync.identity import Certificate  # noqa: PLC0415 - only enrolled devices

        cert = Certificate.from_json(certificate)
        if not cert.covers(village):
            allowed = "、".join(f"{store.division_name(v)}({v})" for v in cert.body["villages"])
            raise InputError(f"{where}: 村代码 {village} 不在本机的工作范围内(本机登记的是:{allowed})。"
                             "请核对村代码;这一户应由负责该村的工作队录入")
    known = known_villages(store)
    if known is not None and village and village not in known:
        raise InputError(f"{where}: {known.not_known(village)},不能保存(草稿也不能):{known.advice(village)}")


def known_villages(store: Store) -> KnownVillages | None:
    """The villages a household may be placed in (`app.core.divisions.KnownVillages`); None when the
    division table has neither villages nor townships (nothing to check against)."""
    villages = {row["code"] for row in store.divisions("village")}
    townships = set() if villages else {row["code"] for row in store.divisions("township")}
    return KnownVillages(villages, townships) if villages or townships else None


def save(store: Store, doc: dict, *, allow_errors: bool = False, reason: str | None = None, where: str = "文档",
         batch: dict[str, str] | None = None, prepared: tuple | None = None) -> SaveResult:
    """Save one household document in one transaction. With error-level findings nothing is written
    unless `allow_errors` (a draft): validation reports, it never destroys input. `prepared`: what
    `prepare(store, doc, where, batch)` returned just before, when the caller has already looked at
    the findings (import-table), so the document is not checked twice."""
    d = default()
    merged, findings, stored = prepared or prepare(store, doc, where, batch)
    if stored is None or stored.get("village_code") != merged.get("village_code"):
        _refuse_foreign_village(store, merged.get("village_code"), where)  # not even as a draft
    if has_errors(findings) and not allow_errors:
        raise ValidationFailed(findings)
    if stored is None and store.meta("certificate"):  # an enrolled device: what the county accepts
        refusal = procedures.start_refusal(merged, store.role)
        if refusal:
            raise StatusChangeRefused(f"{where}: {refusal}")
    controlled = ("status",) + procedures.MONITORING_FIELDS
    moved = [k for k in controlled if stored is not None and merged.get(k) != stored.get(k)]
    if moved:
        refusal = procedures.authorize_change("household", {k: merged.get(k) for k in moved},
                                              {k: stored.get(k) for k in moved}, store.role, op="update", reason=reason or "")
        if refusal:  # the status and 户类型 change only through an effective proposal (app.services.proposals)
            raise StatusChangeRefused(f"{where}: {refusal}")
    for item in merged.get("risks", []):  # a risk is recorded 已消除 only by the county's 风险消除 decision
        before = next((r for r in (stored or {}).get("risks", []) if item.get("id") and r["id"] == item["id"]), None)
        if REMOVED in item:
            continue
        risk_fields = {k: item.get(k) for k in ("state", "eliminated_date") if item.get(k) is not None or before}
        refusal = procedures.authorize_change("risk", risk_fields, {k: (before or {}).get(k) for k in risk_fields},
                                              store.role, op="update" if before else "create", reason=reason or "")
        if refusal:
            raise StatusChangeRefused(f"{where}: {refusal}")
    changes = 0
    child_ids: dict[str, list[str]] = {}
    with store.transaction():
        village = merged["village_code"]
        house = {k: merged.get(k) for k in d.kinds["household"].fields}
        if not house.get("household_number") and village:
            try:
                house["household_number"] = next_household_number(store, village)
            except StoreError as exc:  # NumbersExhausted: kept as a draft without a number, with the reason
                findings.append(Finding(merged.get("id"), "household", "household_number", "numbers_exhausted",
                                        str(exc), WARNING, record_label(d, "household", merged)))
        if house.get("status") is None and stored is None:
            house["status"] = d.kinds["household"].fields["status"].default
        if house.get("household_type") is None and stored is None:  # issue #20: 脱贫户 once out of poverty,
            house["household_type"] = (procedures.EXITED_TYPE if house.get("status") in ("2", "3", "5")
                                       else d.kinds["household"].fields["household_type"].default)  # else 一般农户
        change = store.put("household", house, record_id=merged.get("id"), village_code=village, reason=reason)
        household_id = change.record_id if change else merged["id"]
        changes += change is not None
        for kind in d.child_kinds("household"):
            ids = []
            for item in merged[collection(kind.key)]:
                if REMOVED in item:
                    changes += store.delete(item["id"], reason=item[REMOVED]) is not None
                    continue
                fields = {k: item.get(k) for k in kind.fields}
                if not item.get("id"):  # a new child record starts with its defaults (a risk: 未消除, #20)
                    fields.update({k: f.default for k, f in kind.fields.items() if f.default is not None and fields[k] is None})
                c = store.put(kind.key, fields, record_id=item.get("id"), village_code=village, parent_id=household_id, reason=reason)
                changes += c is not None
                ids.append(c.record_id if c else item["id"])
            child_ids[collection(kind.key)] = ids
    cleared = [f.label for key, f in d.kinds["household"].fields.items()
               if stored and key not in doc and stored.get(key) not in (None, "", []) and key not in procedures.MONITORING_FIELDS]
    return SaveResult(household_id, stored is None, changes, findings, child_ids, cleared)


def remove_child(store: Store, record_id: str, reason_code: str) -> None:
    """Remove a member (or other child record) as a tombstone with a reason from 成员增减."""
    if reason_code not in default().codes["member_change_reason"]:
        raise InputError(f"删除原因“{reason_code}”不在成员增减代码表中")
    store.delete(record_id, reason=reason_code)


# ---------------------------------------------------------------------- whole-database checks


def validate_all(store: Store, village_code: str | None = None,
                 progress: Callable[[int, int], None] | None = None) -> list[Finding]:
    """Every finding of every household, plus ID numbers and 户编号 shared between households.
    Households are read a batch at a time (`iter_documents`): only their findings are kept; the
    households sharing a 户编号 come from the blind index (read beside a writer that has not yet
    written its 户编号 rows, each household's number is kept while reading, as before them)."""
    known = known_villages(store)
    total = store.count("household", village_code)
    findings = []
    shared = store.duplicate_household_numbers()
    numbered = []  # what duplicate_household_numbers reads of each household sharing its number
    i = 0
    for i, doc in enumerate(iter_documents(store, village_code), 1):
        findings += validate_household(doc, known_villages=known)
        if doc.get("household_number") and (shared is None or doc["id"] in shared):
            numbered.append({"id": doc["id"], "household_number": doc["household_number"],
                             "head_name": doc.get("head_name")})
        if progress and i % 100 == 0:
            progress(i, total)
    findings += database_duplicates(store)
    findings += duplicate_household_numbers(numbered)
    if progress:
        progress(i, i)
    return findings


def duplicate_household_numbers(docs: list[dict]) -> list[Finding]:
    """One finding per household whose 户编号 another household also carries (a register must not
    list one number twice; numbers issued before blocks were kept apart may collide)."""
    d = default()
    holders: dict[str, list[dict]] = defaultdict(list)
    for doc in docs:
        if doc.get("household_number"):
            holders[doc["household_number"]].append(doc)
    findings = []
    for number, same in holders.items():
        if len(same) < 2:
            continue
        for doc in same:
            others = "、".join(f"户主“{o.get('head_name', '?')}”" for o in same if o is not doc)
            findings.append(Finding(doc["id"], "household", "household_number", "duplicate_household_number",
                                    f"户编号 {number} 也用在{others}的户上:请县扶贫办为其中一户改号",
                                    ERROR, record_label(d, "household", doc)))
    return findings


def database_duplicates(store: Store) -> list[Finding]:
    """One finding per member whose ID number is also held by a member of another household."""
    d = default()
    findings = []
    for group in store.duplicate_id_numbers():
        members = [store.get(i) for i in group]
        households = {m.parent_id for m in members if m}
        if len(households) < 2:
            continue  # inside one household: reported by validate_household
        for m in members:
            others = [o for o in members if o.parent_id != m.parent_id]
            names = "、".join(_household_title(store, o.parent_id) for o in others)
            findings.append(Finding(m.id, "member", "id_number", "duplicate_id_number",
                                    f"身份证号码与{names}的成员重复", ERROR, record_label(d, "member", m.fields)))
    return findings


def _household_title(store: Store, household_id: str) -> str:
    h = store.get(household_id)
    if h is None:
        return "?"
    return household_label(h.fields)
