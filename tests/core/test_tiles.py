"""Tile pyramid and thumbnail cache (studio.core.tiles)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from studio.core import tiles
from studio.core.images import ImageMissingError
from studio.core.tiles import TilePyramid, thumbnail

W, H, T = 1500, 1000, 256  # 6 x 4 tiles at level 0, 4 levels


def synthetic(h: int = H, w: int = W) -> np.ndarray:
    """Smooth colour gradients plus a few sharp blocks (BGR, as cv2 writes it)."""
    rng = np.random.default_rng(3)
    img = cv2.resize(rng.integers(0, 256, (9, 13, 3), dtype=np.uint8), (w, h),
                     interpolation=cv2.INTER_CUBIC)
    img[50:200, 1250:1450] = (0, 0, 255)
    img[750:995, 20:150] = (255, 255, 255)
    return img


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("src")
    img = synthetic()
    paths = {"png": folder / "big.png", "jpg": folder / "big.jpg"}
    cv2.imwrite(str(paths["png"]), img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    cv2.imwrite(str(paths["jpg"]), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return paths


def downsampled_chain(rgb: np.ndarray, pyramid: TilePyramid) -> list[np.ndarray]:
    levels = [rgb]
    for level in range(1, pyramid.levels):
        levels.append(cv2.resize(levels[-1], pyramid.level_size(level),
                                 interpolation=cv2.INTER_AREA))
    return levels


def test_geometry(sources, tmp_path: Path):
    p = TilePyramid(sources["png"], tmp_path, T)
    assert p.levels == 4
    assert [p.level_size(i) for i in range(4)] == [(1500, 1000), (750, 500), (375, 250),
                                                   (188, 125)]
    assert p.tile_grid(0) == (6, 4) and p.tile_grid(3) == (1, 1)
    assert p.tile_rect(0, 5, 3) == (1280, 768, 220, 232)
    assert p.level_scale(1) == (2.0, 2.0)
    with pytest.raises(IndexError):
        p.tile_rect(0, 6, 0)
    with pytest.raises(IndexError):
        p.level_size(4)
    assert not p.dir.exists()  # opening is cheap: nothing decoded or written


@pytest.mark.parametrize("side,levels", [(1, 1), (512, 1), (513, 2), (1024, 2), (1025, 3)])
def test_level_count(tmp_path: Path, side: int, levels: int):
    path = tmp_path / "sq.png"
    cv2.imwrite(str(path), np.zeros((side, 3), np.uint8) if side > 1 else np.zeros((1, 1)))
    assert TilePyramid(path, tmp_path / "cache").levels == levels


def test_best_level_and_view(sources, tmp_path: Path):
    p = TilePyramid(sources["png"], tmp_path, T)
    assert [p.best_level(s) for s in (4.0, 1.0, 0.6, 0.5, 0.3, 0.25, 0.01)] == [
        0, 0, 0, 1, 1, 2, 3]
    assert len(p.tiles_for_view(0, 0, 0, W, H)) == 24
    assert p.tiles_for_view(0, 300, 10, 550, 20) == [(1, 0), (2, 0)]
    assert p.tiles_for_view(1, 0, 515, 515, 1000) == [(0, 1), (1, 1)]  # level-0 coords
    assert p.tiles_for_view(0, -500, -500, -1, -1) == []
    assert p.tiles_for_view(0, 5000, 0, 6000, 100) == []
    with pytest.raises(ValueError):
        p.best_level(0)


def test_tiles_stitch_back_to_downsampled_image(sources, tmp_path: Path):
    p = TilePyramid(sources["png"], tmp_path, T)
    seen: list[float] = []
    assert p.ensure_built(progress=seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen)
    expected = downsampled_chain(synthetic()[..., ::-1], p)
    for level in range(p.levels):
        np.testing.assert_array_equal(p.level_image(level), expected[level])
    t = p.tile(0, 5, 3)
    assert t.shape == (232, 220, 3) and t.dtype == np.uint8
    np.testing.assert_array_equal(t, expected[0][768:, 1280:])
    assert p.stats == {"decodes": 1, "tiles_written": 24 + 6 + 2 + 1}


def test_cache_reused_on_second_open(sources, tmp_path: Path, monkeypatch):
    first = TilePyramid(sources["png"], tmp_path, T)
    first.ensure_built()

    def no_decode(*args, **kwargs):
        raise AssertionError("a cached pyramid must not decode the image again")

    monkeypatch.setattr(tiles, "load_image_bgr", no_decode)
    second = TilePyramid.open(sources["png"], tmp_path, T)
    assert second.is_built()
    assert second.ensure_built() is True
    assert second.overview(800).shape == (500, 750, 3)
    np.testing.assert_array_equal(second.tile(0, 2, 1), first.tile(0, 2, 1))
    assert second.stats == {"decodes": 0, "tiles_written": 0}


def test_changed_file_gets_new_cache(tmp_path: Path):
    path = tmp_path / "x.png"
    cv2.imwrite(str(path), np.zeros((600, 700), np.uint8))
    a = TilePyramid(path, tmp_path / "cache")
    a.ensure_built()
    cv2.imwrite(str(path), np.full((600, 700), 200, np.uint8))
    os.utime(path, ns=(1, 1))
    b = TilePyramid(path, tmp_path / "cache")
    assert b.dir != a.dir and not b.is_built()
    assert b.tile(0, 0, 0).min() == 200


def test_cancel_and_resume(sources, tmp_path: Path):
    p = TilePyramid(sources["png"], tmp_path, T)
    polls = 0

    def stop() -> bool:
        nonlocal polls
        polls += 1
        return polls > 2

    assert p.ensure_built(stop=stop) is False
    assert not p.is_built()
    written = p.stats["tiles_written"]
    assert 0 < written < 33
    again = TilePyramid(sources["png"], tmp_path, T)
    assert again.built_levels == p.built_levels
    assert again.ensure_built(stop=lambda: False) is True
    assert written + again.stats["tiles_written"] == 33  # finished tiles are not redone
    assert TilePyramid(sources["png"], tmp_path, T).is_built()
    stopped = TilePyramid(sources["jpg"], tmp_path, T)
    assert stopped.ensure_built(stop=lambda: True) is False
    assert stopped.stats["decodes"] == 0


def test_jpeg_overview_uses_reduced_decode(sources, tmp_path: Path, monkeypatch):
    calls: list[int] = []
    real = tiles.load_image_bgr

    def spy(path, **kwargs):
        calls.append(kwargs.get("reduce", 1))
        return real(path, **kwargs)

    monkeypatch.setattr(tiles, "load_image_bgr", spy)
    p = TilePyramid(sources["jpg"], tmp_path, T)
    assert p.tile_format == "jpg"
    ov = p.overview(max_side=800)
    assert calls == [2] and ov.shape == (500, 750, 3)
    assert p.built_levels == {1, 2, 3}
    expected = downsampled_chain(synthetic()[..., ::-1], p)
    assert np.abs(ov.astype(int) - expected[1]).mean() < 3
    p.tile(3, 0, 0)
    assert calls == [2]  # coarser levels came with the overview
    assert p.ensure_built()
    assert calls == [2, 1] and p.is_built()
    assert np.abs(p.level_image(0).astype(int) - expected[0]).mean() < 3


def test_png_overview_then_build_decodes_once(sources, tmp_path: Path):
    p = TilePyramid(sources["png"], tmp_path, T)
    ov = p.overview(max_side=800)
    assert ov.shape == (500, 750, 3) and p.built_levels == {1, 2, 3}
    assert p.stats["decodes"] == 1
    assert p.ensure_built() and p.stats["decodes"] == 1  # levels kept from the overview
    p2 = TilePyramid(sources["png"], tmp_path / "other", T)
    p2.overview(max_side=800)
    p2.release()
    assert p2.ensure_built() and p2.stats["decodes"] == 2


def test_concurrent_tile_requests_build_once(sources, tmp_path: Path):
    p = TilePyramid(sources["png"], tmp_path, T)
    results: dict[tuple[int, int], np.ndarray] = {}
    errors: list[BaseException] = []

    def fetch(tx: int, ty: int) -> None:
        try:
            results[(tx, ty)] = p.tile(0, tx, ty)
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=fetch, args=(tx, ty)) for tx in range(3) for ty in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 6
    assert p.stats["decodes"] == 1
    rgb = synthetic()[..., ::-1]
    np.testing.assert_array_equal(results[(2, 1)], rgb[256:512, 512:768])


def test_corrupt_cached_tile_is_rebuilt(sources, tmp_path: Path):
    p = TilePyramid(sources["png"], tmp_path, T)
    p.ensure_built()
    good = p.tile(0, 1, 1)
    (p.dir / "0" / "1_1.png").write_bytes(b"garbage")
    q = TilePyramid(sources["png"], tmp_path, T)
    np.testing.assert_array_equal(q.tile(0, 1, 1), good)
    assert q.stats == {"decodes": 1, "tiles_written": 1}


def test_sixteen_bit_grey_and_rgba_sources(tmp_path: Path):
    ramp = np.tile(np.linspace(1000, 5000, 900).astype(np.uint16), (700, 1))
    cv2.imwrite(str(tmp_path / "g16.tif"), ramp)
    p = TilePyramid(tmp_path / "g16.tif", tmp_path / "cache", tile_size=256)
    assert p.channels == 1 and p.tile_format == "png"
    img = p.level_image(0)
    assert img.dtype == np.uint8 and img.shape == (700, 900)
    assert img[:, :5].max() <= 1 and img[:, -5:].min() >= 254  # one window for all tiles
    assert np.all(np.diff(img[0].astype(int)) >= 0)
    rgba = np.dstack([synthetic(300, 400), np.full((300, 400), 9, np.uint8)])
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    q = TilePyramid(tmp_path / "a.png", tmp_path / "cache", tile_size=128)
    np.testing.assert_array_equal(q.tile(0, 1, 1), rgba[128:256, 128:256, 2::-1])


def test_errors(tmp_path: Path):
    with pytest.raises(ImageMissingError):
        TilePyramid(tmp_path / "nope.png", tmp_path)
    path = tmp_path / "s.png"
    cv2.imwrite(str(path), np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError):
        TilePyramid(path, tmp_path, tile_format="gif")
    with pytest.raises(IndexError):
        TilePyramid(path, tmp_path).tile(0, 1, 0)


def test_thumbnail(sources, tmp_path: Path, monkeypatch):
    thumb = thumbnail(sources["png"], tmp_path, size=128)
    assert thumb.shape == (85, 128, 3) and thumb.dtype == np.uint8
    expected = cv2.resize(synthetic()[..., ::-1], (128, 85), interpolation=cv2.INTER_AREA)
    assert np.abs(thumb.astype(int) - expected).mean() < 2
    assert len(list((tmp_path / "thumbs").glob("*.png"))) == 1
    calls: list[int] = []
    real = tiles.load_image_bgr
    monkeypatch.setattr(tiles, "load_image_bgr",
                        lambda path, **kw: calls.append(kw.get("reduce", 1)) or real(path, **kw))
    np.testing.assert_array_equal(thumbnail(sources["png"], tmp_path, size=128), thumb)
    assert calls == []  # served from the cache
    assert thumbnail(sources["jpg"], tmp_path, size=200).shape == (133, 200, 3)
    assert calls == [4]  # 1500 px wide: decoded at 1/4 by the JPEG codec
    assert thumbnail(sources["png"], tmp_path, size=64, key="abc").shape == (43, 64, 3)
    assert (tmp_path / "thumbs" / "abc-64.png").exists()


def test_thumbnail_small_grey_and_16_bit(tmp_path: Path):
    cv2.imwrite(str(tmp_path / "small.png"), np.full((20, 30), 77, np.uint8))
    small = thumbnail(tmp_path / "small.png", tmp_path / "c")
    assert small.shape == (20, 30) and (small == 77).all()  # grey stays grey, never enlarged
    deep = (np.arange(400 * 300, dtype=np.uint32).reshape(300, 400) % 4000).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    t = thumbnail(tmp_path / "deep.png", tmp_path / "c", size=100)
    assert t.shape == (75, 100) and t.max() > 200


def test_real_membrane_thumbnail(shared_datasets: Path, tmp_path: Path):
    path = shared_datasets / "isbi2012_membrane" / "train" / "image" / "1.png"
    assert thumbnail(path, tmp_path, size=64).shape == (64, 64)
    p = TilePyramid(path, tmp_path, tile_size=256)
    assert p.levels == 2 and p.overview(256).shape == (256, 256)


def test_prebuild_pyramids_builds_only_huge_images(project, make_image, monkeypatch):
    from studio.core import tiles as tiles_mod

    monkeypatch.setattr(tiles_mod, "TILED_PIXELS", 64 * 64)
    small, _ = project.add_image(make_image("small.png", 32, 32, seed=1))
    big, _ = project.add_image(make_image("big.png", 300, 200, seed=2))

    def pyramid(image_id):
        rec = project.image(image_id)
        return tiles_mod.TilePyramid(rec.abs_path, project.cache_dir,
                                     key=tiles_mod.pyramid_key(rec.sha256))

    assert tiles_mod.prebuild_pyramids(project, [small, big], stop=lambda: True) == 0
    assert not pyramid(big).is_built()
    assert tiles_mod.prebuild_pyramids(project, [small, big]) == 1
    assert pyramid(big).is_built() and not pyramid(small).is_built()
