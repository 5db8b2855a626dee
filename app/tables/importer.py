"""Importing a table into household documents: mapping, grouping, dry run, one-transaction import and
the error workbook.

Flow: `analyse(store, path, ...)` reads the file, maps the columns, groups rows into households and
matches them with stored households (by household number, or by a member's ID number through the blind
index). `dry_run(store, plan)` checks each household with `households.prepare` and writes nothing;
`commit(store, plan)` saves every acceptable household with `households.save` inside ONE transaction.
Both return a `Report` listing what would be / was created or updated and every rejected row.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app import fileio
from app.core import idnumber, procedures, values
from app.core.dictionary import Dictionary, default
from app.core.validation import ERROR, collection, record_label
from app.services import households
from app.store import Store
from app.tables import workbook_temp
from app.tables import mapping as mp
from app.tables.reader import Sheet, TableError, locate_header, read_file

CODE_SHEET = "代码表"
_SPLIT = re.compile(r"[、,，;；/ ]+")
Progress = Callable[[int, int], None] | None


@dataclass
class Rejection:
    sheet: str
    row: int
    column: str
    reason: str


@dataclass
class Group:
    """The rows of one household in the file."""

    key: str
    village_code: str | None = None
    house: dict = field(default_factory=dict)
    house_rows: dict = field(default_factory=dict)     # field -> (sheet, row) where it was read
    children: dict = field(default_factory=dict)       # kind -> list of (record, (sheet, row))
    rows: list = field(default_factory=list)           # (sheet index, row number)
    errors: list = field(default_factory=list)         # Rejection
    household_id: str | None = None                    # matched stored household
    doc: dict | None = None


@dataclass
class SheetInfo:
    title: str
    kind: str
    header_row: int
    columns: dict          # column index -> target
    ignored: list          # header texts not mapped
    rows: int


@dataclass
class Plan:
    path: Path
    sheets: list[Sheet]
    infos: list[SheetInfo]
    groups: list[Group]
    mapping: dict          # normalised header -> target, as used
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    file: str
    dry_run: bool
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    members: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    rejected_rows: list[tuple[str, int]] = field(default_factory=list)
    rejected_households: int = 0
    notes: list[str] = field(default_factory=list)
    sheets: list[SheetInfo] = field(default_factory=list)
    plan: Plan | None = None

    def summary(self) -> str:
        verb = "将" if self.dry_run else "已"
        lines = [f"文件 {Path(self.file).name}:{verb}新建 {self.created} 户,{verb}更新 {self.updated} 户"
                 + (f",{self.unchanged} 户无变化" if self.unchanged else "")
                 + f",成员 {self.members} 人;拒绝 {self.rejected_households} 户({len(self.rejected_rows)} 行)。"]
        if self.dry_run:
            lines.append("这是试导入:数据库没有任何改动。")
        lines += self.notes
        return "\n".join(lines)


# ---------------------------------------------------------------------- analysis


def analyse(store: Store, path, *, village: str | None = None, saved_mapping: dict | None = None,
            data: bytes | None = None, progress: Progress = None) -> Plan:
    """Read and map a file and group its rows into households. Raises TableError when the file as a
    whole cannot be imported (unreadable, no recognisable columns, no village)."""
    d = default()
    path = Path(path)
    sheets = read_file(path, data)
    if not sheets:
        raise TableError(f"文件 {path.name} 中没有数据。")
    saved = {mp.normalise_header(k): v for k, v in (saved_mapping or {}).items()}
    infos, used, notes = [], {}, []
    sheets = [s for s in sheets if s.title != CODE_SHEET]  # the drop-down lists of our own exports
    for sheet in sheets:
        kind = mp.sheet_kind(sheet.title, d)
        own = {h: t for h, t in saved.items() if mp.fits(t, kind)}  # a saved 年度→income.year stays on 家庭收入
        known = {**mp.known_headers(kind, d), **{k: v for k, v in own.items() if v}}
        if not locate_header(sheet, known, mp.normalise_header):
            notes.append(f"工作表“{sheet.title}”没有可识别的表头,已跳过。")
            infos.append(SheetInfo(sheet.title, kind, 0, {}, [], 0))
            continue
        columns, ignored, seen = {}, [], set()
        for c, h in enumerate(sheet.headers):
            if not h:
                continue
            target = own[h] if h in own else known.get(h, "")
            if target and target not in seen:
                columns[c] = target
                seen.add(target)
                used[h] = target
            else:
                ignored.append(h)
                used.setdefault(h, "")
        data_rows = sum(1 for n, _ in sheet.rows if n > sheet.header_row)
        infos.append(SheetInfo(sheet.title, kind, sheet.header_row, columns, ignored, data_rows))
        if ignored:
            notes.append(f"工作表“{sheet.title}”中这些列没有对应字段,未导入:{'、'.join(ignored)}")
    targets = {t for info in infos if info.kind == "household" for t in info.columns.values()}
    if not ({"member.name", "household.head_name"} & targets):
        raise TableError(f"文件 {path.name} 中找不到“户主姓名”或“姓名”列。请检查表头(可识别的列名见 docs/tables.md),"
                         "或在列对照中指定。未导入任何数据。")
    if not village and not ({mp.VILLAGE_CODE, mp.VILLAGE_NAME} & targets):
        raise TableError(f"文件 {path.name} 中没有“村代码”或“村名称”列:请用 --village 指定村代码。未导入任何数据。")
    if village and len(village) != 12:
        raise TableError(f"村代码“{village}”应为 12 位数字。")
    groups = _group(store, sheets, infos, village, d, notes)
    _match(store, groups)
    for g in groups:
        if not g.errors:
            g.doc = _document(store, g, d)
    return Plan(path, sheets, infos, groups, used, notes)


def _village_lookup(store: Store) -> dict[str, str]:
    return {row["name"]: row["code"] for row in store.divisions("village")}


_TOTAL_LABELS = ("合计", "小计", "总计", "共计", "累计")


def _is_total_row(row: tuple) -> bool:
    """A totals line at the foot of a sheet (合计, 小计, 总计 ... in its first filled cell): a
    register kept in Excel usually ends with one; it is not a household and is skipped."""
    first = next((v for v in row if v is not None), None)
    if not isinstance(first, str):
        return False
    text = "".join(first.split()).rstrip(":：")
    return text.startswith(_TOTAL_LABELS)


def _group(store: Store, sheets: list[Sheet], infos: list[SheetInfo], village: str | None, d: Dictionary,
           notes: list[str] | None = None) -> list[Group]:
    aliases = mp.code_aliases(d)
    groups: list[Group] = []
    index: dict[tuple, Group] = {}
    village_names = None
    id_seen: dict[str, tuple[Group, str, int]] = {}
    unnumbered: dict[str, list[tuple[int, Group]]] = {}  # 户主姓名 -> (sheet, new household without a 户编号)
    order = sorted(range(len(sheets)), key=lambda i: infos[i].kind != "household")  # households first
    for si in order:
        sheet, info = sheets[si], infos[si]
        if not info.header_row:
            continue
        previous: Group | None = None
        totals = []
        for number, row in sheet.rows:
            if number <= sheet.header_row:
                continue
            if _is_total_row(row):
                totals.append(str(number))
                continue
            cells = {c: row[c] for c in info.columns if c < len(row) and row[c] is not None}
            if not cells:
                continue
            if all(mp.normalise_header(v) == sheet.headers[c] for c, v in cells.items()):
                continue  # the header repeated (a printed ledger pasted page after page)
            errors: list[Rejection] = []
            house, record, special = {}, {}, {}
            for c, raw in cells.items():
                target = info.columns[c]
                column = str(sheet.raw_headers[c] or sheet.headers[c])
                if target in mp.SPECIAL_TARGETS:
                    special[target] = str(raw).strip()
                    continue
                kind, key = target.split(".", 1)
                f = d.kinds[kind].fields[key]
                if f.type == "id_number" and isinstance(raw, (int, float)) and not isinstance(raw, bool) and abs(raw) >= 1e14:
                    errors.append(Rejection(sheet.title, number, column,
                                            "身份证号被 Excel 存成了数字,后几位已丢失:请把该列设为“文本”格式后重新录入"))
                    continue
                if f.type == "code" and isinstance(raw, str):
                    raw = aliases[f.codes].get(raw.replace(" ", ""), raw)
                elif f.type == "multi_code" and isinstance(raw, str):
                    raw = [aliases[f.codes].get(p, p) for p in _SPLIT.split(raw) if p]
                value, message = values.coerce(f, raw, d)
                if message:
                    errors.append(Rejection(sheet.title, number, column, message))
                    continue
                if f.type == "id_number" and value:
                    try:
                        idnumber.parse(value)
                    except idnumber.IdNumberError as exc:
                        errors.append(Rejection(sheet.title, number, column,
                                                f"公民身份号码“{value}”无效:{exc}(请核对身份证)"))
                        continue
                (house if kind == "household" else record)[key] = value
            # the village
            code = special.get(mp.VILLAGE_CODE)
            if code is None and mp.VILLAGE_NAME in special:
                village_names = village_names if village_names is not None else _village_lookup(store)
                code = village_names.get(special[mp.VILLAGE_NAME])
                if code is None:
                    errors.append(Rejection(sheet.title, number, mp.SPECIAL_TARGETS[mp.VILLAGE_NAME],
                                            f"村名称“{special[mp.VILLAGE_NAME]}”在本数据库的区划中找不到,请改用村代码"))
            if code is not None and not (len(str(code)) == 12 and str(code).isdigit()):
                errors.append(Rejection(sheet.title, number, "村代码", f"村代码“{code}”应为 12 位数字"))
                code = None
            head_id = special.get(mp.HEAD_ID_NUMBER)
            head_id = idnumber.normalise(head_id) if head_id else None
            number_key = house.get("household_number")
            # find the household this row belongs to
            keys = [k for k in (("n", number_key) if number_key else None, ("h", head_id) if head_id else None) if k]
            group = next((index[k] for k in keys if k in index), None)
            if group is None and not keys and house.get("head_name"):
                # a household added to the workbook by hand has no 户编号 yet: its rows on the other
                # sheets (家庭成员, 家庭收入 ...) find it by the 户主姓名 column, when exactly one such
                # household has that name (never within one sheet: namesakes there are two households)
                named = [g for sheet_index, g in unnumbered.get(house["head_name"], []) if sheet_index != si]
                group = named[0] if len(named) == 1 else None
            if info.kind != "household":
                if group is None:
                    what = f"户编号“{number_key}”" if number_key else (f"户主身份证号“{head_id}”" if head_id else "户编号")
                    where = Rejection(sheet.title, number, "户编号",
                                      f"找不到{what}对应的贫困户:此表每行需要“户编号”或“户主公民身份号码”,且该户在户表中"
                                      "(新增的户还没有户编号时,填与户表中那一行相同的“户主姓名”)")
                    groups.append(Group(key=f"orphan:{sheet.title}:{number}", rows=[(si, number)], errors=[where, *errors]))
                    continue
            elif group is None:
                is_head = record.get("relation") == "01"
                starts = (
                    previous is None or bool(keys)
                    or (is_head and any(m.get("relation") == "01" for m, _ in previous.children.get("member", [])))
                    or (house.get("head_name") and previous.house.get("head_name") not in (None, house["head_name"]))
                )
                group = previous if not starts else None
                if group is None:
                    group = Group(key=f"{sheet.title}:{number}")
                    groups.append(group)
            for k in keys:
                index.setdefault(k, group)
            if info.kind == "household" and not number_key and house.get("head_name"):
                named = unnumbered.setdefault(house["head_name"], [])
                if all(g is not group for _, g in named):
                    named.append((si, group))
            if record.get("relation") == "01" and record.get("id_number"):
                index.setdefault(("h", record["id_number"]), group)
            group.rows.append((si, number))
            group.errors += errors
            if code:
                if group.village_code and group.village_code != code:
                    group.errors.append(Rejection(sheet.title, number, "村代码", f"同一户的村代码不一致({group.village_code} 与 {code})"))
                group.village_code = code
            for key, value in house.items():
                if key in group.house and group.house[key] != value:
                    first = group.house_rows[key]
                    group.errors.append(Rejection(sheet.title, number, d.kinds["household"].fields[key].label,
                                                  f"同一户的“{d.kinds['household'].fields[key].label}”与第 {first[1]} 行不一致"
                                                  f"(“{group.house[key]}”与“{value}”)"))
                else:
                    group.house[key] = value
                    group.house_rows.setdefault(key, (sheet.title, number))
            kind = "member" if info.kind == "household" else info.kind
            if record:
                number_id = record.get("id_number") if kind == "member" else None
                if number_id and number_id in id_seen:
                    other_group, other_sheet, other_row = id_seen[number_id]
                    same = other_group is group
                    group.errors.append(Rejection(sheet.title, number, d.kinds["member"].fields["id_number"].label,
                                                  f"公民身份号码与{other_sheet}第 {other_row} 行重复"
                                                  + ("(重复行,请删除其中一行)" if same else "(两户不能登记同一人)")))
                    if not same:
                        other_group.errors.append(Rejection(other_sheet, other_row, d.kinds["member"].fields["id_number"].label,
                                                            f"公民身份号码与{sheet.title}第 {number} 行重复(两户不能登记同一人)"))
                elif number_id:
                    id_seen[number_id] = (group, sheet.title, number)
                group.children.setdefault(kind, []).append((record, (sheet.title, number)))
            if info.kind == "household":
                previous = group
        if totals and notes is not None:
            notes.append(f"工作表“{sheet.title}”第 {'、'.join(totals)} 行是合计行,不是一户,已跳过。")
    for g in groups:
        if g.village_code is None:
            g.village_code = village
    return groups


def _match(store: Store, groups: list[Group]) -> None:
    """Find the stored household of each group: by household number, else by a member's ID number."""
    numbers = None
    for g in groups:
        number = g.house.get("household_number")
        if number:
            if numbers is None:
                numbers = {}
                for h in store.records("household"):
                    n = h.fields.get("household_number")
                    if n:
                        numbers.setdefault(str(n), h.id)
            if str(number) in numbers:
                g.household_id = numbers[str(number)]
                continue
        for m, _ in g.children.get("member", []):
            if not m.get("id_number"):
                continue
            for member_id in store.find_id_number(m["id_number"]):
                rec = store.get(member_id)
                if rec is not None and rec.parent_id:
                    g.household_id = rec.parent_id
                    break
            if g.household_id:
                break


