"""The metadata a file carries, read without decoding a single pixel.

Everything the cheap provenance checks need (PNG text chunks, EXIF fields, the XMP packet, a
JPEG comment) comes from the container alone: PNG chunks are walked here (all of them, also
the text that some tools write after the image data, which Pillow's lazy open never sees),
the rest comes from Pillow's lazy ``Image.open``, which reads headers only. Compressed text is
inflated with a cap, so a hostile file cannot make one sample cost gigabytes.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field

from PIL import Image

# No text field a generator writes comes near this; a larger one is cut, not inflated whole.
MAX_TEXT_BYTES = 1 << 20
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
XMP_PNG_KEYWORD = "XML:com.adobe.xmp"
# EXIF tags (TIFF IFD0 and the Exif sub-IFD) that name a tool or a person.
EXIF_IFD0 = {
    0x010E: "ImageDescription",
    0x010F: "Make",
    0x0110: "Model",
    0x0131: "Software",
    0x013B: "Artist",
    0x8298: "Copyright",
}
EXIF_SUB_IFD = 0x8769
USER_COMMENT = 0x9286
# The 8-byte character-code prefix of an EXIF UserComment (EXIF 2.3, 4.6.5).
_COMMENT_CODES = {
    b"ASCII\0\0\0": "ascii",
    b"UNICODE\0": "utf-16",
    b"JIS\0\0\0\0\0": "shift_jis",
}


@dataclass
class Metadata:
    """What the container says, as text. Absent things are empty, never errors."""

    mime: str | None = None
    width: int | None = None
    height: int | None = None
    text: dict[str, str] = field(default_factory=dict)  # PNG tEXt/zTXt/iTXt, first per keyword
    exif: dict[str, str] = field(default_factory=dict)  # EXIF_IFD0 names + "UserComment"
    xmp: str | None = None
    comment: str | None = None  # JPEG COM / GIF comment


def sniff_mime(data: bytes) -> str | None:
    """The image type from its first bytes (what c2pa needs to be told)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(PNG_SIGNATURE):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] in (b"II*\0", b"MM\0*"):
        return "image/tiff"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"mif1", b"msf1"):
            return "image/heif"
    return None


def read_metadata(data: bytes) -> Metadata:
    """Container metadata of ``data``; a file Pillow cannot open still gives its PNG text."""
    meta = Metadata(mime=sniff_mime(data))
    if meta.mime == "image/png":
        meta.text = png_text(data)
        meta.xmp = meta.text.pop(XMP_PNG_KEYWORD, None)
    try:
        img = Image.open(io.BytesIO(data))
    except Exception:  # not an image Pillow knows, or a broken header: metadata stays partial
        return meta
    with img:
        meta.width, meta.height = img.size
        info = img.info
        if meta.xmp is None:
            meta.xmp = _as_text(info.get("xmp") or info.get("XML:com.adobe.xmp"))
        comment = info.get("comment")
        meta.comment = _as_text(comment) if comment else None
        try:
            meta.exif = _exif_fields(img.getexif())
        except Exception:  # a malformed EXIF block is just absent metadata
            meta.exif = {}
    return meta


def png_text(data: bytes) -> dict[str, str]:
    """Every PNG text chunk (tEXt, zTXt, iTXt), keyword -> text; the first of a keyword wins."""
    out: dict[str, str] = {}
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IEND" or len(body) < length:
            break
        if kind not in (b"tEXt", b"zTXt", b"iTXt"):
            continue
        parsed = _png_text_chunk(kind, body)
        if parsed and parsed[0] not in out:
            out[parsed[0]] = parsed[1]
    return out


def _png_text_chunk(kind: bytes, body: bytes) -> tuple[str, str] | None:
    keyword, sep, rest = body.partition(b"\0")
    if not sep or not keyword:
        return None
    key = keyword.decode("latin-1")
    try:
        if kind == b"tEXt":
            return key, rest[:MAX_TEXT_BYTES].decode("latin-1")
        if kind == b"zTXt":
            return key, _inflate(rest[1:]).decode("latin-1")
        # iTXt: compression flag, method, language tag \0, translated keyword \0, text (UTF-8)
        flag = rest[:1] == b"\x01"
        _lang, _, rest = rest[2:].partition(b"\0")
        _translated, _, text = rest.partition(b"\0")
        raw = _inflate(text) if flag else text[:MAX_TEXT_BYTES]
        return key, raw.decode("utf-8", errors="replace")
    except zlib.error:
        return None


def _inflate(raw: bytes) -> bytes:
    inflater = zlib.decompressobj()
    return inflater.decompress(raw, MAX_TEXT_BYTES)


def _exif_fields(exif: Image.Exif) -> dict[str, str]:
    out = {}
    for tag, name in EXIF_IFD0.items():
        value = _as_text(exif.get(tag))
        if value:
            out[name] = value
    comment = decode_user_comment(exif.get_ifd(EXIF_SUB_IFD).get(USER_COMMENT))
    if comment:
        out["UserComment"] = comment
    return out


def decode_user_comment(value: object) -> str | None:
    """An EXIF UserComment as text: its 8-byte code prefix says how the rest is encoded.

    "UNICODE" is UTF-16 in the file's byte order by the standard, but writers disagree
    (piexif, which AUTOMATIC1111 uses, writes big-endian); a BOM or the zero bytes of ASCII
    text in UTF-16 settle it.
    """
    if isinstance(value, str):
        return value.strip("\0 ") or None
    if not isinstance(value, bytes) or len(value) < 8:
        return None
    code, body = value[:8], value[8 : 8 + MAX_TEXT_BYTES]
    encoding = _COMMENT_CODES.get(code)
    if encoding == "utf-16":
        if body.startswith((b"\xfe\xff", b"\xff\xfe")):
            text = body.decode("utf-16", errors="replace")
        else:
            even_zeros = body[0::2].count(0)
            odd_zeros = body[1::2].count(0)
            order = "utf-16-be" if even_zeros >= odd_zeros else "utf-16-le"
            text = body.decode(order, errors="replace")
    elif encoding:
        text = body.decode(encoding, errors="replace")
    else:  # undefined code (all zeros) or none at all: best effort
        text = (body if code == b"\0" * 8 else value).decode("utf-8", errors="replace")
    return text.strip("\0 ") or None


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value[:MAX_TEXT_BYTES].decode("utf-8", errors="replace")
    text = str(value).strip("\0 \n")
    return text or None
