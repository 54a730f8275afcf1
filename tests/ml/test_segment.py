"""Promptable segmentation engine: registry, hash-checked files, the tiny ONNX model run
through osam, embeddings cache, boxes to masks. Nothing here downloads anything: osam's
folder is redirected to the test's own (HOME) and any download attempt fails the test."""

from __future__ import annotations

import numpy as np
import pytest
from testutil import refuse_model_downloads, write_png

from studio.core.errors import NotFoundError, ValidationError, WeightsUnavailableError
from studio.ml.segment import DEFAULT_MODEL, get_model_spec, list_models, load_model
from studio.ml.segment.batch import boxes_to_masks, last_job, revert_job
from studio.ml.segment.cache import EmbeddingCache, cache_key
from studio.ml.segment.engine import forget_loaded
from studio.ml.segment.registry import unregister_model
from studio.ml.segment.tiny import DISC_RADIUS, TINY_NAME, install_tiny_model, write_tiny_files
from studio.ml.segment.weights import (
    ensure_installed,
    file_path,
    install_from_file,
    missing_files,
    weights_folder,
)


@pytest.fixture
def no_download(monkeypatch, tmp_path):
    """osam's model folder inside the test's folder; a download fails the test (osam's
    cache check runs, the network fetch behind it may not)."""

    refuse_model_downloads(monkeypatch, tmp_path)
    yield
    forget_loaded()


@pytest.fixture
def tiny(no_download, tmp_path):
    spec = install_tiny_model(tmp_path / "made")
    yield spec
    unregister_model(TINY_NAME)


def test_registry_offers_osam_models_with_licence_and_hashes():
    names = [s.name for s in list_models()]
    assert names[0] == DEFAULT_MODEL == "efficientsam:10m"
    assert {"sam2:tiny", "sam2:small", "sam2:large", "sam:latest"} <= set(names)
    for spec in list_models():
        assert spec.licence and spec.size_mb > 0
        assert {f.role for f in spec.files} == {"encoder", "decoder"}
        assert all(len(f.sha256) == 64 for f in spec.files)
    with pytest.raises(NotFoundError, match="studio-cli models list"):
        get_model_spec("nonsense:1")


def test_offline_message_names_files_and_folder(no_download):
    spec = get_model_spec(DEFAULT_MODEL)
    assert missing_files(spec) == list(spec.files)
    with pytest.raises(WeightsUnavailableError) as info:
        load_model(DEFAULT_MODEL)  # never downloads: says what is missing and where
    text = str(info.value)
    assert str(weights_folder()) in text and "Install from file" in text
    for f in spec.files:
        assert f.filename in text


def test_tiny_model_decodes_points_and_boxes(tiny):
    model = load_model(TINY_NAME)
    emb = model.embed(np.zeros((90, 120, 3), np.uint8))
    assert emb.data.embedding.shape == (256, 64, 64)
    disc = model.decode(emb, [[30, 40]], [1])
    assert (disc.x, disc.y) == (20, 30) and disc.area == pytest.approx(np.pi * DISC_RADIUS ** 2,
                                                                       rel=0.1)
    cut = model.decode(emb, [[30, 40], [38, 40]], [1, 0])
    assert 0 < cut.area < disc.area
    assert not cut.to_full(90, 120)[40, 37]  # cut out around the negative point
    box = model.decode(emb, None, None, box=(50, 20, 100, 60))
    full = box.to_full(90, 120)
    assert full[40, 75] and not full[:20].any() and not full[:, :50].any()
    assert model.decode(emb, [[30, 40]], [0]) is None  # only a negative point: nothing


def test_downscaled_embedding_maps_back_exactly(tiny):
    model = load_model(TINY_NAME)
    emb = model.embed(np.zeros((256, 512, 3), np.uint8), original_size=(2048, 1024))
    geom = model.decode(emb, [[1000.0, 500.0]], [1])
    ys, xs = np.nonzero(geom.bitmap)
    cx, cy = (xs + geom.x + 0.5).mean(), (ys + geom.y + 0.5).mean()
    assert (cx, cy) == (pytest.approx(1000, abs=1), pytest.approx(500, abs=1))
    assert geom.width == pytest.approx(2 * DISC_RADIUS * 4, abs=4)  # 4x scale on each axis


