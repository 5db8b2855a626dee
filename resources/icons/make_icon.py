"""Draw the program icon (jiandang.png, jiandang.ico) with Pillow and the bundled font.

Run once from the project root when the icon should change: `python resources/icons/make_icon.py`.
The outputs are committed; the build does not need Pillow. A red rounded square with the character
档 (file) in white, above a thin gold bar.
"""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
FONT = HERE.parent / "fonts" / "DroidSansFallbackFull.ttf"


def draw(size: int = 256) -> Image.Image:
    scale = 4  # draw large, then shrink for smooth edges
    n = size * scale
    img = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((0, 0, n - 1, n - 1), radius=n // 6, fill=(190, 30, 45, 255))
    font = ImageFont.truetype(str(FONT), int(n * 0.66))
    box = d.textbbox((0, 0), "档", font=font)
    w, h = box[2] - box[0], box[3] - box[1]
    d.text(((n - w) / 2 - box[0], (n * 0.9 - h) / 2 - box[1]), "档", font=font, fill=(255, 255, 255, 255))
    d.rectangle((n * 0.2, n * 0.84, n * 0.8, n * 0.88), fill=(250, 200, 60, 255))
    return img.resize((size, size), Image.LANCZOS)


if __name__ == "__main__":
    icon = draw(256)
    icon.save(HERE / "jiandang.png")
    icon.save(HERE / "jiandang.ico", sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    print("wrote", HERE / "jiandang.png", HERE / "jiandang.ico")
