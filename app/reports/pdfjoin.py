"""One PDF written from several, part by part: long documents (a township's household cards) are
built a chunk of pages at a time in memory, and each chunk's pages are copied into the output file
as soon as the chunk is finished. reportlab keeps every page of a document until it writes the file
(about 75 KB a card); joined this way, memory holds one chunk whatever the number of pages, and no
page is ever written anywhere but into the output (no temporary file with personal data).

`PdfJoiner(out)` takes an open binary file; `add(pdf_bytes)` copies the pages of one finished PDF
(its objects renumbered, each written once; the objects a chunk's pages share are copied once per
chunk); `finish(info)` writes the page tree, the catalog, the document information and the
cross-reference table. Parsing uses pypdf (only the objects the pages reach are read; content
streams are copied as they are, still compressed).

Embedded fonts: reportlab embeds a TrueType font as subsets of up to 256 characters, numbered in the
order the document first uses its characters. `SharedSubsets` makes every chunk use one such
numbering (the chunks' documents share reportlab's per-document font state, carried from one to
the next), so a subset of a later chunk holds every character an earlier chunk's subset of that
name holds, at the same codes. `PdfJoiner(out, shared_fonts=True)` then writes each subset (font,
descriptor, font file, character map) once: the version of the last chunk that has it, at finish;
every chunk's pages refer to it. Without it each chunk carried its own copy (1,000 cards: 11.1 MB
instead of 10.3 MB).
"""

from __future__ import annotations

import io
from typing import BinaryIO

from pypdf import PdfReader
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NumberObject,
    PdfObject,
)

HEADER = b"%PDF-1.4\n%\x93\x8c\x8b\x9e\n"


class SharedSubsets:
    """One numbering of the characters of the named TrueType fonts into subsets for several reportlab
    documents built one after another (see the module doc): `install(canvas)` when each document's
    canvas is made, before any text is drawn."""

    def __init__(self, font_names: list[str]):
        self.font_names = font_names
        self.states: dict[str, object] = {}

    def install(self, canvas) -> None:
        from reportlab.pdfbase import pdfmetrics

        doc = canvas._doc
        for name in self.font_names:
            font = pdfmetrics.getFont(name)
            existing = font.state.get(doc)
            state = self.states.get(name)
            if state is None:  # the first document: its own state (made now if not yet) is the one
                self.states[name] = existing if existing is not None else font._assignState(doc)
                continue
            if existing is not None and existing.assignments != type(existing)(font._asciiReadable, font).assignments:
                raise ValueError(f"font {name} was used before its subsets could be shared")
            # the subsets so far, open for more characters (reportlab froze them when it wrote the
            # last document), under the name this document gave the font, if it has given one
            state.frozen = 0
            state.internalName = existing.internalName if existing is not None else None
            font.state[doc] = state