_CHILD_MATCH = {"income": ("year",), "plan": ("year",), "helper": ("name",), "member": ("id_number", "name")}


def _document(store: Store, g: Group, d: Dictionary) -> dict:
    """The household document to save: the stored household with the file's values laid over it."""
    stored = households.document(store, g.household_id) if g.household_id else None
    doc: dict = {}
    if stored:
        doc = {k: v for k, v in stored.items() if k in d.kinds["household"].fields}
        doc["id"] = stored["id"]
        doc["village_code"] = g.village_code or stored["village_code"]
    else:
        doc["village_code"] = g.village_code
    doc.update(g.house)
    for kind, items in g.children.items():
        existing = list((stored or {}).get(collection(kind), []))
        taken: set[str] = set()
        out = []
        for record, _ in items:
            match = None
            for key in _CHILD_MATCH.get(kind, ()):
                if record.get(key) is None:
                    continue
                match = next((r for r in existing if r["id"] not in taken and r.get(key) == record[key]), None)
                if match:
                    break
            if match is None and kind not in _CHILD_MATCH:  # measures, visits: the same record again
                match = next((r for r in existing if r["id"] not in taken
                              and all(r.get(k) == v for k, v in record.items())), None)
            if match is not None:
                taken.add(match["id"])
                merged = {k: v for k, v in match.items() if k in d.kinds[kind].fields or k == "id"}
                merged.update(record)
                out.append(merged)
            else:
                out.append(dict(record))
        doc[collection(kind)] = out
    if "family_size" not in g.house:
        current = {m["id"] for m in (stored or {}).get("members", [])}
        current |= {m["id"] for m in doc.get("members", []) if m.get("id")}
        doc["family_size"] = len(current) + sum(1 for m in doc.get("members", []) if not m.get("id"))
    return doc


