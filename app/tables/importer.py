"""Importing a table into household documents: mapping, grouping, dry run, one-transaction import and
the error workbook.

Flow: `analyse(store, path, ...)` reads the file, maps the columns, groups rows into households and
matches them with stored households (by household number, or by a member's ID number through the blind
index). `dry_run(store, plan)` checks each household with `households.prepare` and writes nothing;
`commit(store, plan)` saves every acceptable household with `households.save` inside ONE transaction.
Both return a `Report` listing what would be / was created or updated and every rejected row.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from dataclasses import dataclass, field
from pathlib import Path

from app.core import idnumber, procedures, values
from app.core.dictionary import Dictionary, default
from app.core.validation import ERROR, collection, record_label
from app.services import households
from app.store import Store
from app.tables import mapping as mp
from app.tables.cells import Column, cell_value, tidy_name  # noqa: F401 - tidy_name: API
from app.tables.errorbook import error_workbook_bytes, write_atomic, write_error_workbook  # noqa: F401 - API
from app.tables.fileindex import FileIndex
from app.tables.options import (  # noqa: F401 - parse_fixed, resolve_target: API of import-table
    DERIVED,
    Options,
    fixed_values,
    missing_columns,
    parse_fixed,
    resolve_target,
)
from app.tables.packed import Groups
from app.tables.reader import Sheet, Source, TableError, locate_header

CODE_SHEET = "代码表"
WARNINGS_KEPT = 200  # a report keeps the first warnings only (a county's ledger can give one per person)
Progress = Callable[[int, int], None] | None


class NoNameColumn(TableError):
    """No column of the file is a name: `mapping` holds its headings (each with the field it was given,
    or ""), `suggestions` the nearest field of some, so that the window can offer them to be mapped."""

    def __init__(self, message: str, mapping: dict[str, str], suggestions: dict[str, str]):
        super().__init__(message)
        self.mapping, self.suggestions = mapping, suggestions


@dataclass
class Rejection:
    sheet: str
    row: int
    column: str
    reason: str
    target: str = ""       # "household.main_cause" … when the problem is one cell's value
    echo: bool = False     # refused only because another row of its household was (it names that row)


_VILLAGE_TARGET = "household.village_code"  # a row's village, named by code or by name


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
    warnings: list = field(default_factory=list)       # Rejection (imported anyway)
    household_id: str | None = None                    # matched stored household


@dataclass
class SheetInfo:
    title: str
    kind: str
    header_row: int
    columns: dict          # column index -> target
    ignored: list          # header texts not mapped
    rows: int
    suggestions: dict = field(default_factory=dict)    # ignored header -> the closest target
    parts: dict = field(default_factory=dict)          # target -> column indexes whose sum it is


@dataclass
class Plan:
    path: Path
    sheets: list[Sheet]
    infos: list[SheetInfo]
    groups: Groups
    mapping: dict          # normalised header -> target, as used
    notes: list[str] = field(default_factory=list)
    missing: list = field(default_factory=list)        # (target, label) of required columns the file lacks
    options: Options = field(default_factory=Options)
    source: Source | None = None                       # the file, read again for the error workbook


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
    incomplete: int = 0                                 # imported (or to import) as 待完善
    warnings: list[Rejection] = field(default_factory=list)  # the first WARNINGS_KEPT of them
    warning_count: int = 0                              # all of them
    notes: list[str] = field(default_factory=list)
    sheets: list[SheetInfo] = field(default_factory=list)
    plan: Plan | None = None

    def to_show(self, limit: int) -> list[Rejection]:
        """The first `limit` rejections to show a person: every row's own reason before the rows refused
        only for their household's sake (which point at it), each in sheet and row order; a sheet of
        members sorts before its 贫困户 sheet, and its echoes hid the reasons they pointed at."""
        causes = [r for r in self.rejections if not r.echo]
        return (causes + [r for r in self.rejections if r.echo])[:limit]

    def summary(self, window: bool = False) -> str:
        """The report in words; `window` names the dialog's choices instead of the command's options."""
        verb = "将" if self.dry_run else "已"
        lines = [f"文件 {Path(self.file).name}:{verb}新建 {self.created} 户,{verb}更新 {self.updated} 户"
                 + (f",{self.unchanged} 户无变化" if self.unchanged else "")
                 + f",成员 {self.members} 人;拒绝 {self.rejected_households} 户({len(self.rejected_rows)} 行)。"]
        if self.incomplete:
            lines.append(f"其中 {self.incomplete} 户缺必填项,{verb}作为“待完善”导入(工作清单“待完善”列出,请逐户补全)。")
        if self.warnings:
            first = self.warnings[0]
            taken = "仍可导入" if self.dry_run else "已照常导入"
            lines.append(f"提醒 {self.warning_count} 条(这些户{taken}),如 {first.sheet} 第 {first.row} 行:{first.reason}")
        if self.dry_run:
            lines.append("这是试导入:数据库没有任何改动。")
        if self.plan and self.plan.missing:
            lines.append(missing_columns_text(self.plan, window))
        lines += self.notes
        return "\n".join(lines)


def missing_columns_text(plan: "Plan", window: bool = False) -> str:
    """The required columns the file does not have, said once for the whole file."""
    labels = [label for _, label in plan.missing]
    example = plan.missing[0][1]
    what = ("这些户作为“待完善”处理" if plan.options.allow_incomplete
            else "每一户都缺这些项,因此被拒绝")
    if window:
        return (f"缺少必填列:{'、'.join(labels)}({what})。可以在“统一填写”中给全部户填上,"
                "或勾选“待完善”先导入,之后逐户补全。")
    return (f"缺少必填列:{'、'.join(labels)}({what})。可以用 --set {example}=值 给全部户填上,"
            "或加 --allow-incomplete 先导入为“待完善”,之后逐户补全。")


# ---------------------------------------------------------------------- analysis


def analyse(store: Store, path, *, village: str | None = None, saved_mapping: dict | None = None,
            data: bytes | None = None, progress: Progress = None, options: Options | None = None) -> Plan:
    """Read and map a file and group its rows into households, collecting every problem of the file
    in this one pass (missing columns, unmapped headings, each cell's value). Raises TableError when
    the file as a whole cannot be imported (unreadable, no recognisable columns, no village)."""
    d = default()
    options = options or Options()
    path = Path(path)
    source = Source(path, data)
    try:
        return _analyse(store, source, village, saved_mapping, options, d)
    finally:
        source.close()


def _analyse(store: Store, source: Source, village: str | None, saved_mapping: dict | None, options: Options,
             d: Dictionary) -> Plan:
    path = source.path
    sheets = source.sheets()  # the first rows of each sheet, to find its header; the rest streams
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
        parts = {}
        for target, words in mp.synonym_table().parts.items():
            if mp.fits(target, kind) and target not in seen:
                cols = [c for c, h in enumerate(sheet.headers) if h and h in {mp.normalise_header(w) for w in words}]
                if cols:
                    parts[target] = cols
                    ignored = [h for h in ignored if h not in {sheet.headers[c] for c in cols}]
        suggestions = {}
        for h in ignored:
            near = mp.suggest(h, kind, d)
            if near and near not in seen:
                suggestions[h] = near
        infos.append(SheetInfo(sheet.title, kind, sheet.header_row, columns, ignored, 0, suggestions, parts))  # rows: counted by _group
        if ignored:
            shown = [f"{h}(最接近“{mp.target_label(suggestions[h], d)}”,可在列对照中指定)" if h in suggestions else h
                     for h in ignored]
            notes.append(f"工作表“{sheet.title}”中这些列没有对应字段,未导入:{'、'.join(shown)}")
    targets = {t for info in infos if info.kind == "household" for t in [*info.columns.values(), *info.parts]}
    if not ({"member.name", "household.head_name"} & targets):
        raise NoNameColumn(f"文件 {path.name} 中找不到“户主姓名”或“姓名”列(表头可写作 户主姓名、户主、姓名、"
                           "成员姓名 等)。请检查表头,或在列对照中指定哪一列是姓名。未导入任何数据。", used,
                           {h: s for info in infos for h, s in info.suggestions.items()})
    if not village and not ({mp.VILLAGE_CODE, mp.VILLAGE_NAME} & targets):
        raise TableError(f"文件 {path.name} 中没有“村代码”或“村名称”列:请用 --village 指定村代码。未导入任何数据。")
    if village and len(village) != 12:
        raise TableError(f"村代码“{village}”应为 12 位数字。")
    fixed = fixed_values(options.fixed, d, options.codes)
    missing = missing_columns(targets | set(fixed), d)
    groups = _group(store, source, sheets, infos, village, d, notes, options, fixed)
    # the documents are built one at a time by the dry run and the import (_run), from the database as
    # it is then, and not kept: a plan holds the file's values only (packed, see Groups)
    return Plan(path, sheets, infos, groups, used, notes, missing, options, source)


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


def _group(store: Store, source: Source, sheets: list[Sheet], infos: list[SheetInfo], village: str | None,
           d: Dictionary, notes: list[str] | None = None, options: Options | None = None,
           fixed: dict | None = None) -> Groups:
    """Read every sheet's rows once, one row at a time, into households (kept packed, see Groups):
    only the index of 户编号 / 户主身份证号 / 户主姓名 and of the ID numbers seen outlives a row, kept
    outside memory (FileIndex)."""
    with FileIndex() as index:
        return _group_rows(store, source, sheets, infos, village, d, notes, options or Options(), fixed or {}, index)


def _group_rows(store: Store, source: Source, sheets: list[Sheet], infos: list[SheetInfo], village: str | None,
                d: Dictionary, notes: list[str] | None, options: Options, fixed: dict, index: FileIndex) -> Groups:
    groups = Groups()
    village_names = None
    order = sorted(range(len(sheets)), key=lambda i: infos[i].kind != "household")  # households first
    for si in order:
        sheet, info = sheets[si], infos[si]
        if not info.header_row:
            continue
        previous: int | None = None
        totals = []
        columns = {c: Column.of(t, str(sheet.raw_headers[c] or sheet.headers[c]), d) for c, t in info.columns.items()}
        for number, row in source.rows(sheet.index):
            if number <= sheet.header_row:
                continue
            info.rows += 1
            if _is_total_row(row):
                totals.append(str(number))
                continue
            cells = {c: row[c] for c in info.columns if c < len(row) and row[c] is not None}
            summed = {t: [row[c] for c in cols if c < len(row) and row[c] is not None] for t, cols in info.parts.items()}
            summed = {t: v for t, v in summed.items() if v}
            if not cells and not summed:
                continue
            if all(mp.normalise_header(v) == sheet.headers[c] for c, v in cells.items()):
                continue  # the header repeated (a printed ledger pasted page after page)
            errors: list[Rejection] = []
            warnings: list[Rejection] = []
            house, record, special, extra = {}, {}, {}, {}
            for target, parts in summed.items():  # 财产性收入 = 资产收益分红型收入 + 其他财产性收入
                kind, key = target.split(".", 1)
                f = d.kinds[kind].fields[key]
                total, bad = Decimal(0), None
                for part in parts:
                    value, message = values.coerce(f, part, d)
                    if message:
                        bad = message
                        break
                    total += Decimal(str(value))
                if bad:
                    heads = "、".join(str(sheet.raw_headers[c]) for c in info.parts[target])
                    errors.append(Rejection(sheet.title, number, heads, bad, target))
                else:
                    extra.setdefault(kind, {})[key] = int(total) if total == total.to_integral_value() else float(total)
            for c, raw in cells.items():
                col = columns[c]
                outcome = col.read(raw, options.codes, d)
                if outcome.error:
                    errors.append(Rejection(sheet.title, number, col.label, outcome.error, col.target))
                    continue
                if col.special:
                    special[col.target] = outcome.value
                    continue
                if outcome.certificate:
                    record.setdefault("disability_certificate", outcome.certificate)
                if outcome.warning:
                    warnings.append(Rejection(sheet.title, number, col.label, outcome.warning, col.target))
                value, kind, key = cell_value(outcome), col.kind, col.key
                if kind == "household":
                    house[key] = value
                elif info.kind == "household" and kind != "member":
                    extra.setdefault(kind, {})[key] = value  # the household's income on its row
                else:
                    record[key] = value
            # the village
            code = special.get(mp.VILLAGE_CODE)
            if code is None and mp.VILLAGE_NAME in special:
                village_names = village_names if village_names is not None else _village_lookup(store)
                code = village_names.get(special[mp.VILLAGE_NAME])
                if code is None:
                    errors.append(Rejection(sheet.title, number, mp.SPECIAL_TARGETS[mp.VILLAGE_NAME],
                                            f"村名称“{special[mp.VILLAGE_NAME]}”在本数据库的区划中找不到,请改用村代码",
                                            _VILLAGE_TARGET))  # the check of the household's 村代码 need not say it again
            if code is not None and not (len(str(code)) == 12 and str(code).isdigit()):
                errors.append(Rejection(sheet.title, number, "村代码", f"村代码“{code}”应为 12 位数字", _VILLAGE_TARGET))
                code = None
            head_id = special.get(mp.HEAD_ID_NUMBER)
            head_id = idnumber.normalise(head_id) if head_id else None
            number_key = house.get("household_number")
            # find the household this row belongs to
            keys = [k for k in (("n", number_key) if number_key else None, ("h", head_id) if head_id else None) if k]
            gi, digests = index.household(keys)
            if gi is None and not keys and house.get("head_name"):
                # a household added to the workbook by hand has no 户编号 yet: its rows on the other
                # sheets (家庭成员, 家庭收入 ...) find it by the 户主姓名 column, when exactly one such
                # household has that name (never within one sheet: namesakes there are two households)
                named = index.unnumbered(house["head_name"], si)
                gi = named[0] if len(named) == 1 else None
            if info.kind != "household":
                if gi is None:
                    what = f"户编号“{number_key}”" if number_key else (f"户主身份证号“{head_id}”" if head_id else "户编号")
                    where = Rejection(sheet.title, number, "户编号",
                                      f"找不到{what}对应的贫困户:此表每行需要“户编号”或“户主公民身份号码”,且该户在户表中"
                                      "(新增的户还没有户编号时,填与户表中那一行相同的“户主姓名”)")
                    groups.add(Group(key=f"orphan:{sheet.title}:{number}", rows=[(si, number)], errors=[where, *errors]))
                    continue
            elif gi is None:
                is_head = record.get("relation") == "01"
                last = groups.open(previous) if previous is not None else None
                starts = (
                    last is None or bool(keys)
                    or (is_head and any(m.get("relation") == "01" for m, _ in last.children.get("member", [])))
                    or (house.get("head_name") and last.house.get("head_name") not in (None, house["head_name"]))
                )
                gi = previous if not starts else None
                if gi is None:
                    gi = groups.add(Group(key=f"{sheet.title}:{number}"))
            group = groups.open(gi)
            index.remember(digests, gi)
            if info.kind == "household" and not number_key and house.get("head_name"):
                index.add_unnumbered(house["head_name"], si, gi)
            if record.get("relation") == "01" and record.get("id_number"):
                index.remember(index.digests([("h", record["id_number"])]), gi)
            group.rows.append((si, number))
            group.errors += errors
            group.warnings += warnings
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
                seen = index.first_seen(number_id, gi, si, number) if number_id else None
                if seen:
                    other, other_si, other_row = seen
                    other_sheet = sheets[other_si].title
                    same = other == gi
                    other_group = groups.open(other)
                    group.errors.append(Rejection(sheet.title, number, d.kinds["member"].fields["id_number"].label,
                                                  f"公民身份号码与{other_sheet}第 {other_row} 行重复"
                                                  + ("(重复行,请删除其中一行)" if same else "(两户不能登记同一人)")))
                    if not same:
                        other_group.errors.append(Rejection(other_sheet, other_row, d.kinds["member"].fields["id_number"].label,
                                                            f"公民身份号码与{sheet.title}第 {number} 行重复(两户不能登记同一人)"))
                group.children.setdefault(kind, []).append((record, (sheet.title, number)))
            for extra_kind, fields in extra.items():
                _merge_row_record(group, extra_kind, fields, (sheet.title, number), d)
            if info.kind == "household":
                previous = gi
            groups.settle(keep=gi)
        if totals and notes is not None:
            notes.append(f"工作表“{sheet.title}”第 {'、'.join(totals)} 行是合计行,不是一户,已跳过。")
    for i in range(len(groups)):
        g = groups.open(i)
        if g.village_code is None:
            g.village_code = village
        _complete(g, d, fixed)
        _match(store, g)
        groups.settle(keep=None)
    return groups


def _merge_row_record(group: Group, kind: str, fields: dict, where: tuple, d: Dictionary) -> None:
    """A child record given on the household's rows (one income per household): the rows of a
    household repeat it, and must agree."""
    items = group.children.setdefault(kind, [])
    if not items:
        items.append((dict(fields), where))
        return
    record, first = items[0]
    for key, value in fields.items():
        if key in record and record[key] != value:
            label = d.kinds[kind].fields[key].label
            group.errors.append(Rejection(where[0], where[1], label, f"同一户的“{label}”与第 {first[1]} 行不一致"
                                          f"(“{record[key]}”与“{value}”)", f"{kind}.{key}"))
        else:
            record[key] = value


def _complete(g: Group, d: Dictionary, fixed: dict) -> None:
    """Fill what the file leaves empty: --set values, and 户主姓名 from the member whose 与户主关系
    is 户主 (national exports list people, not households)."""
    for target, value in fixed.items():
        kind, key = target.split(".", 1)
        if kind == "household":
            g.house.setdefault(key, value)
        else:
            for record, _ in g.children.get(kind, []):
                record.setdefault(key, value)
    if not g.house.get("head_name"):
        for record, where in g.children.get("member", []):
            if record.get("relation") == "01" and record.get("name"):
                g.house["head_name"] = record["name"]
                g.house_rows.setdefault("head_name", where)
                break


def _match(store: Store, g: Group) -> None:
    """Find the stored household of a group: by household number, else by a member's ID number, both
    through the store's blind index (nothing else is decrypted, no map of the database is kept)."""
    number = g.house.get("household_number")
    if number:
        found = store.find_household_number(str(number))
        if len(found) > 1:  # a number carried twice (flagged elsewhere): the first stored, as ever
            found = [next(h.id for h in store.records("household") if h.id in found)]
        if found:
            g.household_id = found[0]
            return
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
    if finding.field == "village_code":
        label = mp.SPECIAL_TARGETS[mp.VILLAGE_CODE]  # the column the file calls it by (the field is 所在村)
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
                                               f"同户其他行有错误(见{first.sheet}第 {first.row} 行),整户未导入" if first else "整户未导入",
                                               echo=first is not None))
        report.rejected_rows.append((title, number))


