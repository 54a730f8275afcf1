"""Prediction (tiled for large images) and model export."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
import torch
from testutil import FAST_TRAINING, add_toy_segmentation, write_png
from torch import nn

from studio.core.errors import NotFoundError, StudioError
from studio.ml.export import export_model
from studio.ml.fit import fit
from studio.ml.inference import sliding_window_logits
from studio.ml.predict import Predictor, load_run_model, predict

FAST = FAST_TRAINING


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _seg_run(project, tmp_path, **cfg):
    add_toy_segmentation(project, tmp_path / "img", ["train"] * 5 + ["val"], cells=8, seed=3)
    config = {"task": "semantic", "image_size": 16, "batch_size": 4, "epochs": 3,
              "samples_per_image": 2, "model_options": {"depth": 2, "width": 8}, **FAST}
    config.update(cfg)
    return fit(project, config).run_id


def _cls_run(project, tmp_path):
    dark, bright = project.add_class("dark"), project.add_class("bright")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(16):
        arr = np.clip(rng.normal(190 if i % 2 else 60, 25, (12, 12, 3)), 0, 255).astype(np.uint8)
        paths.append(write_png(tmp_path / "img" / f"c{i}.png", arr))
        iid, _ = project.add_image(paths[-1], split="train" if i < 12 else "val")
        project.add_annotation(iid, bright if i % 2 else dark, "tag", None)
    config = {"task": "classification", "image_size": 16, "batch_size": 4, "epochs": 4,
              "optimizer": {"lr": 3e-3}, "model_options": {"width": 8, "fc": [16]}, **FAST}
    return fit(project, config).run_id, paths


def test_large_images_are_predicted_in_windows(project, tmp_path):
    run_id = _seg_run(project, tmp_path)
    big = np.kron(np.random.default_rng(9).random((12, 12)) > 0.5, np.ones((4, 4), bool))
    path = write_png(tmp_path / "big.png", np.where(big, 200, 40).astype(np.uint8))  # 48x48
    predictor = Predictor.from_run(project, run_id, device="cpu")
    shapes = []
    predictor.model.register_forward_hook(lambda m, args, out: shapes.append(args[0].shape))
    result = predictor.predict_array(np.where(big, 200, 40).astype(np.uint8), name="big")
    assert shapes and all(s[-2:] == (16, 16) for s in shapes)  # never the whole image
    assert result.probabilities.shape == (2, 48, 48) and result.probabilities.dtype == np.float32
    np.testing.assert_allclose(result.probabilities.sum(0), 1.0, atol=1e-5)
    assert result.label_map.shape == (48, 48) and result.label_map.dtype == np.uint8
    assert (result.label_map == big).mean() > 0.8  # the toy was learnt
    # the same through predict(): by path and by image id, at each image's own size
    results = predict(project, run_id, [path, 1], device="cpu")
    assert results[0].label_map.shape == (48, 48) and results[1].label_map.shape == (32, 32)
    assert results[1].image_id == 1 and results[0].class_names == ["background", "foreground"]


class _FullyConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(4, 3, 3, padding=1))

    def forward(self, x):
        return self.net(x)


def test_tiled_output_matches_whole_image_output_inside():
    model = _FullyConv().eval()
    image = torch.randn(1, 1, 70, 90)
    with torch.no_grad():
        whole = model(image)
    tiled = sliding_window_logits(model, image, window=32, overlap=0.5)
    assert tiled.shape == whole.shape
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))
    diff = (tiled - whole)[inner].abs()
    assert diff.mean() < 0.01 * whole.abs().mean()
    assert (tiled.argmax(1) == whole.argmax(1)).float().mean() > 0.98
    # images smaller than the window are padded and cropped back
    small = torch.randn(1, 1, 10, 12)
    assert sliding_window_logits(model, small, window=32).shape == (1, 3, 10, 12)


def test_resized_semantic_models_predict_at_the_original_size(project, tmp_path):
    run_id = _seg_run(project, tmp_path, resize_policy="resize", epochs=1)
    path = write_png(tmp_path / "odd.png", np.full((40, 56), 200, np.uint8))
    (result,) = predict(project, run_id, [path], device="cpu")
    assert result.probabilities.shape == (2, 40, 56) and result.label_map.shape == (40, 56)


def test_classification_predictions(project, tmp_path):
    run_id, paths = _cls_run(project, tmp_path)
    results = predict(project, run_id, paths[12:], device="cpu")
    for r, expected in zip(results, ["dark", "bright", "dark", "bright"], strict=True):
        assert r.probabilities.shape == (2,) and r.probabilities.sum() == pytest.approx(1.0)
        assert r.class_names == ["dark", "bright"] and r.class_name == expected
    model, meta = load_run_model(project, run_id, "last")
    assert meta["task"] == "classification" and not model.training
    with pytest.raises(NotFoundError):
        load_run_model(project, 99)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_export_matches_the_model(project, tmp_path):
    run_id = _seg_run(project, tmp_path, epochs=1)
    out = export_model(project, run_id, "torchscript", tmp_path / "out" / "model.pt")
    assert out.is_file() and sorted(p.name for p in out.parent.iterdir()) == [
        "model.json", "model.pt"]
    scripted = torch.jit.load(str(out))
    model, meta = load_run_model(project, run_id)
    x = torch.randn(1, meta["channels"], 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x), atol=1e-4, rtol=1e-4)
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["class_names"] == ["background", "foreground"] and info["format"] == "torchscript"
    with pytest.raises(StudioError, match="format"):
        export_model(project, run_id, "tflite", tmp_path / "m.tflite")


def test_onnx_export_matches_the_model(project, tmp_path):
    import onnx
    from onnx.reference import ReferenceEvaluator

    run_id, _ = _cls_run(project, tmp_path)
    target = tmp_path / "model.onnx"
    assert export_model(project, run_id, "onnx", target) == target
    onnx.checker.check_model(str(target))
    model, meta = load_run_model(project, run_id)
    x = torch.randn(3, meta["channels"], meta["image_size"], meta["image_size"])
    with torch.no_grad():
        expected = model(x).numpy()
    got = ReferenceEvaluator(str(target)).run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)  # batch size is dynamic


def test_onnx_segmentation_export_takes_other_image_sizes(project, tmp_path):
    from onnx.reference import ReferenceEvaluator

    run_id = _seg_run(project, tmp_path, epochs=1)
    target = export_model(project, run_id, "onnx", tmp_path / "seg.onnx")
    model, meta = load_run_model(project, run_id)
    x = torch.randn(1, meta["channels"], 24, 20)  # not the training size
    with torch.no_grad():
        expected = model(x).numpy()
    got = ReferenceEvaluator(str(target)).run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_onnx_export_without_the_package_is_a_clear_error(project, tmp_path, monkeypatch):
    from studio.ml import export as export_mod

    run_id, _ = _cls_run(project, tmp_path)
    real = importlib.util.find_spec
    monkeypatch.setattr(export_mod.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnx" else real(name, *a))
    target = tmp_path / "model.onnx"
    with pytest.raises(StudioError, match="pip install onnx"):
        export_model(project, run_id, "onnx", target)
    assert not target.exists()


def test_tta_averages_probabilities_over_the_trained_flips():
    from studio.ml.flips import tta_flips, tta_forward

    assert tta_flips({"hflip": {"enabled": True}}) == [(), (3,)]
    assert tta_flips({"hflip": {"enabled": True}, "vflip": {"enabled": True}}) \
        == [(), (3,), (2,), (2, 3)]
    torch.manual_seed(0)
    net = nn.Conv2d(1, 2, 3, padding=1)  # not flip-invariant
    x = torch.randn(2, 1, 6, 7)
    flips = [(), (3,), (2,), (2, 3)]
    with torch.no_grad():
        got = tta_forward(net, flips)(x)
        views = [net(x.flip(d) if d else x) for d in flips]
        views = [(v.flip(d) if d else v).softmax(1) for v, d in zip(views, flips, strict=True)]
    expected = torch.stack(views).mean(0)
    assert got.shape == (2, 2, 6, 7)
    assert torch.allclose(got.softmax(1), expected, atol=1e-5)
    assert not torch.allclose(expected, net(x).softmax(1), atol=1e-3)
    # class logits (N, K): only the input is flipped
    head = nn.Sequential(nn.Flatten(), nn.Linear(42, 3))
    with torch.no_grad():
        probs = tta_forward(head, [(), (3,)])(x).exp()
        ref = (head(x).softmax(1) + head(x.flip(3)).softmax(1)) / 2
    assert torch.allclose(probs, ref, atol=1e-5)


def test_tta_in_prediction_and_evaluation(project, tmp_path):
    from studio.ml.evaluation import evaluate_run

    run_id = _seg_run(project, tmp_path, resize_policy="crop", tta=True,
                      augment={"vflip": {"enabled": True}})
    image = np.where(np.kron(np.eye(4, dtype=bool), np.ones((8, 8), bool)), 200, 40)
    image = image.astype(np.uint8)
    predictor = Predictor.from_run(project, run_id, device="cpu")  # the run's config: on
    calls = []
    predictor.model.register_forward_hook(lambda m, args, out: calls.append(1))
    with_tta = predictor.predict_array(image)
    plain_predictor = Predictor.from_run(project, run_id, device="cpu", tta=False)
    plain_calls = []
    plain_predictor.model.register_forward_hook(lambda m, args, out: plain_calls.append(1))
    plain = plain_predictor.predict_array(image)
    assert predictor.tta and not plain_predictor.tta
    assert len(calls) == 4 * len(plain_calls)  # identity + 3 flips per batch of tiles
    assert with_tta.probabilities.shape == plain.probabilities.shape == (2, 32, 32)
    assert np.allclose(with_tta.probabilities.sum(0), 1.0, atol=1e-4)
    assert not np.allclose(with_tta.probabilities, plain.probabilities)
    on = evaluate_run(project, run_id, split="val", device="cpu")
    off = evaluate_run(project, run_id, split="val", device="cpu", tta=False)
    assert on["tta"] is True and off["tta"] is False
    assert 0.0 <= on["pixel_accuracy"] <= 1.0 and on["loss"] != off["loss"]


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_export_to_a_full_disk_is_a_clear_error_and_leaves_nothing(project, tmp_path,
                                                                   monkeypatch):
    import errno
    from pathlib import Path

    from studio.core.errors import DiskFullError

    run_id, _ = _cls_run(project, tmp_path)
    folder = tmp_path / "usb"
    folder.mkdir()
    real_write = Path.write_bytes

    def full_disk(self, data):
        if folder in self.parents:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(DiskFullError, match="full") as info:
        export_model(project, run_id, "torchscript", folder / "model.pt")
    assert str(folder) in str(info.value)
    assert list(folder.iterdir()) == []  # no model, no description, no temp file


@pytest.mark.parametrize("task", ["classification", "semantic"])
def test_a_stored_report_is_the_evaluation_until_the_checkpoint_changes(project, tmp_path,
                                                                        task):
    import os

    from studio.ml.checkpoints import run_checkpoint
    from studio.ml.evaluation import evaluate_and_store, evaluate_run, stored_report

    run_id = _cls_run(project, tmp_path)[0] if task == "classification" else _seg_run(
        project, tmp_path)
    assert stored_report(project, run_id) is None  # nothing kept yet
    kept = evaluate_and_store(project, run_id, "val", "best", "cpu")
    again = stored_report(project, run_id)
    fresh = evaluate_run(project, run_id, "val", "best", "cpu")
    assert again.keys() == fresh.keys() == kept.keys()
    for key, value in fresh.items():
        if isinstance(value, str | bool) or key == "class_names":
            assert again[key] == value, key
        else:
            np.testing.assert_allclose(np.asarray(again[key], float),
                                       np.asarray(value, float), equal_nan=True, err_msg=key)
    path = run_checkpoint(project, run_id, "best")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert stored_report(project, run_id) is None  # a newer checkpoint: stale