# ---------------------------------------------------------------------- dry run and import


def _finding_row(g: Group, finding, d: Dictionary) -> tuple[str, int, str]:
    kind = finding.kind
    label = d.field_label(kind, finding.field) if finding.field else ""
    if kind != "household":
        for record, where in g.children.get(kind, []):
            if finding.record_id and record.get("id") == finding.record_id:
                return where[0], where[1], label
            if record_label(d, kind, record) == finding.record_label:
                return where[0], where[1], label
        items = g.children.get(kind)
        if items:
            return items[0][1][0], items[0][1][1], label
    if finding.field in g.house_rows:
        s, r = g.house_rows[finding.field]
        return s, r, label
    first = g.house_rows.get("head_name") or g.house_rows.get("household_number")
    if first:
        return first[0], first[1], label
    return _first_row(g)[0], _first_row(g)[1], label


def _first_row(g: Group):
    for kind_items in g.children.values():
        if kind_items:
            return kind_items[0][1]
    return ("", g.rows[0][1] if g.rows else 0)


def _reject(report: Report, plan: Plan, g: Group, rejections: list[Rejection]) -> None:
    report.rejected_households += 1
    own = {(r.sheet, r.row) for r in rejections}
    for r in rejections:
        report.rejections.append(r)
    first = rejections[0] if rejections else None
    for si, number in g.rows:
        title = plan.sheets[si].title
        if (title, number) not in own:
            report.rejections.append(Rejection(title, number, "",
                                               f"同户其他行有错误(见{first.sheet}第 {first.row} 行),整户未导入" if first else "整户未导入"))
        report.rejected_rows.append((title, number))