def _sort_findings(plan: Plan, g: Group, findings, d: Dictionary):
    """Split a household's error findings into (other errors, required values left empty in a cell,
    required values of a column the whole file lacks), each as Rejections; findings that merely
    echo a value error already reported for that cell (a cause not in the list, then also “为必填项”)
    are dropped."""
    missing = {t for t, _ in plan.missing}
    bad = {(r.target, r.sheet, r.row) for r in g.errors if r.target}
    bad_targets = {r.target for r in g.errors if r.target}
    other, required, column = [], [], []
    for f in findings:
        if f.severity != ERROR:
            continue
        target = f"{f.kind}.{f.field}"
        sheet, row, label = _finding_row(g, f, d)
        sources = {target, DERIVED.get(target)} - {None}
        if f.kind == "household" and sources & bad_targets:
            continue
        if f.kind != "household" and any((t, sheet, row) in bad for t in sources):
            continue
        rejection = Rejection(sheet, row, label, f.message, target)
        if f.rule == "required" and target in missing:
            column.append(rejection)
        elif f.rule == "required":
            required.append(rejection)
        else:
            other.append(rejection)
    return other, required, column


def _run(store: Store, plan: Plan, dry_run: bool, progress: Progress) -> Report:
    """Check every household in one pass and (unless dry_run) save the acceptable ones. A household
    is rejected for any wrong value and for every problem found with it at once; one whose only
    problems are required values left empty is imported as 待完善 with --allow-incomplete."""
    d = default()
    report = Report(str(plan.path), dry_run, notes=list(plan.notes), sheets=plan.infos, plan=plan)
    allow = plan.options.allow_incomplete
    total = len(plan.groups)
    known = households.known_villages(store)
    unlisted = set() if known is not None and not known.villages else None  # villages taken by their township
    for i, g in enumerate(plan.groups, 1):
        if g.key.startswith("orphan:"):
            _reject(report, plan, g, g.errors)
            continue
        doc = _document(store, g, d)  # also with value errors: the dry run checks the rest (one pass)
        home = g.house_rows.get("head_name") or g.house_rows.get("household_number") or _first_row(g)
        where = f"{plan.path.name} {home[0]} 第 {home[1]} 行"
        try:
            prepared = households.prepare(store, doc, where)
            merged, findings, stored = prepared
            other, required, column = _sort_findings(plan, g, findings, d)
            if g.errors or other:
                _reject(report, plan, g, [*g.errors, *other, *required])
                continue
            if (required or column) and not allow:
                lines = list(required)
                if column:
                    labels = "、".join(dict.fromkeys(r.column for r in column))
                    lines.append(Rejection(home[0], home[1], "", f"缺少必填列:{labels}(整列缺失,见报告开头)"))
                _reject(report, plan, g, lines)
                continue
            incomplete = bool(required or column)
            if stored is not None and merged.get("status") != stored.get("status"):
                refusal = procedures.authorize_change("household", {"status": merged.get("status")},
                                                      {"status": stored.get("status")}, store.role, op="update", reason="")
                if refusal:  # as households.save would refuse it
                    raise households.StatusChangeRefused(f"{where}: {refusal}")
            if dry_run:
                created, changed = stored is None, stored is None or _differs(merged, stored, d)
            else:
                result = households.save(store, doc, where=where, allow_errors=incomplete, prepared=prepared)
                created, changed = result.created, result.changes > 0
        except households.ValidationFailed as exc:
            _reject(report, plan, g, [Rejection(*_finding_row(g, f, d), f.message)
                                      for f in exc.findings if f.severity == ERROR])
        except households.InputError as exc:
            (s, r), column = home, ""
            if isinstance(exc, households.StatusChangeRefused) and "status" in g.house_rows:
                (s, r), column = g.house_rows["status"], d.field_label("household", "status")  # the cell that changed it
            _reject(report, plan, g, [*g.errors, Rejection(s, r, column, str(exc).removeprefix(f"{where}: "))])
        else:
            report.members += len(g.children.get("member", []))
            if stored is not None:
                g.warnings += _renamed_by_id_number(g, stored, d)
            if unlisted is not None:
                unlisted.add(merged.get("village_code"))
            report.warning_count += len(g.warnings)
            report.warnings += g.warnings[:max(0, WARNINGS_KEPT - len(report.warnings))]
            report.incomplete += incomplete and changed
            if created:
                report.created += 1
            elif changed:
                report.updated += 1
            else:
                report.unchanged += 1
        finally:
            if progress and (i % 50 == 0 or i == total):
                progress(i, total)
    report.rejections.sort(key=lambda r: (r.sheet, r.row))
    report.rejected_rows = sorted(set(report.rejected_rows))
    if unlisted and (codes := sorted(unlisted - {None})):
        report.notes.append(unlisted_villages_note(store, codes, dry_run))
    return report


