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
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from studio.core.errors import ImageMissingError, ImageTooLargeError  # noqa: F401 (re-exported)
from studio.core.imageheaders import (
    Header,
    bad_image_error,
    open_image_file,
    oriented_size,
    probe_header,
    tiff_tags,
)

PIXEL_BUDGET = 40_000 * 40_000
DECODE_BUDGET = 500_000_000

# OpenCV reads its own pixel limit (default 2**30) once, when the library loads.
if "cv2" not in sys.modules:
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(PIXEL_BUDGET))
import cv2  # noqa: E402

SUPPORTED_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".tif", ".tiff", ".bmp", ".dib", ".webp",
     ".pbm", ".pgm", ".ppm", ".pnm", ".gif"}  # GIF: the first frame, decoded to size it
)
Mode = Literal["keep", "rgb", "gray"]
_REDUCE_FLAGS = {2: (cv2.IMREAD_REDUCED_GRAYSCALE_2, cv2.IMREAD_REDUCED_COLOR_2),
                 4: (cv2.IMREAD_REDUCED_GRAYSCALE_4, cv2.IMREAD_REDUCED_COLOR_4),
                 8: (cv2.IMREAD_REDUCED_GRAYSCALE_8, cv2.IMREAD_REDUCED_COLOR_8)}
_DST_MIN_PIXELS = 16_000_000  # decode straight into our own buffer above this (halves peak RAM)
# On Windows cv2.imread cannot open non-ASCII paths; there we read the bytes ourselves.
_IMREAD_ANY_PATH = os.name != "nt"


def utf8_name(path: str | os.PathLike[str]) -> bool:
    """True when the path is valid UTF-8 text (no byte Python had to hold as a surrogate)."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def opencv_can_open(path: str | os.PathLike[str]) -> bool:
    """True when OpenCV may be given this path as text. A name that is not valid UTF-8 on
    disk (Python holds its bytes as lone surrogates) must never reach cv2.imread: OpenCV
    crashes the process on it. Such files are read as bytes and decoded from memory."""
    text = os.fspath(path)
    return (_IMREAD_ANY_PATH or text.isascii()) and utf8_name(text)


def decode_file(path: str | os.PathLike[str], flags: int) -> np.ndarray | None:
    """cv2.imread for any path: the bytes are read by Python and decoded from memory when
    OpenCV cannot be given the name (see `opencv_can_open`); None when it is no image."""
    if opencv_can_open(path):
        return cv2.imread(os.fspath(path), flags)
    try:
        data = np.fromfile(os.fspath(path), np.uint8)
    except OSError:
        return None
    return cv2.imdecode(data, flags) if data.size else None


def printable_name(path: str | os.PathLike[str]) -> str:
    """A file name as text that can be printed and stored: bytes that are not UTF-8 (held
    by Python as surrogates) are shown as \\xNN escapes."""
    return os.fspath(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


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
    with open_image_file(Path(path)) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


def page_count(path: str | os.PathLike[str]) -> int:
    """How many pages (TIFF) or frames (GIF) the file holds; 1 for other formats. Only the
    first is ever read, so an import says so when there are more."""
    p = Path(path)
    if p.suffix.lower() not in (".tif", ".tiff", ".gif"):
        return 1
    from PIL import Image, UnidentifiedImageError

    try:
        with open_image_file(p) as fh, Image.open(fh) as im:
            return int(getattr(im, "n_frames", 1))
    except (OSError, ImageMissingError, UnidentifiedImageError, ValueError,
            Image.DecompressionBombError):
        return 1  # decoding reports what is wrong with the file


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
    hdr = probe_header(p)
    if hdr is None:
        img = _load_native(p, None, PIXEL_BUDGET, 1)
        return ImageInfo(img.shape[1], img.shape[0], 1 if img.ndim == 2 else img.shape[2],
                         "uint16" if img.dtype == np.uint16 else "uint8",
                         p.suffix.lower().lstrip(".") or "unknown")
    w, h = oriented_size(hdr)
    if w * h > PIXEL_BUDGET:
        raise _too_large(p, w, h, PIXEL_BUDGET)
    return ImageInfo(w, h, hdr.channels, hdr.dtype, hdr.format, hdr.orientation)


# --- decoding -----------------------------------------------------------------------------
def _check_complete(p: Path, fmt: str) -> None:
    """Refuse JPEGs without their end marker and PNGs without IEND (cut-off files)."""
    if fmt not in ("jpeg", "png"):
        return
    with open_image_file(p) as f:
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
    raise bad_image_error(p, "the file is truncated (its end marker is missing)")


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
        if not opencv_can_open(p):
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
        raise bad_image_error(p, f"OpenCV failed: {str(e).strip().splitlines()[-1]}") from None


def _tiff_unoriented(p: Path) -> np.ndarray | None:
    """OpenCV orients TIFFs inside its decoder (and fails on 5..8 for non-square images):
    decode a copy whose Orientation tag says 1; the caller then orients it."""
    data = bytearray(p.read_bytes())
    where: dict[int, int] = {}
    tiff_tags(io.BytesIO(data), 0, where)
    data[where[274]:where[274] + 2] = b"\x01\x00" if data[:2] == b"II" else b"\x00\x01"
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as e:
        raise bad_image_error(p, f"OpenCV failed: {str(e).strip().splitlines()[-1]}") from None


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


def _load_native(p: Path, hdr: Header | None, budget: int, reduce: int) -> np.ndarray:
    """Decode in OpenCV channel order (grey, BGR, BGRA), orientation applied."""
    if reduce not in (1, 2, 4, 8):
        raise ValueError("reduce must be 1, 2, 4 or 8")
    if hdr is not None:
        w, h = oriented_size(hdr)
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
        raise bad_image_error(p, "the data is corrupt or not an image OpenCV can decode")
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
    return _load_native(p, probe_header(p), DECODE_BUDGET if max_pixels is None else max_pixels,
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