def _run(store: Store, plan: Plan, dry_run: bool, progress: Progress) -> Report:
    d = default()
    report = Report(str(plan.path), dry_run, notes=list(plan.notes), sheets=plan.infos, plan=plan)
    total = len(plan.groups)
    for i, g in enumerate(plan.groups, 1):
        if g.errors or g.doc is None:
            _reject(report, plan, g, g.errors)
        else:
            home = g.house_rows.get("head_name") or g.house_rows.get("household_number") or _first_row(g)
            where = f"{plan.path.name} {home[0]} 第 {home[1]} 行"
            try:
                if dry_run:
                    merged, findings, stored = households.prepare(store, g.doc, where)
                    errors = [f for f in findings if f.severity == ERROR]
                    if errors:
                        raise households.ValidationFailed(findings)
                    if stored is not None and merged.get("status") != stored.get("status"):
                        refusal = procedures.authorize_change("household", {"status": merged.get("status")},
                                                              {"status": stored.get("status")}, store.role, op="update", reason="")
                        if refusal:  # as households.save would refuse it
                            raise households.StatusChangeRefused(f"{where}: {refusal}")
                    created, changed = stored is None, stored is None or _differs(merged, stored, d)
                else:
                    result = households.save(store, g.doc, where=where)
                    created, changed = result.created, result.changes > 0
            except households.ValidationFailed as exc:
                _reject(report, plan, g, [Rejection(*_finding_row(g, f, d), f.message)
                                          for f in exc.findings if f.severity == ERROR])
            except households.InputError as exc:
                (s, r), column = home, ""
                if isinstance(exc, households.StatusChangeRefused) and "status" in g.house_rows:
                    (s, r), column = g.house_rows["status"], d.field_label("household", "status")  # the cell that changed it
                _reject(report, plan, g, [Rejection(s, r, column, str(exc).removeprefix(f"{where}: "))])
            else:
                report.members += len(g.children.get("member", []))
                if created:
                    report.created += 1
                elif changed:
                    report.updated += 1
                else:
                    report.unchanged += 1
        if progress and (i % 50 == 0 or i == total):
            progress(i, total)
    report.rejections.sort(key=lambda r: (r.sheet, r.row))
    report.rejected_rows = sorted(set(report.rejected_rows))
    return report


