"""Photos and scanned papers on the way in (Pillow; docs/attachments.md): read from memory, checked,
EXIF orientation applied, resized to the longest side of the settings, re-encoded as JPEG without
any EXIF (so GPS, the phone's serial number and the like are dropped; the position is kept in the
sealed metadata only when the county chooses), the date taken read from EXIF. A PDF of scanned
pages becomes one image per page (pypdfium2). Nothing is written to disk: no temporary file.

Every refusal is an `ImageRefused` whose Chinese message names the file and says what to do.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_FILE_BYTES = 80 * 1024 * 1024  # a file larger than this is not a photo or a scan
MAX_PIXELS = 120_000_000  # 108-megapixel phone photos pass; a 200-megapixel image (or a bomb) is refused
MAX_PDF_PAGES = 30
PDF_DPI = 150
THUMB_SIDE = 240
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".heic", ".heif", ".pdf"}
_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1", b"avif")


class ImageRefused(Exception):
    """A file that cannot be attached; the message (Chinese) names it and says what to do."""


@dataclass
class Prepared:
    """One image ready to store: JPEG bytes and what was read from the original."""

    data: bytes
    width: int
    height: int
    thumb: bytes
    taken: str | None = None  # "YYYY-MM-DD HH:MM" from EXIF DateTimeOriginal, else None
    gps: dict | None = None  # {"lat": .., "lon": ..} only when keeping GPS was chosen
    page: int | None = None  # page number of a PDF
    notes: list = field(default_factory=list)


def _exif_date(exif) -> str | None:
    raw = None
    try:
        raw = exif.get_ifd(0x8769).get(0x9003) or exif.get(0x0132)
    except Exception:  # noqa: BLE001 - damaged EXIF: no date
        return None
    if not raw:
        return None
    text = str(raw).strip("\x00 ")
    for pattern in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M"):
        try:
            when = dt.datetime.strptime(text[:19], pattern)
        except ValueError:
            continue
        if 1990 <= when.year <= dt.date.today().year + 1:
            return when.strftime("%Y-%m-%d %H:%M")
    return None


def _exif_gps(exif) -> dict | None:
    try:
        gps = exif.get_ifd(0x8825)
        if not gps or 2 not in gps or 4 not in gps:
            return None

        def degrees(values, ref, negative):
            d, m, s = (float(v) for v in values)
            value = d + m / 60 + s / 3600
            return round(-value if str(ref).upper().startswith(negative) else value, 6)

        return {"lat": degrees(gps[2], gps.get(1, "N"), "S"), "lon": degrees(gps[4], gps.get(3, "E"), "W")}
    except Exception:  # noqa: BLE001 - damaged GPS block: none
        return None


def _encode(img: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()


def _rgb(img: Image.Image) -> Image.Image:
    """RGB on white (transparent PNG scans would turn black in JPEG)."""
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        base = Image.new("RGB", rgba.size, "white")
        base.paste(rgba, mask=rgba.getchannel("A"))
        return base
    return img.convert("RGB") if img.mode != "RGB" else img


def _finish(img: Image.Image, max_side: int, quality: int) -> tuple[bytes, int, int, bytes]:
    img = _rgb(img)
    if max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    data = _encode(img, quality)
    small = img.copy()
    small.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BILINEAR)
    return data, img.width, img.height, _encode(small, 70)


def prepare(data: bytes, name: str, *, max_side: int = 1600, quality: int = 80, keep_gps: bool = False) -> list[Prepared]:
    """The images to store for one file (one, or one per page of a PDF). Raises ImageRefused."""
    if len(data) > MAX_FILE_BYTES:
        raise ImageRefused(f"{name}:文件过大({len(data) // (1024 * 1024)} MB,上限 {MAX_FILE_BYTES // (1024 * 1024)} MB),"
                           "不像是照片或扫描件。请先在电脑上缩小或分页后再添加")
    if not data:
        raise ImageRefused(f"{name}:文件是空的(0 字节),可能没有从手机复制完整。请重新复制后再添加")
    if data[:5] == b"%PDF-":
        return _prepare_pdf(data, name, max_side, quality)
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        raise ImageRefused(f"{name}:这是 HEIC/HEIF 格式(苹果等手机的“高效”照片),本程序无法读取。"
                           "请在手机相机设置里选“兼容性最佳”(JPEG)重新拍摄,或先在电脑上转存为 JPEG 后再添加")
    with warnings.catch_warnings():
        # Pillow warns above Image.MAX_IMAGE_PIXELS (89 MP) and refuses above twice that; our own limit
        # (MAX_PIXELS, checked from the header before decoding) sits between, so 108 MP phone photos pass
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=_FORMATS)
        except UnidentifiedImageError:
            raise ImageRefused(f"{name}:不是可识别的图片(支持 JPEG、PNG、WEBP、BMP、TIFF 照片和 PDF 扫描件)。"
                               "请确认选对了文件") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageRefused(_too_many_pixels(name, None)) from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageRefused(f"{name}:图片文件已损坏,无法读取({type(exc).__name__})。请从手机重新复制") from None
        with img:
            pixels = img.width * img.height
            if pixels > MAX_PIXELS:
                raise ImageRefused(_too_many_pixels(name, pixels))
            exif = img.getexif()
            taken = _exif_date(exif)
            gps = _exif_gps(exif) if keep_gps else None
            try:
                if img.format == "JPEG" and max(img.size) > max_side:
                    # decode at 1/2, 1/4 or 1/8 scale (in the JPEG decoder, much faster than decoding all
                    # 12 megapixels and resizing) when that still leaves both sides at least the target's
                    scale = max_side / max(img.size)
                    img.draft("RGB", (math.ceil(img.width * scale), math.ceil(img.height * scale)))
                img.load()
                upright = ImageOps.exif_transpose(img, in_place=True) or img
                out = _finish(upright, max_side, quality)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise ImageRefused(_too_many_pixels(name, pixels)) from None
            except (OSError, ValueError, SyntaxError) as exc:
                why = "文件不完整(被截断),可能没有从手机复制完" if "truncated" in str(exc) else f"内容已损坏({type(exc).__name__})"
                raise ImageRefused(f"{name}:图片{why},无法读取。请从手机或相机重新复制这张照片") from None
            except MemoryError:
                raise ImageRefused(_too_many_pixels(name, pixels)) from None
    data_out, width, height, thumb = out
    return [Prepared(data_out, width, height, thumb, taken, gps)]


def _too_many_pixels(name: str, pixels: int | None) -> str:
    size = f"{pixels / 1e6:.0f} 百万像素," if pixels else ""
    return (f"{name}:图片过大({size}上限 {MAX_PIXELS // 1_000_000} 百万像素),可能不是普通照片或文件已被做了手脚。"
            "请在手机或电脑上把它缩小后再添加")


def _prepare_pdf(data: bytes, name: str, max_side: int, quality: int) -> list[Prepared]:
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise ImageRefused(f"{name}:PDF 设有密码,无法读取。请去掉密码后再添加") from None
        raise ImageRefused(f"{name}:PDF 文件已损坏或不完整,无法读取。请重新扫描或重新复制") from None
    try:
        count = len(pdf)
        if count == 0:
            raise ImageRefused(f"{name}:PDF 中没有页面")
        if count > MAX_PDF_PAGES:
            raise ImageRefused(f"{name}:PDF 有 {count} 页,超过 {MAX_PDF_PAGES} 页的上限。请只扫描需要作为佐证的页,"
                               "或分成几个文件添加")
        out = []
        for i in range(count):
            page = pdf[i]
            try:
                w, h = page.get_size()  # points
                scale = min(PDF_DPI / 72, max_side / max(w, h, 1))
                img = page.render(scale=scale).to_pil()
            finally:
                page.close()
            data_out, width, height, thumb = _finish(img, max_side, quality)
            out.append(Prepared(data_out, width, height, thumb, None, None, page=i + 1))
        return out
    except pdfium.PdfiumError:
        raise ImageRefused(f"{name}:PDF 页面无法读取(文件已损坏)。请重新扫描") from None
    finally:
        pdf.close()


def image_files(paths) -> tuple[list[Path], list[Path]]:
    """Files to attach from files and folders: a folder gives its files with a photo or PDF suffix
    (sorted; subfolders are not searched). Returns (files, files of a folder left out)."""
    files, left_out = [], []
    for p in map(Path, paths):
        if p.is_dir():
            for entry in sorted(p.iterdir()):
                if entry.is_file() and not entry.name.startswith("."):
                    (files if entry.suffix.lower() in IMAGE_SUFFIXES else left_out).append(entry)
        else:
            files.append(p)
    return files, left_out
