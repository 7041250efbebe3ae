"""Badge images (SVG and PNG), and baking a credential into them as Open Badges 3.0 describes: a PNG ``iTXt``
chunk with the keyword ``openbadgecredential``, or an ``<openbadges:credential>`` element right inside the SVG's
root, each holding the compact VC-JWT."""

from __future__ import annotations

import io
import re
import struct
import zlib
from functools import lru_cache
from xml.sax.saxutils import escape, quoteattr

from assessor.errors import CertificateError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_KEYWORD = b"openbadgecredential"
SVG_NAMESPACE = "https://purl.imsglobal.org/ob/v3p0"
SIZE = 400
COLOURS = {"ring": "#2f4f6f", "face": "#f4f7fa", "text": "#1d2733", "muted": "#5a6b7d"}


TITLE_WIDTH, SUBTITLE_WIDTH = 22, 34
# "Capstone 3: Backend Architecture Defense and Handover" names the capstone after the colon.
_NUMBERED_CAPSTONE = re.compile(r"^\s*capstone(\s+(project\s+)?\d+)?\s*:\s*", re.IGNORECASE)


def badge_texts(*, course: str, capstone: str, issuer: str) -> dict:
    """What a capstone's badge says: the capstone by its own name, its course beneath, the issuer above."""
    name = _NUMBERED_CAPSTONE.sub("", capstone).strip() or capstone.strip() or course
    return {"title": name, "subtitle": course, "issuer": issuer}


def _lines(text: str, width: int, most: int = 3) -> list[str]:
    """Words wrapped to `width` characters, at most `most` lines."""
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word[:width])
    if len(lines) > most:
        lines = lines[:most]
        lines[-1] = lines[-1][: width - 1] + "…"
    return lines


def badge_svg(*, title: str, subtitle: str, issuer: str) -> str:
    """The course badge: a ringed disc with the course, the capstone and the issuer (all escaped)."""
    rows = _lines(title, TITLE_WIDTH)
    first = 190 - 16 * (len(rows) - 1)
    title_text = "".join(f'<tspan x="200" y="{first + 32 * i}">{escape(row)}</tspan>' for i, row in enumerate(rows))
    under = "".join(f'<tspan x="200" y="{292 + 20 * i}">{escape(row)}</tspan>'
                    for i, row in enumerate(_lines(subtitle, SUBTITLE_WIDTH, 2)))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" viewBox="0 0 400 400" '
        f'role="img" aria-label="{escape(title, {chr(34): "&quot;"})}">'
        f'<circle cx="200" cy="200" r="192" fill="{COLOURS["ring"]}"/>'
        f'<circle cx="200" cy="200" r="172" fill="{COLOURS["face"]}"/>'
        f'<text x="200" y="96" text-anchor="middle" font-family="DejaVu Sans, sans-serif" font-size="16" '
        f'letter-spacing="2" fill="{COLOURS["muted"]}">{escape(issuer.upper()[:28])}</text>'
        f'<text text-anchor="middle" font-family="DejaVu Serif, serif" font-size="26" '
        f'fill="{COLOURS["text"]}">{title_text}</text>'
        f'<text text-anchor="middle" font-family="DejaVu Sans, sans-serif" font-size="15" '
        f'fill="{COLOURS["muted"]}">{under}</text>'
        f'</svg>'
    )


@lru_cache(maxsize=64)
def badge_png(*, title: str, subtitle: str, issuer: str) -> bytes:
    """The same badge drawn as a PNG (Pillow), for the places that do not show SVG."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGBA", (SIZE, SIZE), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 8, 392, 392), fill=COLOURS["ring"])
    draw.ellipse((28, 28, 372, 372), fill=COLOURS["face"])
    small, large = ImageFont.load_default(size=15), ImageFont.load_default(size=26)
    draw.text((200, 96), issuer.upper()[:28], font=small, fill=COLOURS["muted"], anchor="ms")
    rows = _lines(title, TITLE_WIDTH)
    first = 190 - 16 * (len(rows) - 1)
    for i, row in enumerate(rows):
        draw.text((200, first + 32 * i), row, font=large, fill=COLOURS["text"], anchor="ms")
    for i, row in enumerate(_lines(subtitle, SUBTITLE_WIDTH, 2)):
        draw.text((200, 292 + 20 * i), row, font=small, fill=COLOURS["muted"], anchor="ms")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bake_png(png: bytes, token: str) -> bytes:
    """The PNG with the credential in an uncompressed iTXt chunk placed right after IHDR."""
    if not png.startswith(PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise CertificateError("not a PNG image")
    header_end = 8 + 4 + 4 + struct.unpack(">I", png[8:12])[0] + 4
    # keyword, NUL, compression flag 0, method 0, empty language tag, NUL, empty translated keyword, NUL, text
    payload = PNG_KEYWORD + b"\x00\x00\x00" + b"\x00" + b"\x00" + token.encode("ascii")
    return png[:header_end] + _chunk(b"iTXt", payload) + png[header_end:]


def bake_svg(svg: str, token: str) -> str:
    """The SVG with the credential as the first element inside its root, in the OB 3.0 namespace: a VC-JWT goes in
    the element's `verify` attribute and the element stays empty, as OB 3.0's baking section asks (the text is
    for a credential with an embedded proof)."""
    start = svg.find("<svg")
    end = svg.find(">", start)
    if start < 0 or end < 0:
        raise CertificateError("not an SVG image")
    opening = svg[:end]
    if "xmlns:openbadges=" not in opening:
        opening += f' xmlns:openbadges="{SVG_NAMESPACE}"'
    verify = quoteattr(token)  # the attribute value with its own quotes, escaped for XML
    return f"{opening}><openbadges:credential verify={verify}></openbadges:credential>{svg[end + 1:]}"