def _differs(merged: dict, stored: dict, d: Dictionary) -> bool:
    def clean(record, fields):
        return {k: record.get(k) for k in fields if record.get(k) not in (None, "", [])}

    if clean(merged, d.kinds["household"].fields) != clean(stored, d.kinds["household"].fields):
        return True
    for kind in d.child_kinds("household"):
        key = collection(kind.key)
        now = {r.get("id"): clean(r, kind.fields) for r in merged.get(key, [])}
        before = {r["id"]: clean(r, kind.fields) for r in stored.get(key, [])}
        if now != before:
            return True
    return False


def dry_run(store: Store, plan: Plan, progress: Progress = None) -> Report:
    """What importing would do; writes nothing."""
    return _run(store, plan, True, progress)


def commit(store: Store, plan: Plan, progress: Progress = None) -> Report:
    """Save every acceptable household of the plan in one transaction (a rejected household is left
    out; any other failure rolls the whole import back)."""
    with store.transaction():
        return _run(store, plan, False, progress)


def import_table(store: Store, path, *, village: str | None = None, mapping: dict | None = None,
                 dry: bool = False, errors_out=None, progress: Progress = None) -> Report:
    """analyse + dry_run/commit (+ the error workbook when rows were rejected and errors_out is given)."""
    plan = analyse(store, path, village=village, saved_mapping=mapping)
    report = dry_run(store, plan, progress) if dry else commit(store, plan, progress)
    if errors_out and report.rejected_rows:
        write_error_workbook(report, errors_out)
    return report


