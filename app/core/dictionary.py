"""The data dictionary: forms/*.toml read into plain dataclasses.

Every view (entry widgets, validation, storage, prints, Excel columns, bundles) reads fields from
here. Nothing in forms/ is evaluated as code: show-if conditions are data, and cross-field rules are
names looked up in app.core.rules.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from app.paths import forms_dir

FIELD_TYPES = {"text", "integer", "decimal", "date", "code", "multi_code", "bool", "id_number", "phone"}


class DictionaryError(ValueError):
    """forms/ is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class ShowIf:
    """Show a field only when another field of the same record has one of the listed values."""

    field: str
    values: tuple

    def holds(self, record: dict) -> bool:
        value = record.get(self.field)
        if isinstance(value, list):
            return any(v in self.values for v in value)
        return value in self.values


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    type: str
    kind: str
    section: str
    required: bool = False
    codes: str | None = None
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    max_items: int | None = None
    pattern: str | None = None
    multiline: bool = False
    readonly: bool = False  # shown but not typed in the editor (e.g. status: changed only by procedures)
    masked: bool = False  # past values partly hidden where a window lists them (bank accounts: the history)
    default: object = None
    help: str = ""
    show_if: ShowIf | None = None

    def visible(self, record: dict) -> bool:
        return self.show_if is None or self.show_if.holds(record)


@dataclass(frozen=True)
class Section:
    key: str
    label: str
    fields: tuple[Field, ...]
    tab_label: str = ""  # the editor's tab (`tab_label` in forms/, short: eleven tabs fit a 1366-pixel screen)


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    parent: str | None
    title_field: str
    rules: tuple[str, ...]
    sections: tuple[Section, ...]
    fields: dict[str, Field] = field(default_factory=dict)
    tab_label: str = ""  # the editor's tab for a child kind (`tab_label` in forms/; default: label)

    def field_keys(self) -> list[str]:
        return list(self.fields)


@dataclass(frozen=True)
class Dictionary:
    version: str
    kinds: dict[str, Kind]
    codes: dict[str, dict[str, str]]

    def kind(self, key: str) -> Kind:
        try:
            return self.kinds[key]
        except KeyError:
            raise DictionaryError(f"未知的记录类型 {key!r}") from None

    def code_label(self, list_name: str, code) -> str:
        """The Chinese label of a code, or the code itself when unknown."""
        if code is None:
            return ""
        return self.codes.get(list_name, {}).get(str(code), str(code))

    def field_label(self, kind: str, key: str) -> str:
        """The Chinese label of a field; for a rule about a whole list of child records (a
        household's "members"), the label of that kind (家庭成员)."""
        f = self.kinds[kind].fields.get(key)
        if f:
            return f.label
        if key == "village_code":  # the household's village: no field of forms/, said as the checks say it
            return "所在村"
        child = next((k for k in self.kinds.values() if k.parent == kind and k.key + "s" == key), None)
        return child.label if child else key

    def child_kinds(self, parent: str) -> list[Kind]:
        return [k for k in self.kinds.values() if k.parent == parent]

    def display(self, kind: str, key: str, value) -> str:
        """A field's value as a person reads it: code labels, 是/否, joined lists."""
        f = self.kinds[kind].fields.get(key)
        if value is None or value == "" or value == []:
            return ""
        if f is None:
            return str(value)
        if f.type == "code":
            return self.code_label(f.codes, value)
        if f.type == "multi_code":
            return "、".join(self.code_label(f.codes, v) for v in value)
        if f.type == "bool":
            return "是" if value else "否"
        return str(value)

    def display_masked(self, kind: str, key: str, value) -> str:
        """`display`, except that a field marked `masked = true` in forms/ (bank accounts) is partly
        hidden as printed ID numbers are (`idnumber.mask`: the first 6 and last 4 characters): the
        one way a screen that lists past or competing values (修改记录, 同步冲突) shows them."""
        f = self.kinds[kind].fields.get(key) if kind in self.kinds else None
        if f is not None and f.masked:
            from app.core import idnumber

            return idnumber.mask(str(value)) if value not in (None, "") else ""
        return self.display(kind, key, value) if kind in self.kinds else ("" if value in (None, "") else str(value))


def _load_kind(path: Path, codes: dict) -> Kind:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    kind_key = data["key"]
    sections = []
    fields: dict[str, Field] = {}
    for sec in data.get("sections", []):
        sec_fields = []
        for raw in sec.get("fields", []):
            where = f"{path.name}: 字段 {raw.get('key')!r}"
            ftype = raw.get("type")
            if ftype not in FIELD_TYPES:
                raise DictionaryError(f"{where}: 未知类型 {ftype!r}")
            if ftype in ("code", "multi_code") and raw.get("codes") not in codes:
                raise DictionaryError(f"{where}: 代码表 {raw.get('codes')!r} 不存在于 codes.toml")
            if raw["key"] in fields:
                raise DictionaryError(f"{where}: 字段重复")
            show_if = None
            if "show_if" in raw:
                cond = raw["show_if"]
                values = cond.get("in", [cond.get("equals")])
                show_if = ShowIf(field=cond["field"], values=tuple(values))
            f = Field(
                key=raw["key"],
                label=raw["label"],
                type=ftype,
                kind=kind_key,
                section=sec["key"],
                required=raw.get("required", False),
                codes=raw.get("codes"),
                min=raw.get("min"),
                max=raw.get("max"),
                max_length=raw.get("max_length"),
                max_items=raw.get("max_items"),
                pattern=raw.get("pattern"),
                multiline=raw.get("multiline", False),
                readonly=raw.get("readonly", False),
                masked=raw.get("masked", False),
                default=raw.get("default"),
                help=raw.get("help", ""),
                show_if=show_if,
            )
            fields[f.key] = f
            sec_fields.append(f)
        sections.append(Section(key=sec["key"], label=sec["label"], fields=tuple(sec_fields),
                                tab_label=sec.get("tab_label") or sec["label"]))
    for f in fields.values():
        if f.show_if and f.show_if.field not in fields:
            raise DictionaryError(f"{path.name}: 字段 {f.key!r} 的显示条件引用了不存在的字段 {f.show_if.field!r}")
    return Kind(
        key=kind_key,
        label=data["label"],
        parent=data.get("parent") or None,
        title_field=data.get("title_field", ""),
        rules=tuple(data.get("rules", [])),
        sections=tuple(sections),
        fields=fields,
        tab_label=data.get("tab_label") or data["label"],
    )


def load(folder: Path | None = None) -> Dictionary:
    """Read a forms/ folder. Raises DictionaryError naming the file and field on a mistake."""
    folder = Path(folder) if folder else forms_dir()
    meta = tomllib.loads((folder / "dictionary.toml").read_text(encoding="utf-8"))
    codes = tomllib.loads((folder / "codes.toml").read_text(encoding="utf-8"))
    codes = {name: {str(k): v for k, v in table.items()} for name, table in codes.items()}
    kinds = {}
    for key in meta["kinds"]:
        kind = _load_kind(folder / f"{key}.toml", codes)
        if kind.key != key:
            raise DictionaryError(f"{key}.toml: key 应为 {key!r}")
        kinds[key] = kind
    from app.core import rules  # the named rules must all exist

    for kind in kinds.values():
        for name in kind.rules:
            if name not in rules.RULES:
                raise DictionaryError(f"{kind.key}.toml: 规则 {name!r} 在 app/core/rules.py 中不存在")
    return Dictionary(version=str(meta["version"]), kinds=kinds, codes=codes)


@functools.cache
def default() -> Dictionary:
    """The bundled dictionary (cached)."""
    return load()