def _renamed_by_id_number(g: Group, stored: dict, d: Dictionary) -> list[Rejection]:
    """A warning for each file member whose ID number belongs to a stored member of another name:
    the import takes the file's name (a corrected spelling), but an ID number copied from another
    person's row would rename that person without a word, so the report names both."""
    names = {str(m.get("id_number") or "").upper(): m.get("name") for m in stored.get("members", [])}
    column = d.field_label("member", "id_number")
    out = []
    for record, (sheet, row) in g.children.get("member", []):
        number, name = str(record.get("id_number") or "").upper(), record.get("name")
        before = names.get(number) if number else None
        if before and name and before != name:
            out.append(Rejection(sheet, row, column, f"公民身份号码 {idnumber.mask(number)} 在数据库中属于“{before}”,"
                                                     f"本文件写作“{name}”:导入会把“{before}”改名为“{name}”。"
                                                     "若是别人的号码被抄错,请先改正文件再导入", "member.id_number"))
    return out


def unlisted_villages_note(store: Store, codes: list[str], dry_run: bool) -> str:
    """Said once when the division table stops at townships: the villages taken by their township
    code, which registers and township books list by code until the county adds their names."""
    named = [f"{c}({store.division_name(c[:9]) or c[:9]})" for c in codes[:10]]
    more = f" 等 {len(codes)} 个" if len(codes) > 10 else ""
    return (f"本库的行政区划只到乡(镇),还没有村:这些村代码已按所属乡(镇)核对,{'可以' if dry_run else '已'}导入:"
            f"{'、'.join(named)}{more}。请在 参考数据 › 行政区划 中添加这些村和村名"
            "(或 jiandang reference add-division),村有册、乡有簿才印得出村名。")


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
                 dry: bool = False, errors_out=None, progress: Progress = None,
                 options: Options | None = None) -> Report:
    """analyse + dry_run/commit (+ the error workbook when rows were rejected and errors_out is given)."""
    plan = analyse(store, path, village=village, saved_mapping=mapping, options=options)
    report = dry_run(store, plan, progress) if dry else commit(store, plan, progress)
    if errors_out and report.rejected_rows:
        write_error_workbook(report, errors_out)
    return report