def test_wrong_hash_is_refused_and_nothing_installed(no_download, tmp_path):
    encoder, decoder = write_tiny_files(tmp_path / "made")
    from studio.ml.segment.registry import register_model
    from studio.ml.segment.tiny import tiny_spec

    spec = tiny_spec(encoder, decoder)
    register_model(spec)
    try:
        bad = tmp_path / "bad.onnx"
        bad.write_bytes(encoder.read_bytes() + b"\0")
        with pytest.raises(ValidationError, match="SHA-256"):
            install_from_file(bad)
        assert not file_path(spec, "encoder").exists()
        install_from_file(encoder), install_from_file(decoder)
        ensure_installed(spec)
        # a file damaged after install is refused at load (osam would fetch it again)
        file_path(spec, "decoder").write_bytes(b"broken")
        with pytest.raises(WeightsUnavailableError, match="tiny_sam_decoder.onnx"):
            load_model(TINY_NAME)
    finally:
        unregister_model(TINY_NAME)


def test_cache_memory_lru_and_disk_round_trip(tiny, tmp_path):
    model = load_model(TINY_NAME)
    cache = EmbeddingCache(tmp_path / "cache", memory_items=2, disk_mb=100)
    embs = {}
    for i in range(3):
        img = np.full((60, 80, 3), 40 * i, np.uint8)
        embs[i] = model.embed(img)
        cache.put(cache_key(TINY_NAME, str(i) * 64), embs[i])
    assert not cache.in_memory(cache_key(TINY_NAME, "0" * 64))  # evicted first
    assert cache.in_memory(cache_key(TINY_NAME, "2" * 64))
    back = cache.get(cache_key(TINY_NAME, "0" * 64))  # from disk
    assert cache.disk_reads == 1
    np.testing.assert_array_equal(back.data.embedding, embs[0].data.embedding)
    a, b = model.decode(back, [[20, 20]], [1]), model.decode(embs[0], [[20, 20]], [1])
    assert a.equals(b)
    small = EmbeddingCache(tmp_path / "small", disk_mb=5)  # one 4 MB embedding fits
    for i in range(3):
        small.put(f"k{i}", embs[i])
    assert len(list((tmp_path / "small").glob("*.npz"))) == 1


def _detection_project(project, tmp_path, n_images=3):
    cls = project.add_class("cell")
    boxes = {}
    for i in range(n_images):
        img = np.full((80, 100, 3), 30 + 20 * i, np.uint8)
        iid, _ = project.add_image(write_png(tmp_path / "imgs" / f"{i}.png", img))
        boxes[iid] = [project.add_annotation(iid, cls, "box", (10 + i, 10, 30, 25)),
                      project.add_annotation(iid, cls, "box", (50, 40, 40, 30))]
    return boxes


def test_boxes_to_masks_one_mask_per_box_inside_reviewed_revertible(tiny, project, tmp_path):
    boxes = _detection_project(project, tmp_path)
    before = {iid: project.image(iid).status for iid in boxes}
    model = load_model(TINY_NAME)
    seen = []
    job = boxes_to_masks(project, model, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (3, 3) and job.masks == 6 and not job.cancelled
    for iid, box_ids in boxes.items():
        masks = project.annotations(iid, kind="mask")
        assert sorted(m.attributes["from_box"] for m in masks) == sorted(box_ids)
        for m in masks:
            assert m.source == f"model:{TINY_NAME}"
            bx, by, bw, bh = project.annotation(m.attributes["from_box"]).geometry
            x, y, w, h = m.bbox
            assert bx <= x and by <= y and x + w <= bx + bw and y + h <= by + bh
        assert project.image(iid).status == "review"
    again = boxes_to_masks(project, model)  # a second run skips the boxes done
    assert again.masks == 0 and again.skipped == 6
    assert revert_job(project, last_job(project)) == 6
    for iid in boxes:
        assert project.annotations(iid, kind="mask") == []
        assert len(project.annotations(iid, kind="box")) == 2
        assert project.image(iid).status == before[iid]


def test_boxes_to_masks_cancel_keeps_a_revertible_part(tiny, project, tmp_path):
    boxes = _detection_project(project, tmp_path)
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 1  # stop after the first image

    job = boxes_to_masks(project, load_model(TINY_NAME), cancelled=cancelled)
    assert job.cancelled and job.images_done == 1 and job.masks == 2
    assert sum(len(project.annotations(i, kind="mask")) for i in boxes) == 2
    assert revert_job(project, last_job(project)) == 2
    assert sum(len(project.annotations(i, kind="mask")) for i in boxes) == 0
    with pytest.raises(NotFoundError):
        last_job(project)
