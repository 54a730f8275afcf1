"""Image files: header probing, bounded decoding, display scaling and hashing.

Everything OpenCV reads (PNG, JPEG, TIFF incl. 16-bit, BMP, WebP, PNM) decodes to a NumPy
array in RGB(A) order with the EXIF/TIFF orientation applied. Sizes are read from the file
header in pure Python first, so an image whose header claims too many pixels is refused
before anything big is allocated (decompression-bomb guard).

Budgets:
- ``PIXEL_BUDGET`` (40000 x 40000 = 1.6 gigapixels): the largest image the project accepts
  at all; such images are viewed through a tile pyramid (``studio.core.tiles``).
- ``DECODE_BUDGET`` (500 megapixels, 1.5 GB as RGB uint8): the default limit of
  ``load_image``, which holds the whole image in memory. 20000 x 20000 fits.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np

from studio.core.errors import ImageDecodeError, ImageError, ImageTooLargeError

PIXEL_BUDGET = 40_000 * 40_000
DECODE_BUDGET = 500_000_000

# OpenCV reads its own pixel limit (default 2**30) once, when the library loads.
if "cv2" not in sys.modules:
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(PIXEL_BUDGET))
import cv2  # noqa: E402

SUPPORTED_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".tif", ".tiff", ".bmp", ".dib", ".webp",
     ".pbm", ".pgm", ".ppm", ".pnm"}
)
Mode = Literal["keep", "rgb", "gray"]
_REDUCE_FLAGS = {2: (cv2.IMREAD_REDUCED_GRAYSCALE_2, cv2.IMREAD_REDUCED_COLOR_2),
                 4: (cv2.IMREAD_REDUCED_GRAYSCALE_4, cv2.IMREAD_REDUCED_COLOR_4),
                 8: (cv2.IMREAD_REDUCED_GRAYSCALE_8, cv2.IMREAD_REDUCED_COLOR_8)}
_DST_MIN_PIXELS = 16_000_000  # decode straight into our own buffer above this (halves peak RAM)
# On Windows cv2.imread cannot open non-ASCII paths; there we read the bytes ourselves.
_IMREAD_ANY_PATH = os.name != "nt"


class ImageMissingError(ImageError):
    """The image file does not exist or cannot be opened."""


@dataclass(frozen=True)
class ImageInfo:
    """What an image file holds, as ``load_image(path)`` would return it."""

    width: int  # after EXIF orientation
    height: int
    channels: int  # 1, 3 or 4
    dtype: str  # "uint8" or "uint16"
    format: str  # "png", "jpeg", "tiff", "bmp", "webp", "pnm" or the suffix for others
    orientation: int = 1  # EXIF/TIFF orientation tag (1..8) found in the file


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """True if the name has an image suffix we decode (macOS '._' side files excluded)."""
    p = Path(path)
    return p.suffix.lower() in SUPPORTED_EXTENSIONS and not p.name.startswith("._")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of the file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with _open(Path(path)) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def _open(p: Path) -> BinaryIO:
    try:
        return open(p, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise ImageMissingError(f"Image file not found: '{p}'. Check that it was not moved "
                                "or deleted.", str(p)) from None
    except IsADirectoryError:
        raise ImageMissingError(f"'{p}' is a folder, not an image file.", str(p)) from None
    except OSError as e:
        raise ImageMissingError(f"Cannot open image '{p}': {e.strerror}. Check the file's "
                                "permissions.", str(p)) from None


def _bad(p: Path, reason: str) -> ImageDecodeError:
    return ImageDecodeError(f"Cannot read image '{p}': {reason}. Re-export or re-copy the "
                            "file, or remove it from the project.", str(p))


class _Short(Exception):
    """The header ended early (internal)."""


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise _Short
    return data


# --- header probing -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Header:
    width: int  # as stored, before orientation
    height: int
    channels: int
    dtype: str
    format: str
    orientation: int = 1


def _probe(p: Path) -> _Header | None:
    """Parse the header; None for formats we do not parse (decode needed)."""
    with _open(p) as f:
        head = f.read(32)
        if not head:
            raise _bad(p, "the file is empty (0 bytes)")
        try:
            if head.startswith(b"\x89PNG\r\n\x1a\n"):
                return _png_header(f)
            if head.startswith(b"\xff\xd8\xff"):
                return _jpeg_header(f)
            if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
                return _tiff_header(f)
            if head.startswith(b"BM"):
                return _bmp_header(f)
            if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
                return _webp_header(f, p)
            if head[:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
                return _pnm_header(f)
        except (_Short, struct.error):
            raise _bad(p, "the file ends inside its header (truncated)") from None
        except ValueError as e:
            raise _bad(p, str(e)) from None
    return None


def _png_header(f: BinaryIO) -> _Header:
    f.seek(8)
    length, ctype = struct.unpack(">I4s", _read(f, 8))
    if ctype != b"IHDR" or length != 13:
        raise ValueError("PNG without a valid IHDR chunk")
    w, h, depth, color = struct.unpack(">IIBB", _read(f, 10))
    f.seek(7, io.SEEK_CUR)  # rest of IHDR + CRC
    if w == 0 or h == 0 or depth not in (1, 2, 4, 8, 16) or color not in (0, 2, 3, 4, 6):
        raise ValueError("PNG header has invalid size, bit depth or colour type")
    trns, orientation = False, 1
    for _ in range(10_000):  # ancillary chunks before the image data
        length, ctype = struct.unpack(">I4s", _read(f, 8))
        if ctype in (b"IDAT", b"IEND"):
            break
        if ctype == b"eXIf" and length < 1 << 20:
            orientation = _exif_orientation(_read(f, length))
            f.seek(4, io.SEEK_CUR)
            continue
        trns |= ctype == b"tRNS"
        f.seek(length + 4, io.SEEK_CUR)
    channels = {0: 1, 2: 3, 3: 3, 4: 4, 6: 4}[color]
    if trns and color in (2, 3):
        channels = 4
    return _Header(w, h, channels, "uint16" if depth == 16 else "uint8", "png", orientation)


def _jpeg_header(f: BinaryIO) -> _Header:
    f.seek(2)
    orientation = 1
    for _ in range(100_000):
        if _read(f, 1) != b"\xff":
            raise ValueError("JPEG marker structure is broken")
        marker = _read(f, 1)[0]
        while marker == 0xFF:  # fill bytes
            marker = _read(f, 1)[0]
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            continue
        if marker in (0xD9, 0xDA):
            raise ValueError("JPEG without a frame header")
        (length,) = struct.unpack(">H", _read(f, 2))
        if length < 2:
            raise ValueError("JPEG segment with invalid length")
        if marker == 0xE1 and orientation == 1:
            data = _read(f, length - 2)
            if data.startswith(b"Exif\x00\x00"):
                orientation = _exif_orientation(data[6:])
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            precision, h, w, ncomp = struct.unpack(">BHHB", _read(f, 6))
            if w == 0 or h == 0 or ncomp not in (1, 3, 4):
                raise ValueError("JPEG frame header has invalid size or components")
            dtype = "uint8" if precision <= 8 else "uint16"
            return _Header(w, h, 1 if ncomp == 1 else 3, dtype, "jpeg", orientation)
        else:
            f.seek(length - 2, io.SEEK_CUR)
    raise ValueError("JPEG without a frame header")


_TIFF_TYPES = {1: (1, "B"), 3: (2, "H"), 4: (4, "I"), 16: (8, "Q")}


def _tiff_tags(f: BinaryIO, base: int = 0, where: dict[int, int] | None = None
               ) -> dict[int, int]:
    """First value of the baseline tags of IFD0 (classic TIFF and BigTIFF).

    ``where`` receives the file offset of each inline value (to patch it in a copy)."""
    f.seek(base)
    order = _read(f, 2)
    if order not in (b"II", b"MM"):
        raise ValueError("TIFF byte order mark is invalid")
    e = "<" if order == b"II" else ">"
    (magic,) = struct.unpack(e + "H", _read(f, 2))
    if magic == 42:
        (offset,) = struct.unpack(e + "I", _read(f, 4))
        count_fmt, entry_size, value_size = "H", 12, 4
    elif magic == 43:
        offset = struct.unpack(e + "HHQ", _read(f, 12))[2]
        count_fmt, entry_size, value_size = "Q", 20, 8
    else:
        raise ValueError("TIFF magic number is invalid")
    f.seek(base + offset)
    (n,) = struct.unpack(e + count_fmt, _read(f, struct.calcsize(count_fmt)))
    if n > 10_000:
        raise ValueError("TIFF directory is implausibly large")
    table = _read(f, n * entry_size)
    tags: dict[int, int] = {}
    for i in range(n):
        entry = table[i * entry_size:(i + 1) * entry_size]
        tag, typ = struct.unpack(e + "HH", entry[:4])
        if tag not in (256, 257, 258, 262, 274, 277, 339) or typ not in _TIFF_TYPES:
            continue
        size, fmt = _TIFF_TYPES[typ]
        (count,) = struct.unpack(e + ("I" if value_size == 4 else "Q"),
                                 entry[4:4 + value_size])
        field = entry[4 + value_size:]
        if where is not None:
            where[tag] = base + offset + struct.calcsize(count_fmt) + i * entry_size \
                + 4 + value_size
        if count * size > value_size:  # stored elsewhere; the first value is enough
            (ptr,) = struct.unpack(e + ("I" if value_size == 4 else "Q"), field)
            here = f.tell()
            f.seek(base + ptr)
            field = _read(f, size)
            f.seek(here)
        if count:
            tags[tag] = struct.unpack(e + fmt, field[:size])[0]
    return tags


def _exif_orientation(tiff_bytes: bytes) -> int:
    """Orientation (1..8) from an EXIF TIFF block; 1 if absent or unreadable."""
    try:
        value = _tiff_tags(io.BytesIO(tiff_bytes)).get(274, 1)
    except (_Short, struct.error, ValueError):
        return 1
    return value if 1 <= value <= 8 else 1


def _tiff_header(f: BinaryIO) -> _Header:
    tags = _tiff_tags(f)
    w, h = tags.get(256, 0), tags.get(257, 0)
    if w == 0 or h == 0:
        raise ValueError("TIFF without image width/height")
    spp, bits, photometric = tags.get(277, 1), tags.get(258, 1), tags.get(262, 1)
    channels = 3 if photometric in (2, 3, 5, 6) and spp < 4 else min(max(spp, 1), 4)
    if channels == 2:
        channels = 4
    orientation = tags.get(274, 1)
    return _Header(w, h, channels, "uint8" if bits <= 8 else "uint16", "tiff",
                   orientation if 1 <= orientation <= 8 else 1)


def _bmp_header(f: BinaryIO) -> _Header:
    f.seek(14)
    (hsize,) = struct.unpack("<I", _read(f, 4))
    if hsize == 12:
        w, h, _planes, bpp = struct.unpack("<HHHH", _read(f, 8))
        compression, ncolors, entry = 0, 0, 3
    elif hsize >= 40:
        w, h, _planes, bpp, compression = struct.unpack("<iiHHI", _read(f, 16))
        f.seek(14 + 32)
        (ncolors,) = struct.unpack("<I", _read(f, 4))
        entry = 4
    else:
        raise ValueError("BMP header has an unknown size")
    h = abs(h)
    if w <= 0 or h == 0 or bpp not in (1, 4, 8, 16, 24, 32):
        raise ValueError("BMP header has invalid size or bit depth")
    if bpp <= 8:
        f.seek(14 + hsize)
        n = ncolors or 1 << bpp
        palette = f.read(n * entry)
        grey = all(palette[i] == palette[i + 1] == palette[i + 2]
                   for i in range(0, len(palette) - 2, entry))
        channels = 1 if grey else 3
    else:
        channels = 4 if bpp == 32 and compression in (3, 6) else 3
    return _Header(w, h, channels, "uint8", "bmp")


def _webp_header(f: BinaryIO, p: Path) -> _Header:
    f.seek(4)
    (riff_size,) = struct.unpack("<I", _read(f, 4))
    if p.stat().st_size < riff_size + 8:
        raise ValueError("the WebP file is truncated")
    f.seek(12)
    ctype, _length = struct.unpack("<4sI", _read(f, 8))
    orientation = 1
    if ctype == b"VP8 ":
        data = _read(f, 10)
        if data[3:6] != b"\x9d\x01\x2a":
            raise ValueError("WebP VP8 frame has no start code")
        w, h = struct.unpack("<HH", data[6:10])
        return _Header(w & 0x3FFF, h & 0x3FFF, 3, "uint8", "webp")
    if ctype == b"VP8L":
        data = _read(f, 5)
        if data[0] != 0x2F:
            raise ValueError("WebP lossless stream has no signature")
        bits = int.from_bytes(data[1:5], "little")
        w, h, alpha = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, (bits >> 28) & 1
        return _Header(w, h, 4 if alpha else 3, "uint8", "webp")
    if ctype == b"VP8X":
        data = _read(f, 10)
        w = int.from_bytes(data[4:7], "little") + 1
        h = int.from_bytes(data[7:10], "little") + 1
        if data[0] & 0x08:  # EXIF chunk present: walk the chunk list
            pos = 12
            while pos + 8 <= riff_size + 8:
                f.seek(pos)
                name, length = struct.unpack("<4sI", _read(f, 8))
                if name == b"EXIF" and length < 1 << 20:
                    blob = _read(f, length)
                    orientation = _exif_orientation(blob[6:] if blob[:4] == b"Exif" else blob)
                    break
                pos += 8 + length + (length & 1)
        return _Header(w, h, 4 if data[0] & 0x10 else 3, "uint8", "webp", orientation)
    raise ValueError("WebP with an unknown first chunk")


def _pnm_header(f: BinaryIO) -> _Header:
    f.seek(0)
    text = f.read(4096)
    kind = text[1:2]
    tokens: list[bytes] = []
    for line in text[2:].split(b"\n"):
        tokens += line.split(b"#", 1)[0].split()
        if len(tokens) >= 3:
            break
    if len(tokens) < (2 if kind in b"14" else 3):
        raise ValueError("PNM header is incomplete")
    w, h = int(tokens[0]), int(tokens[1])
    maxval = 1 if kind in b"14" else int(tokens[2])
    channels = 3 if kind in b"36" else 1
    if w <= 0 or h <= 0:
        raise ValueError("PNM header has invalid size")
    return _Header(w, h, channels, "uint8" if maxval < 256 else "uint16", "pnm")


def _oriented(h: _Header) -> tuple[int, int]:
    return (h.height, h.width) if h.orientation >= 5 else (h.width, h.height)


def _too_large(p: Path, w: int, h: int, budget: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"Image '{p}' is {w} x {h} = {w * h / 1e6:.0f} megapixels, more than the limit of "
        f"{budget / 1e6:.0f} megapixels. Split or downscale it first.", str(p))


def image_info(path: str | os.PathLike[str]) -> ImageInfo:
    """Size, channels, dtype and format from the file header (decodes only unknown formats).

    Raises ImageTooLargeError above PIXEL_BUDGET, ImageDecodeError for empty, truncated or
    non-image files, ImageMissingError when the file does not exist.
    """
    p = Path(path)
    hdr = _probe(p)
    if hdr is None:
        img = _load_native(p, None, PIXEL_BUDGET, 1)
        return ImageInfo(img.shape[1], img.shape[0], 1 if img.ndim == 2 else img.shape[2],
                         "uint16" if img.dtype == np.uint16 else "uint8",
                         p.suffix.lower().lstrip(".") or "unknown")
    w, h = _oriented(hdr)
    if w * h > PIXEL_BUDGET:
        raise _too_large(p, w, h, PIXEL_BUDGET)
    return ImageInfo(w, h, hdr.channels, hdr.dtype, hdr.format, hdr.orientation)


# --- decoding -----------------------------------------------------------------------------
def _check_complete(p: Path, fmt: str) -> None:
    """Refuse JPEGs without their end marker and PNGs without IEND (cut-off files)."""
    if fmt not in ("jpeg", "png"):
        return
    with _open(p) as f:
        size = f.seek(0, io.SEEK_END)
        f.seek(max(0, size - 64))
        tail = f.read().rstrip(b"\x00\r\n ")
        if fmt == "png" and tail.endswith(b"IEND\xaeB`\x82"):
            return
        if fmt == "jpeg" and tail.endswith(b"\xff\xd9"):
            return
        f.seek(0)
        data = f.read()  # rare path: trailing data after the end marker, or truncation
    if fmt == "png" and data.rfind(b"IEND\xaeB`\x82") > 0:
        return
    if fmt == "jpeg" and _jpeg_has_end(data):
        return
    raise _bad(p, "the file is truncated (its end marker is missing)")


def _jpeg_has_end(data: bytes) -> bool:
    """Walk the JPEG segments and entropy-coded scans looking for the EOI marker."""
    pos, n = 2, len(data)
    while pos + 1 < n:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0xD9:
            return True
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if pos + 4 > n:
            return False
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xDA:  # skip the scan: next 0xFF not followed by 00, RSTn or FF
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    return False
                nxt = data[pos + 1]
                if nxt == 0 or 0xD0 <= nxt <= 0xD7:
                    pos += 2
                elif nxt == 0xFF:
                    pos += 1
                else:
                    break
    return False


def _imread(p: Path, flags: int, shape: tuple[int, ...] | None, dtype: str) -> np.ndarray:
    """cv2 decode; big images go straight into our own buffer (no second copy)."""
    try:
        if not (_IMREAD_ANY_PATH or str(p).isascii()):
            return cv2.imdecode(np.fromfile(p, np.uint8), flags)
        if shape is None or int(np.prod(shape[:2])) < _DST_MIN_PIXELS:
            return cv2.imread(str(p), flags)
        dst = np.empty(shape, dtype)
        sentinel = 0x5A if dtype == "uint8" else 0x5A5A
        dst[0] = sentinel
        dst[-1] = sentinel
        try:
            img = cv2.imread(str(p), dst, flags)
        except cv2.error:  # our shape guess was wrong: let cv2 allocate
            return cv2.imread(str(p), flags)
        # cv2 returns dst untouched when decoding fails; decoders fill the first or the
        # last row first, so if either still holds the sentinel, decode again to be sure.
        if img is dst and ((dst[0] == sentinel).all() or (dst[-1] == sentinel).all()):
            del img, dst
            return cv2.imread(str(p), flags)
        return img
    except cv2.error as e:
        raise _bad(p, f"OpenCV failed: {str(e).strip().splitlines()[-1]}") from None


def _tiff_unoriented(p: Path) -> np.ndarray | None:
    """OpenCV orients TIFFs inside its decoder (and fails on 5..8 for non-square images):
    decode a copy whose Orientation tag says 1; the caller then orients it."""
    data = bytearray(p.read_bytes())
    where: dict[int, int] = {}
    _tiff_tags(io.BytesIO(data), 0, where)
    data[where[274]:where[274] + 2] = b"\x01\x00" if data[:2] == b"II" else b"\x00\x01"
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as e:
        raise _bad(p, f"OpenCV failed: {str(e).strip().splitlines()[-1]}") from None


def _apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF orientation 2..8 (same convention as OpenCV's ApplyExifOrientation)."""
    if orientation == 2:
        return cv2.flip(img, 1)
    if orientation == 3:
        return cv2.rotate(img, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(img, 0)
    if orientation == 5:
        return cv2.transpose(img)
    if orientation == 6:
        return cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(cv2.transpose(img), cv2.ROTATE_180)
    if orientation == 8:
        return cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return img


def _normalize_dtype(img: np.ndarray) -> np.ndarray:
    """uint8/uint16 pass; other depths map to uint16 ([0,1] floats scaled, else min-max)."""
    if img.dtype in (np.uint8, np.uint16):
        return img
    data = np.nan_to_num(img.astype(np.float64, copy=False))
    lo, hi = float(data.min()), float(data.max())
    if np.issubdtype(img.dtype, np.integer) and lo >= 0 and hi <= 65535:
        return img.astype(np.uint16)
    if np.issubdtype(img.dtype, np.floating) and lo >= 0 and hi <= 1:
        return np.round(data * 65535).astype(np.uint16)
    scale = 65535 / (hi - lo) if hi > lo else 0.0
    return np.round((data - lo) * scale).astype(np.uint16)


def _load_native(p: Path, hdr: _Header | None, budget: int, reduce: int) -> np.ndarray:
    """Decode in OpenCV channel order (grey, BGR, BGRA), orientation applied."""
    if reduce not in (1, 2, 4, 8):
        raise ValueError("reduce must be 1, 2, 4 or 8")
    if hdr is not None:
        w, h = _oriented(hdr)
        fast = reduce if hdr.format == "jpeg" and hdr.dtype == "uint8" else 1
        if -(-w // fast) * -(-h // fast) > budget:
            raise _too_large(p, w, h, budget)
        _check_complete(p, hdr.format)
        if fast > 1:
            flags = _REDUCE_FLAGS[fast][hdr.channels > 1] | cv2.IMREAD_IGNORE_ORIENTATION
            shape = None
        else:
            flags = cv2.IMREAD_UNCHANGED
            shape = (hdr.height, hdr.width) + ((hdr.channels,) if hdr.channels > 1 else ())
        if hdr.format == "tiff" and hdr.orientation != 1:
            img = _tiff_unoriented(p)
        else:
            img = _imread(p, flags, shape, hdr.dtype)
    else:
        fast = 1
        img = _imread(p, cv2.IMREAD_UNCHANGED, None, "uint8")
    if img is None or img.size == 0:
        raise _bad(p, "the data is corrupt or not an image OpenCV can decode")
    if hdr is None and img.shape[0] * img.shape[1] > budget:
        raise _too_large(p, img.shape[1], img.shape[0], budget)
    if hdr is not None and hdr.orientation != 1:
        img = _apply_orientation(img, hdr.orientation)
    img = _normalize_dtype(img)
    if reduce > fast:
        size = (-(-img.shape[1] // reduce), -(-img.shape[0] // reduce))
        img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    return img


def load_image_bgr(path: str | os.PathLike[str], *, max_pixels: int | None = None,
                   reduce: int = 1) -> np.ndarray:
    """Like ``load_image(mode="keep")`` but in OpenCV channel order (grey, BGR or BGRA)."""
    p = Path(path)
    return _load_native(p, _probe(p), DECODE_BUDGET if max_pixels is None else max_pixels,
                        reduce)


def load_image(path: str | os.PathLike[str], *, max_pixels: int | None = None,
               mode: Mode = "keep", reduce: int = 1) -> np.ndarray:
    """Decode an image file with its orientation applied.

    Returns HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA), dtype uint8 or uint16 (16-bit files
    keep their depth; scale for display with ``to_uint8``). ``mode="rgb"`` gives HxWx3
    (grey replicated, alpha dropped), ``mode="gray"`` gives HxW. ``reduce`` (2, 4, 8)
    shrinks by that factor, using JPEG's fast reduced decode where possible.
    ``max_pixels`` defaults to DECODE_BUDGET.
    """
    if mode not in ("keep", "rgb", "gray"):
        raise ValueError(f"mode must be 'keep', 'rgb' or 'gray', not {mode!r}")
    img = load_image_bgr(path, max_pixels=max_pixels, reduce=reduce)
    channels = 1 if img.ndim == 2 else img.shape[2]
    if mode == "gray":
        return img if channels == 1 else cv2.cvtColor(
            img, cv2.COLOR_BGR2GRAY if channels == 3 else cv2.COLOR_BGRA2GRAY)
    if channels == 1:
        return img if mode == "keep" else cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if channels == 4 and mode == "rgb":
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    code = cv2.COLOR_BGR2RGB if channels == 3 else cv2.COLOR_BGRA2RGBA
    return cv2.cvtColor(img, code, dst=img)  # in place: no second full-size buffer


# --- display scaling ----------------------------------------------------------------------
def display_range(img: np.ndarray, low_pct: float = 0.1,
                  high_pct: float = 99.9) -> tuple[float, float]:
    """Intensity window (percentiles of the colour channels, on a subsample for speed)."""
    colour = img[..., :3] if img.ndim == 3 and img.shape[2] == 4 else img
    step = max(1, int((colour.shape[0] * colour.shape[1] / 1_000_000) ** 0.5))
    sample = colour[::step, ::step].astype(np.float64).ravel()
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(sample, [low_pct, high_pct])
    if hi <= lo:
        lo, hi = float(sample.min()), float(sample.max())
    return float(lo), float(hi) if hi > lo else float(lo) + 1.0


def to_uint8(img: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Scale to uint8 for display: [lo, hi] -> [0, 255], clipped.

    uint8 input without a window is returned unchanged. Without lo/hi the window comes from
    ``display_range`` (0.1 / 99.9 percentiles). An alpha channel keeps its full range.
    """
    if img.dtype == np.uint8 and lo is None and hi is None:
        return img
    if lo is None or hi is None:
        auto_lo, auto_hi = display_range(img)
        lo = auto_lo if lo is None else lo
        hi = auto_hi if hi is None else hi
    span = max(float(hi) - float(lo), 1e-12)
    has_alpha = img.ndim == 3 and img.shape[2] == 4
    colour = img[..., :3] if has_alpha else img
    if img.dtype in (np.uint8, np.uint16):
        levels = np.arange(256 if img.dtype == np.uint8 else 65536, dtype=np.float64)
        lut = np.clip(np.round((levels - lo) * (255.0 / span)), 0, 255).astype(np.uint8)
        out_colour = lut[colour]
    else:
        out_colour = np.empty(colour.shape, np.uint8)
        for r in range(0, colour.shape[0], 1024):  # row bands keep float temporaries small
            band = np.nan_to_num(colour[r:r + 1024].astype(np.float32))
            out_colour[r:r + 1024] = np.clip(np.round((band - lo) * (255.0 / span)), 0, 255)
    if not has_alpha:
        return out_colour
    alpha = img[..., 3]
    if img.dtype == np.uint16:
        alpha = (alpha >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        alpha = np.clip(np.nan_to_num(alpha.astype(np.float32)) * 255, 0, 255).astype(np.uint8)
    return np.dstack([out_colour, alpha])
