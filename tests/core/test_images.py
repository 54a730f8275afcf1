"""Decoding, header probing and display scaling of image files (studio.core.images)."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from studio.core import images
from studio.core.errors import ImageDecodeError, ImageError, ImageTooLargeError
from studio.core.images import (
    DECODE_BUDGET,
    PIXEL_BUDGET,
    SUPPORTED_EXTENSIONS,
    ImageInfo,
    file_sha256,
    image_info,
    is_image_file,
    load_image,
    to_uint8,
)

RNG = np.random.default_rng(7)


# --- crafting helpers -----------------------------------------------------------------------
def png_chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def png_bytes(width: int, height: int, depth: int, color: int, raw: bytes,
              extra: bytes = b"") -> bytes:
    """A PNG whose rows (filter byte included) are `raw`, zlib-compressed in one IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra
            + png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


def exif_tiff_block(orientation: int) -> bytes:
    """Big-endian EXIF TIFF block holding only the Orientation tag."""
    entry = struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)
    return b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1) + entry + b"\x00" * 4


def jpeg_with_orientation(img_bgr: np.ndarray, orientation: int) -> bytes:
    data = cv2.imencode(".jpg", img_bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    payload = b"Exif\x00\x00" + exif_tiff_block(orientation)
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + app1 + data[2:]


def png_with_orientation(img_bgr: np.ndarray, orientation: int) -> bytes:
    data = cv2.imencode(".png", img_bgr)[1].tobytes()
    return data[:33] + png_chunk(b"eXIf", exif_tiff_block(orientation)) + data[33:]


def tiff_bytes(img: np.ndarray, orientation: int = 1) -> bytes:
    """Minimal little-endian uncompressed TIFF (one strip) with an Orientation tag."""
    h, w = img.shape[:2]
    spp = 1 if img.ndim == 2 else img.shape[2]
    bits = img.dtype.itemsize * 8
    pixels = np.ascontiguousarray(img).astype(img.dtype.newbyteorder("<")).tobytes()
    tags = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, bits), (259, 3, 1, 1),
            (262, 3, 1, 2 if spp >= 3 else 1), (273, 4, 1, 0), (274, 3, 1, orientation),
            (277, 3, 1, spp), (278, 4, 1, h), (279, 4, 1, len(pixels))]
    ifd_size = 2 + 12 * len(tags) + 4
    data_offset = 8 + ifd_size
    out = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(tags))
    for tag, typ, count, value in tags:
        value = data_offset if tag == 273 else value
        field = struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, typ, count) + field
    return out + b"\x00" * 4 + pixels


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def asym(h: int = 24, w: int = 40, channels: int = 3) -> np.ndarray:
    """Blocky asymmetric image (survives JPEG well, shows flips/rotations)."""
    img = np.zeros((h, w, channels), np.uint8)
    img[: h // 3, : w // 4] = 255
    img[h // 2:, w // 2:, 0] = 200
    img[h // 3: h // 2, :, -1] = 120
    return img


# --- round trips per format ---------------------------------------------------------------
def _cases() -> list[tuple[str, np.ndarray, list[int]]]:
    rgb = RNG.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    grey = rgb[..., 0].copy()
    rgba = np.dstack([rgb, RNG.integers(1, 256, (17, 23), dtype=np.uint8)])  # webp drops RGB at alpha 0
    g16 = RNG.integers(0, 65536, (17, 23), dtype=np.uint16)
    rgb16 = RNG.integers(0, 65536, (17, 23, 3), dtype=np.uint16)
    return [
        ("grey.png", grey, []), ("rgb.png", rgb, []), ("rgba.png", rgba, []),
        ("g16.png", g16, []), ("rgb16.png", rgb16, []), ("rgba16.png", np.dstack([rgb16, g16]), []),
        ("grey.tif", grey, []), ("rgb.tiff", rgb, []), ("rgba.tif", rgba, []),
        ("g16.tif", g16, []), ("rgb16.tif", rgb16, []),
        ("grey.bmp", grey, []), ("rgb.bmp", rgb, []), ("rgba.bmp", rgba, []),
        ("rgb.webp", rgb, [cv2.IMWRITE_WEBP_QUALITY, 101]),
        ("rgba.webp", rgba, [cv2.IMWRITE_WEBP_QUALITY, 101]),
        ("grey.pgm", grey, []), ("rgb.ppm", rgb, []), ("g16.pgm", g16, []),
    ]


@pytest.mark.parametrize("name,pixels,params", _cases(), ids=[c[0] for c in _cases()])
def test_lossless_round_trip(tmp_path: Path, name: str, pixels: np.ndarray, params: list[int]):
    """What cv2 writes (BGR) comes back exactly, in RGB order, with a matching header."""
    path = tmp_path / name
    assert cv2.imwrite(str(path), pixels, params)
    img = load_image(path)
    expected = pixels
    if pixels.ndim == 3:
        expected = pixels[..., [2, 1, 0, 3][: pixels.shape[2]]]
    assert img.dtype == pixels.dtype and img.shape == pixels.shape
    np.testing.assert_array_equal(img, expected)
    info = image_info(path)
    channels = 1 if img.ndim == 2 else img.shape[2]
    assert (info.width, info.height, info.channels, info.dtype) == (
        img.shape[1], img.shape[0], channels, str(img.dtype))


def test_lossy_formats_header_and_values(tmp_path: Path):
    src = asym(48, 64)
    for name, params in [("a.jpg", []), ("b.webp", [cv2.IMWRITE_WEBP_QUALITY, 90])]:
        path = tmp_path / name
        cv2.imwrite(str(path), src, params)
        img = load_image(path)
        assert img.shape == (48, 64, 3) and img.dtype == np.uint8
        assert np.abs(img.astype(int) - src[..., ::-1]).mean() < 6
        info = image_info(path)
        assert (info.width, info.height, info.channels) == (64, 48, 3)
    grey_path = tmp_path / "g.jpg"
    cv2.imwrite(str(grey_path), src[..., 0])
    assert load_image(grey_path).shape == (48, 64)
    assert image_info(grey_path) == ImageInfo(64, 48, 1, "uint8", "jpeg")
    assert image_info(tmp_path / "b.webp").format == "webp"


@pytest.mark.parametrize("color,depth,extra,channels", [
    (3, 8, png_chunk(b"PLTE", b"\xff\x00\x00\x00\xff\x00"), 3),
    (3, 8, png_chunk(b"PLTE", b"\xff\x00\x00\x00\xff\x00") + png_chunk(b"tRNS", b"\x80"), 4),
    (4, 8, b"", 4), (4, 16, b"", 4), (0, 1, b"", 1), (2, 8, png_chunk(b"tRNS", bytes(6)), 4),
])
def test_png_variants_header_matches_decode(tmp_path: Path, color, depth, extra, channels):
    w, h = 8, 3
    samples = {0: 1, 2: 3, 3: 1, 4: 2}[color]
    row = bytes((w * samples * depth + 7) // 8)
    path = write(tmp_path / "v.png", png_bytes(w, h, depth, color, (b"\x00" + row) * h, extra))
    img = load_image(path)
    info = image_info(path)
    assert info.channels == channels == (1 if img.ndim == 2 else img.shape[2])
    assert info.dtype == str(img.dtype) and (info.height, info.width) == img.shape[:2]


def test_palette_png_decodes_to_rgb_order(tmp_path: Path):
    plte = png_chunk(b"PLTE", b"\xff\x00\x00\x00\xff\x00")  # index 0 red, 1 green
    path = write(tmp_path / "p.png", png_bytes(2, 1, 8, 3, b"\x00\x00\x01", plte))
    np.testing.assert_array_equal(load_image(path)[0], [[255, 0, 0], [0, 255, 0]])


def test_one_pixel_image(tmp_path: Path):
    path = tmp_path / "one.png"
    cv2.imwrite(str(path), np.array([[[1, 2, 3]]], np.uint8))
    assert load_image(path).tolist() == [[[3, 2, 1]]]
    assert image_info(path) == ImageInfo(1, 1, 3, "uint8", "png")


def test_float_tiff_becomes_uint16(tmp_path: Path):
    path = tmp_path / "f.tif"
    data = np.linspace(0, 1, 40, dtype=np.float32).reshape(5, 8)
    cv2.imwrite(str(path), data)
    img = load_image(path)
    assert img.dtype == np.uint16 and img[0, 0] == 0 and img[-1, -1] == 65535
    assert image_info(path).dtype == "uint16"


# --- broken and hostile files -------------------------------------------------------------
def _assert_names_file(err: pytest.ExceptionInfo, path: Path) -> None:
    assert path.name in str(err.value)
    assert err.value.path == str(path)


@pytest.mark.parametrize("func", [image_info, load_image])
def test_zero_byte_and_text_files(tmp_path: Path, func):
    empty = write(tmp_path / "empty.png", b"")
    with pytest.raises(ImageDecodeError, match="empty") as err:
        func(empty)
    _assert_names_file(err, empty)
    text = write(tmp_path / "notes.png", b"just some text, certainly not a PNG\n" * 5)
    with pytest.raises(ImageDecodeError) as err:
        func(text)
    _assert_names_file(err, text)


@pytest.mark.parametrize("func", [image_info, load_image])
def test_truncated_headers(tmp_path: Path, func):
    good = cv2.imencode(".png", asym())[1].tobytes()
    for name, data in [("short.png", good[:20]), ("short.jpg", b"\xff\xd8\xff\xe0\x00\x10JF"),
                       ("short.bmp", b"BM" + bytes(10)), ("short.tif", b"II*\x00\x08\x00")]:
        path = write(tmp_path / name, data)
        with pytest.raises(ImageDecodeError) as err:
            func(path)
        _assert_names_file(err, path)


def test_truncated_jpeg_and_png_are_refused(tmp_path: Path):
    src = RNG.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    for ext in (".jpg", ".png", ".webp", ".tif", ".bmp"):
        data = cv2.imencode(ext, src)[1].tobytes()
        path = write(tmp_path / f"half{ext}", data[: len(data) // 2])
        with pytest.raises(ImageDecodeError) as err:
            load_image(path)
        _assert_names_file(err, path)


@pytest.mark.parametrize("params", [[], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1],
                                    [cv2.IMWRITE_JPEG_RST_INTERVAL, 2]])
def test_jpeg_with_trailing_data_still_loads(tmp_path: Path, params: list[int]):
    """Data after the end marker (camera trailers) is fine; a cut inside the scans is not."""
    src = RNG.integers(0, 256, (64, 96, 3), dtype=np.uint8)
    data = cv2.imencode(".jpg", src, params)[1].tobytes()
    path = write(tmp_path / "trailer.jpg", data + b"\x00" * 10 + b"appended payload" * 300)
    assert load_image(path).shape == (64, 96, 3)
    cut = write(tmp_path / "cut.jpg", data[:-40] + b"appended payload" * 300)
    with pytest.raises(ImageDecodeError, match="truncated"):
        load_image(cut)


def test_corrupt_png_data_with_intact_end_marker(tmp_path: Path, monkeypatch):
    data = bytearray(cv2.imencode(".png", RNG.integers(0, 256, (64, 64), np.uint8))[1])
    data[60:200] = bytes(140)  # smash the IDAT stream, keep IEND
    path = write(tmp_path / "smashed.png", bytes(data))
    with pytest.raises(ImageDecodeError):
        load_image(path)
    monkeypatch.setattr(images, "_DST_MIN_PIXELS", 1)  # the decode-into-buffer path too
    with pytest.raises(ImageDecodeError):
        load_image(path)


def test_billion_pixel_header_is_refused_before_decoding(tmp_path: Path, monkeypatch):
    path = write(tmp_path / "bomb.png", png_bytes(100_000, 100_000, 8, 2, b"\x00" * 100))

    def no_decode(*args, **kwargs):
        raise AssertionError("decoder must not run")

    monkeypatch.setattr(images.cv2, "imread", no_decode)
    monkeypatch.setattr(images.cv2, "imdecode", no_decode)
    for func in (image_info, load_image):
        with pytest.raises(ImageTooLargeError, match="megapixels") as err:
            func(path)
        _assert_names_file(err, path)
    assert 20_000 * 20_000 <= DECODE_BUDGET < PIXEL_BUDGET


def test_max_pixels_argument(tmp_path: Path):
    path = tmp_path / "small.png"
    cv2.imwrite(str(path), asym(10, 10))
    with pytest.raises(ImageTooLargeError):
        load_image(path, max_pixels=99)
    assert load_image(path, max_pixels=100).shape == (10, 10, 3)


def test_missing_file(tmp_path: Path):
    path = tmp_path / "gone.jpg"
    for func in (image_info, load_image, file_sha256):
        with pytest.raises(ImageError, match="gone.jpg") as err:
            func(path)
        assert isinstance(err.value, images.ImageMissingError)


# --- orientation ----------------------------------------------------------------------------
@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_orientation_matches_opencv(tmp_path: Path, orientation: int):
    path = write(tmp_path / f"o{orientation}.jpg", jpeg_with_orientation(asym(), orientation))
    reference = cv2.imread(str(path), cv2.IMREAD_COLOR)  # OpenCV applies EXIF here
    img = load_image(path)
    np.testing.assert_array_equal(img, reference[..., ::-1])
    info = image_info(path)
    assert (info.height, info.width) == img.shape[:2] and info.orientation == orientation
    assert img.shape[:2] == ((40, 24) if orientation >= 5 else (24, 40))


def test_orientation_six_is_clockwise_rotation(tmp_path: Path):
    src = asym()
    path = write(tmp_path / "six.png", png_with_orientation(src, 6))
    np.testing.assert_array_equal(load_image(path), np.rot90(src[..., ::-1], k=-1))
    np.testing.assert_array_equal(load_image(path), cv2.imread(str(path))[..., ::-1])


ORIENT = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1],
          4: lambda a: a[::-1], 5: lambda a: a.swapaxes(0, 1),
          6: lambda a: np.rot90(a, -1), 7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
          8: lambda a: np.rot90(a, 1)}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_orientation_tag(tmp_path: Path, orientation: int):
    """Same convention as EXIF; OpenCV alone cannot read 5..8 on non-square TIFFs."""
    src = RNG.integers(0, 65536, (6, 10), dtype=np.uint16)
    path = write(tmp_path / "o.tif", tiff_bytes(src, orientation))
    np.testing.assert_array_equal(load_image(path), ORIENT[orientation](src))
    rgb = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = write(tmp_path / "c.tif", tiff_bytes(rgb, orientation))
    np.testing.assert_array_equal(load_image(path), ORIENT[orientation](rgb))
    assert image_info(path).orientation == orientation


def test_webp_exif_orientation(tmp_path: Path):
    src = asym()
    vp8l = cv2.imencode(".webp", src, [cv2.IMWRITE_WEBP_QUALITY, 101])[1].tobytes()[12:]
    h, w = src.shape[:2]
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x08, 0, 0, 0]) + \
        (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    exif = exif_tiff_block(6)
    body = b"WEBP" + vp8x + vp8l + b"EXIF" + struct.pack("<I", len(exif)) + exif
    path = write(tmp_path / "o6.webp", b"RIFF" + struct.pack("<I", len(body)) + body)
    np.testing.assert_array_equal(load_image(path), np.rot90(src[..., ::-1], -1))
    assert image_info(path) == ImageInfo(24, 40, 3, "uint8", "webp", 6)


def test_orientation_applied_to_16_bit(tmp_path: Path):
    src = RNG.integers(0, 65536, (6, 10), dtype=np.uint16)
    path = write(tmp_path / "o8.tif", tiff_bytes(src, orientation=8))
    img = load_image(path)
    assert img.dtype == np.uint16
    np.testing.assert_array_equal(img, np.rot90(src, k=1))
    assert (image_info(path).width, image_info(path).height) == (6, 10)
    rgb16 = RNG.integers(0, 65536, (6, 10, 3), dtype=np.uint16)
    png16 = png_with_orientation(rgb16, 3)
    img = load_image(write(tmp_path / "o3.png", png16))
    np.testing.assert_array_equal(img, rgb16[::-1, ::-1, ::-1])


# --- paths, modes, reduce ------------------------------------------------------------------
@pytest.mark.parametrize("any_path", [True, False])
def test_non_ascii_path(tmp_path: Path, monkeypatch, any_path: bool):
    monkeypatch.setattr(images, "_IMREAD_ANY_PATH", any_path)
    folder = tmp_path / "dossier été"
    folder.mkdir()
    path = folder / "ünï 图像.png"
    cv2.imwrite(str(tmp_path / "plain.png"), asym())
    path.write_bytes((tmp_path / "plain.png").read_bytes())
    np.testing.assert_array_equal(load_image(path), asym()[..., ::-1])
    assert image_info(path).width == 40
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_modes(tmp_path: Path):
    rgba = asym(channels=4)
    rgba[..., 3] = 77
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    cv2.imwrite(str(tmp_path / "g.png"), rgba[..., 0])
    rgb16 = (asym().astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "c16.png"), rgb16)
    assert load_image(tmp_path / "a.png").shape == (24, 40, 4)
    np.testing.assert_array_equal(load_image(tmp_path / "a.png", mode="rgb"), rgba[..., 2::-1])
    grey = load_image(tmp_path / "g.png", mode="rgb")
    assert grey.shape == (24, 40, 3) and (grey[..., 0] == grey[..., 2]).all()
    g = load_image(tmp_path / "a.png", mode="gray")
    np.testing.assert_array_equal(g, cv2.cvtColor(rgba, cv2.COLOR_BGRA2GRAY))
    assert load_image(tmp_path / "c16.png", mode="rgb").dtype == np.uint16
    assert load_image(tmp_path / "c16.png", mode="gray").shape == (24, 40)
    with pytest.raises(ValueError):
        load_image(tmp_path / "a.png", mode="hsv")


def test_reduce(tmp_path: Path):
    src = RNG.integers(0, 256, (101, 203, 3), dtype=np.uint8)
    for ext in (".jpg", ".png"):
        cv2.imwrite(str(tmp_path / f"r{ext}"), src)
        for factor in (2, 4, 8):
            img = load_image(tmp_path / f"r{ext}", reduce=factor)
            assert img.shape == (-(-101 // factor), -(-203 // factor), 3)
    with pytest.raises(ValueError):
        load_image(tmp_path / "r.png", reduce=3)


def test_reduce_keeps_orientation(tmp_path: Path):
    src = cv2.resize(asym(), (160, 96), interpolation=cv2.INTER_NEAREST)
    path = write(tmp_path / "o6.jpg", jpeg_with_orientation(src, 6))
    small = load_image(path, reduce=2)
    assert small.shape == (80, 48, 3)
    full = load_image(path)
    expected = cv2.resize(full, (48, 80), interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(int) - expected).mean() < 8


def test_decode_into_buffer_path(tmp_path: Path, monkeypatch):
    """Big images decode into a preallocated array; same pixels as the plain path."""
    cases = {".png": asym(), ".bmp": asym(), ".jpg": asym(), ".tif": asym()[..., 0]}
    for ext, src in cases.items():
        cv2.imwrite(str(tmp_path / f"d{ext}"), src)
    plain = {ext: load_image(tmp_path / f"d{ext}") for ext in cases}
    monkeypatch.setattr(images, "_DST_MIN_PIXELS", 1)
    for ext in cases:
        np.testing.assert_array_equal(load_image(tmp_path / f"d{ext}"), plain[ext])


# --- display scaling, hashing, names ---------------------------------------------------------
def test_to_uint8():
    ramp = np.arange(0, 65536, 16, dtype=np.uint16).reshape(64, 64)
    out = to_uint8(ramp, 0, 65535)
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    assert np.all(np.diff(out.ravel().astype(int)) >= 0)
    auto = to_uint8(np.full((4, 4), 1000, np.uint16) + np.eye(4, dtype=np.uint16) * 100)
    assert auto.min() == 0 and auto.max() == 255
    u8 = np.zeros((3, 3), np.uint8)
    assert to_uint8(u8) is u8
    np.testing.assert_array_equal(to_uint8(np.array([[10, 20, 30]], np.uint8), 10, 30),
                                  [[0, 128, 255]])
    rgba16 = np.zeros((2, 2, 4), np.uint16)
    rgba16[..., 3] = 65535
    rgba16[0, 0, :3] = 4000
    out = to_uint8(rgba16)
    assert out.shape == (2, 2, 4) and (out[..., 3] == 255).all() and out[0, 0, 0] == 255
    floats = to_uint8(np.array([[0.0, 0.5, 1.0, np.nan]], np.float32), 0.0, 1.0)
    assert floats.tolist() == [[0, 128, 255, 0]]


def test_file_sha256_streams(tmp_path: Path):
    data = RNG.integers(0, 256, 3 * (1 << 20) + 123, dtype=np.uint8).tobytes()
    path = write(tmp_path / "blob.bin", data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_is_image_file():
    assert {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"} <= SUPPORTED_EXTENSIONS
    assert is_image_file("a/B.JPG") and is_image_file(Path("x.tiff"))
    assert not is_image_file("notes.txt") and not is_image_file("._a.jpg")
    assert not is_image_file("folder.png/labels.json")


# --- real files -----------------------------------------------------------------------------
def test_real_dataset_files(shared_datasets: Path):
    membrane = shared_datasets / "isbi2012_membrane" / "train" / "image" / "0.png"
    img = load_image(membrane)
    assert img.shape == (512, 512) and img.dtype == np.uint8 and img.std() > 10
    assert image_info(membrane) == ImageInfo(512, 512, 1, "uint8", "png")
    blood = sorted((shared_datasets / "bccd_voc" / "BCCD" / "JPEGImages").glob("*.jpg"))[0]
    img = load_image(blood)
    assert img.shape == (480, 640, 3)
    assert img[..., 0].mean() > img[..., 1].mean()  # reddish stained blood, in RGB order
    assert image_info(blood) == ImageInfo(640, 480, 3, "uint8", "jpeg")
    tif = shared_datasets / "stardist_example" / "img2d.tif"
    img = load_image(tif)
    assert img.shape == (512, 512) and img.dtype == np.uint16 and img.max() > img.min()
    assert image_info(tif) == ImageInfo(512, 512, 1, "uint16", "tiff")
    shown = to_uint8(img)
    assert shown.min() == 0 and shown.max() == 255
