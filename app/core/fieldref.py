"""The field reference of the household document (docs/fields.md), generated from forms/ so it is
never out of date with the dictionary (as sqlite-utils generates its CLI reference):

    python -m app.core.fieldref docs/fields.md      # write the page
    python -m app.core.fieldref --check docs/fields.md   # exit 1 when the page is stale

tests/test_docs.py fails when the committed page differs from what this renders.
"""

from __future__ import annotations

import sys
from pathlib import Path

from app.core.dictionary import Dictionary, Field, default

TYPES = {
    "text": "text", "integer": "integer", "decimal": "decimal", "date": "date `YYYY-MM-DD`",
    "code": "code", "multi_code": "list of codes", "bool": "`true` / `false`",
    "id_number": "ID number (18 characters)", "phone": "phone (mobile or with area code)",
}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _notes(f: Field, d: Dictionary) -> str:
    notes = []
    if f.codes:
        notes.append(f"codes: [{f.codes}](#{f.codes})")
    if f.min is not None or f.max is not None:
        low = "" if f.min is None else f"{f.min:g}"
        high = "" if f.max is None else f"{f.max:g}"
        notes.append(f"range {low}…{high}")
    if f.max_length:
        notes.append(f"at most {f.max_length} characters")
    if f.max_items:
        notes.append(f"at most {f.max_items} items")
    if f.pattern == "digits":
        notes.append("digits only")
    if f.readonly:
        notes.append("read-only (changed by the procedures only)")
    if f.masked:
        notes.append("partly hidden in the record history (first 6 and last 4 characters)")
    if f.default is not None:
        notes.append(f"default `{f.default}`")
    if f.show_if is not None:
        shown = "、".join(d.code_label(d.kinds[f.kind].fields[f.show_if.field].codes, v)
                         if d.kinds[f.kind].fields.get(f.show_if.field) and d.kinds[f.kind].fields[f.show_if.field].codes
                         else str(v) for v in f.show_if.values)
        notes.append(f"only when `{f.show_if.field}` is {shown}")
    if f.help:
        notes.append(f.help)
    return "; ".join(_cell(n) for n in notes)


def render(d: Dictionary | None = None) -> str:
    """The whole page as Markdown."""
    d = d or default()
    out = [
        "# Field reference",
        "",
        f"<!-- generated from forms/ (dictionary version {d.version}) by `python -m app.core.fieldref docs/fields.md`;",
        "     do not edit by hand: tests/test_docs.py fails when this page is stale -->",
        "",
        f"Every key of the household document ([json.md](json.md)), of the Excel/CSV columns and of the",
        f"window's forms, read from `forms/` (dictionary version {d.version}). 必填 marks a required field.",
        "A code field takes the code or its Chinese label; a list of codes takes a JSON list of either.",
        "Besides these fields a household has `village_code` (the village's 12-digit division code) and,",
        "once stored, `id`; each child record has an `id` once stored.",
        "",
    ]
    for kind in d.kinds.values():
        if kind.key == "household":
            where = "the document itself"
        elif kind.parent == "household" and kind in d.child_kinds("household"):
            where = f"each item of the list `\"{kind.key}s\"`"
        else:
            where = "not part of the household document: changed through `jiandang propose` and the procedure commands"
        out += [f"## {kind.key}: {kind.label}", "", f"Where: {where}.", ""]
        out += ["| key | 标签 | type | 必填 | notes |", "|---|---|---|---|---|"]
        for section in kind.sections:
            for f in section.fields:
                out.append(f"| `{f.key}` | {_cell(f.label)} | {TYPES.get(f.type, f.type)} | "
                           f"{'必填' if f.required else ''} | {_notes(f, d)} |")
        out.append("")
    out += ["## Code lists", ""]
    for name, codes in d.codes.items():
        out += [f"### {name}", "", " · ".join(f"`{code}` {_cell(label)}" for code, label in codes.items()), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    paths = [a for a in argv if a != "--check"]
    target = Path(paths[0] if paths else "docs/fields.md")
    text = render()
    if check:
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            print(f"{target} 已过期:请运行 python -m app.core.fieldref {target}", file=sys.stderr)
            return 1
        return 0
    target.write_text(text, encoding="utf-8", newline="\n")
    print(f"已生成 {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