class PdfJoiner:
    """Writes the pages of PDFs given one after another as one PDF (see the module doc)."""

    def __init__(self, out: BinaryIO, shared_fonts: bool = False):
        self.out = out
        self.shared_fonts = shared_fonts
        self.font_numbers: dict[tuple[str, str], int] = {}  # (subset's BaseFont, path in it) -> number
        self.font_objects: dict[int, bytes] = {}  # number -> the object as the latest part has it
        self.position = 0
        self.offsets: list[int | None] = [None]  # by object number; 0 is the free list head
        self.pages_id = self._reserve()
        self.kids: list[int] = []
        self.info: DictionaryObject | None = None
        self._write(HEADER)

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.position += len(data)

    def _reserve(self) -> int:
        self.offsets.append(None)
        return len(self.offsets) - 1

    def _write_object(self, number: int, obj: PdfObject) -> None:
        self.offsets[number] = self.position
        self._write(_object_bytes(number, obj))

    def _keep_font(self, base_font: str, font: DictionaryObject) -> int:
        """The output's number of a font subset's object; its objects as this part has them kept
        (replacing an earlier part's) to be written at finish, numbered by their path in the font."""

        def keep(path: str, obj) -> int:
            number = self.font_numbers.get((base_font, path))
            if number is None:
                number = self.font_numbers[(base_font, path)] = self._reserve()
            self.font_objects[number] = _object_bytes(number, walk(path, obj))
            return number

        def walk(path: str, obj):
            if isinstance(obj, IndirectObject):
                return IndirectObject(keep(path, obj.get_object()), 0, None)
            if isinstance(obj, DictionaryObject):
                for key, value in list(dict.items(obj)):
                    dict.__setitem__(obj, key, walk(f"{path}{key}", value))
            elif isinstance(obj, ArrayObject):
                for i, value in enumerate(obj):
                    list.__setitem__(obj, i, walk(f"{path}[{i}]", value))
            return obj

        return keep("", font)

    def add(self, pdf: bytes) -> int:
        """Copy every page of one PDF (in order) into the output; returns its page count."""
        reader = PdfReader(io.BytesIO(pdf))
        numbers: dict[int, int] = {}  # object number in this part -> in the output
        pending: list[tuple[int, IndirectObject]] = []

        def ref(indirect: IndirectObject) -> IndirectObject:
            number = numbers.get(indirect.idnum)
            if number is None:
                target = indirect.get_object() if self.shared_fonts else None
                if _is_subset_font(target):
                    number = numbers[indirect.idnum] = self._keep_font(str(target["/BaseFont"]), target)
                else:
                    number = numbers[indirect.idnum] = self._reserve()
                    pending.append((number, indirect))
            return IndirectObject(number, 0, None)

        def convert(obj):
            """The object with references renumbered (changed in place: the part is thrown away)."""
            if isinstance(obj, IndirectObject):
                return ref(obj)
            if isinstance(obj, DictionaryObject):  # streams too (their data is kept as it is)
                if obj.get("/Type") == "/Pages":
                    raise ValueError("a page tree node reached from a page")
                for key, value in list(dict.items(obj)):
                    dict.__setitem__(obj, key, convert(value))
            elif isinstance(obj, ArrayObject):
                for i, value in enumerate(obj):
                    list.__setitem__(obj, i, convert(value))
            return obj

        pages = reader.pages
        for page in pages:  # (inherited attributes, if any, are on the page: pypdf flattens the tree)
            number = numbers.get(page.indirect_reference.idnum)
            if number is None:
                number = numbers[page.indirect_reference.idnum] = self._reserve()
            dict.pop(page, "/Parent", None)
            page = convert(page)
            page[NameObject("/Parent")] = IndirectObject(self.pages_id, 0, None)
            self._write_object(number, page)
            self.kids.append(number)
            while pending:
                number, indirect = pending.pop()
                self._write_object(number, convert(indirect.get_object()))
        if self.info is None and "/Info" in reader.trailer:
            info = reader.trailer.raw_get("/Info").get_object()
            self.info = DictionaryObject({k: v for k, v in dict.items(info) if not isinstance(v, IndirectObject)})
        return len(pages)

    def finish(self, info: dict[str, str] | None = None) -> int:
        """Write the page tree, catalog, information and cross-reference table; returns the page count."""
        from pypdf.generic import TextStringObject

        for number, data in self.font_objects.items():  # each font subset once, as the last part had it
            self.offsets[number] = self.position
            self._write(data)
        self.font_objects.clear()
        kids = ArrayObject(IndirectObject(k, 0, None) for k in self.kids)
        self._write_object(self.pages_id, DictionaryObject({
            NameObject("/Type"): NameObject("/Pages"), NameObject("/Kids"): kids,
            NameObject("/Count"): NumberObject(len(self.kids))}))
        catalog = self._reserve()
        self._write_object(catalog, DictionaryObject({
            NameObject("/Type"): NameObject("/Catalog"), NameObject("/Pages"): IndirectObject(self.pages_id, 0, None),
            NameObject("/PageMode"): NameObject("/UseNone")}))
        meta = DictionaryObject(self.info or {})
        for key, value in (info or {}).items():
            meta[NameObject("/" + key)] = TextStringObject(value)
        info_id = self._reserve()
        self._write_object(info_id, meta)
        start = self.position
        lines = [b"xref\n0 %d\n" % len(self.offsets), b"0000000000 65535 f \n"]
        for offset in self.offsets[1:]:
            if offset is None:
                raise ValueError("an object was numbered but never written")
            lines.append(b"%010d 00000 n \n" % offset)
        trailer = DictionaryObject({NameObject("/Size"): NumberObject(len(self.offsets)),
                                    NameObject("/Root"): IndirectObject(catalog, 0, None),
                                    NameObject("/Info"): IndirectObject(info_id, 0, None)})
        buffer = io.BytesIO()
        trailer.write_to_stream(buffer)
        self._write(b"".join(lines) + b"trailer\n" + buffer.getvalue() + b"\nstartxref\n%d\n%%%%EOF\n" % start)
        return len(self.kids)


def _object_bytes(number: int, obj: PdfObject) -> bytes:
    buffer = io.BytesIO()
    buffer.write(b"%d 0 obj\n" % number)
    obj.write_to_stream(buffer)
    buffer.write(b"\nendobj\n")
    return buffer.getvalue()


def _is_subset_font(obj) -> bool:
    """A font dictionary of an embedded subset (its BaseFont tagged ABCDEF+Name, as reportlab names them)."""
    if not isinstance(obj, DictionaryObject) or obj.get("/Type") != "/Font":
        return False
    base = str(obj.get("/BaseFont", ""))
    return len(base) > 8 and base[7] == "+" and base[1:7].isalpha() and base[1:7].isupper()
