"""Test photos made with Pillow in the tests (no image is committed)."""

from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import Image


def photo(width: int = 4000, height: int = 3000, *, seed: int = 1, orientation: int | None = None,
          taken: str | None = "2025:03:01 10:20:30", gps: bool = False, quality: int = 85) -> bytes:
    """A phone-like JPEG: a noisy gradient (so it does not compress to nothing), with EXIF."""
    rnd = random.Random(seed)
    small = Image.new("RGB", (64, 48))
    small.putdata([(rnd.randrange(256), (x * 4) % 256, (y * 5) % 256) for y in range(48) for x in range(64)])
    img = small.resize((width, height), Image.Resampling.BILINEAR)
    exif = Image.Exif()
    exif[0x010F] = "TestPhone"
    if taken:
        exif.get_ifd(0x8769)[0x9003] = taken
    if orientation:
        exif[0x0112] = orientation
    if gps:
        exif.get_ifd(0x8825).update({1: "N", 2: (26.0, 34.0, 12.0), 3: "E", 4: (107.0, 58.0, 30.0)})
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


def png(width: int = 800, height: int = 600) -> bytes:
    img = Image.new("RGBA", (width, height), (255, 0, 0, 128))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def huge_png(width: int = 20000, height: int = 10000) -> bytes:
    """A small PNG whose header claims 200 megapixels (a decompression bomb, without the memory)."""
    data = bytearray(png(8, 8))
    ihdr = 8  # the IHDR chunk follows the 8-byte signature: length(4) type(4) data(13) crc(4)
    data[ihdr + 8: ihdr + 16] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr + 4: ihdr + 8 + 13]))
    data[ihdr + 8 + 13: ihdr + 8 + 17] = struct.pack(">I", crc)
    return bytes(data)


def heic() -> bytes:
    """The start of an iPhone HEIC file (ftyp box, brand heic)."""
    return struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic" + b"\x00" * 200


def pdf(pages: int = 2) -> bytes:
    out = io.BytesIO()
    imgs = [Image.new("RGB", (850, 1100), (250, 250, 240 - 20 * i)) for i in range(pages)]
    imgs[0].save(out, "PDF", save_all=True, append_images=imgs[1:], resolution=100)
    return out.getvalue()


# Long enough that random ciphertext never matches (a 3-byte JPEG start would, once in 16 MB):
# the JPEG markers' JFIF/Exif signatures, the PNG signature and the thumbnails' and PDF renders' too.
IMAGE_MAGICS = (b"JFIF\x00", b"Exif\x00\x00", b"\x89PNG\r\n\x1a\n", b"IHDR\x00\x00")


def find_magic(path) -> list[tuple[str, int]]:
    """(magic, offset) of every JPEG/PNG signature in a file."""
    data = open(path, "rb").read()
    found = []
    for magic in IMAGE_MAGICS:
        start = data.find(magic)
        while start != -1:
            found.append((magic.hex(), start))
            start = data.find(magic, start + 1)
    return found