# ---------------------------------------------------------------------- the error workbook


def error_workbook_bytes(report: Report) -> bytes:
    """An .xlsx with a list of every rejection (工作表, 行号, 列, 原因) and, per source sheet, the
    rejected rows as they were, under the original header, with a 错误原因 column: fix and re-import."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    plan = report.plan
    wb = Workbook(write_only=False)
    summary = wb.active
    summary.title = "错误清单"
    summary.append(["工作表", "行号", "列", "原因"])
    for r in report.rejections:
        summary.append([r.sheet, r.row, r.column, r.reason])
    for col, width in zip("ABCD", (16, 8, 18, 70)):
        summary.column_dimensions[col].width = width
    summary.freeze_panes = "A2"
    reasons: dict[tuple[str, int], list[str]] = {}
    for r in report.rejections:
        reasons.setdefault((r.sheet, r.row), []).append(f"{r.column}:{r.reason}" if r.column else r.reason)
    rejected = set(report.rejected_rows)
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="FFF2CC")
    for sheet in plan.sheets:
        rows = [(n, v) for n, v in sheet.rows if (sheet.title, n) in rejected]
        if not rows:
            continue
        ws = wb.create_sheet(sheet.title[:31] if sheet.title != "错误清单" else "错误清单(原表)")
        header = list(sheet.raw_headers)
        ws.append([*header, "错误原因", "原行号"])
        for cell in ws[1]:
            cell.font = bold
        for n, v in rows:
            cells = [*v, *([None] * (len(header) - len(v)))][: max(len(header), len(v))]
            ws.append([*cells, ";".join(reasons.get((sheet.title, n), [])), n])
            ws.cell(ws.max_row, len(header) + 1).fill = fill
        ws.freeze_panes = "A2"
    buf = io.BytesIO()
    with workbook_temp.saving():  # sheet XML with names and ID numbers: owner-only, removed
        wb.save(buf)
    return buf.getvalue()


def write_atomic(path, data: bytes) -> Path:
    """Atomic and owner-only (app.fileio): an error workbook or export holds names and ID numbers."""
    return fileio.write_atomic(path, data)


def write_error_workbook(report: Report, path) -> Path:
    return write_atomic(path, error_workbook_bytes(report))
