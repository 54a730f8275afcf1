"""studio-cli postprocess / predict --postprocess / review, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from testutil import FAST_TRAINING, add_toy_segmentation, write_png

from studio.cli import main
from studio.core.project import Project
from studio.ml.datasets import decode
from studio.ml.postprocess import RecipeRunner, default_recipe, load_recipe, validate_recipe
from studio.ml.predict import Predictor

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _trained(tmp_path: Path, capsys) -> Path:
    root = tmp_path / "proj"
    with Project.create(root) as p:
        add_toy_segmentation(p, tmp_path / "img", ["train"] * 4 + ["val"], seed=5)
        for i in range(2):  # unlabelled images
            rng = np.random.default_rng(40 + i)
            mask = np.kron(rng.random((6, 6)) > 0.5, np.ones((4, 4), bool))
            p.add_image(write_png(tmp_path / "img" / f"u{i}.png",
                                  np.where(mask, 200, 40).astype(np.uint8)), split="none")
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({**FAST_TRAINING, "task": "semantic", "image_size": 16,
                               "epochs": 3, "batch_size": 4,
                               "model_options": {"depth": 2, "width": 8}}))
    assert main(["train", str(root), "--config", str(cfg), "--device", "cpu"]) == 0
    capsys.readouterr()
    return root


def _recipe(tmp_path: Path) -> Path:
    r = default_recipe()
    for step in r["steps"]:
        if step["op"] in ("crf", "superpixels", "components", "fill_holes"):
            step["enabled"] = True
    r["steps"][0]["iterations"] = 2
    r["steps"][3]["region_size"] = 6
    r["steps"][6]["min_size"] = 4
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(r))
    return path


def test_print_default_recipe(capsys):
    assert main(["postprocess", "--print-default-recipe", "--task", "semantic"]) == 0
    recipe = json.loads(capsys.readouterr().out)
    assert validate_recipe(recipe) == recipe and len(recipe["steps"]) == 8
    assert main(["postprocess", "--print-default-recipe", "--task", "classification"]) == 1
    assert "semantic" in capsys.readouterr().err


def test_predict_postprocess_gives_the_masks_the_inspect_view_gets(tmp_path, capsys):
    project = _trained(tmp_path, capsys)
    recipe_path = _recipe(tmp_path)
    out = tmp_path / "masks"
    assert main(["predict", str(project), "--run", "1", "--images", str(tmp_path / "img"),
                 "--out", str(out), "--device", "cpu", "--postprocess", str(recipe_path)]) == 0
    recipe = load_recipe(recipe_path)
    with Project.open(project) as p:
        predictor = Predictor.from_run(p, 1, device="cpu")
        for name in ("s0", "u1"):
            image = decode(tmp_path / "img" / f"{name}.png", 3)
            grey = decode(tmp_path / "img" / f"{name}.png", predictor.meta["channels"])
            probs = predictor.predict_array(grey).probabilities
            gui = RecipeRunner(probs, image=image).run(json.loads(json.dumps(recipe)))
            cli = cv2.imread(str(out / f"{name}.png"), cv2.IMREAD_UNCHANGED)
            assert np.array_equal(gui, cli)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"steps": [{"op": "blur"}]}))
    assert main(["predict", str(project), "--run", "1", "--images", str(tmp_path / "img"),
                 "--out", str(out), "--postprocess", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "unknown op 'blur'" in err and "Traceback" not in err


def test_postprocess_batch_stores_model_annotations_for_review(tmp_path, capsys):
    project = _trained(tmp_path, capsys)
    recipe = _recipe(tmp_path)
    args = ["postprocess", str(project), "--run", "1", "--device", "cpu"]
    assert main([*args, "--unlabelled", "--store"]) == 1  # no recipe saved with the run
    assert "no saved recipe" in capsys.readouterr().err
    assert main([*args, "--recipe", str(recipe), "--save-recipe", "--unlabelled", "--store"]) == 0
    out = capsys.readouterr().out
    assert "stored 2 as model:1 annotations" in out
    with Project.open(project) as p:
        unlabelled = p.image_ids(split="none")
        for iid in unlabelled:
            anns = p.annotations(iid)
            assert anns and {a.source for a in anns} == {"model:1"}
            assert {a.kind for a in anns} == {"mask"} and p.image(iid).status == "review"
        first = sorted(a.id for iid in unlabelled for a in p.annotations(iid))
    # again, with the recipe saved with the run: replaced, not duplicated
    assert main([*args, "--unlabelled", "--store", "--out", str(tmp_path / "m")]) == 0
    with Project.open(project) as p:
        again = sorted(a.id for iid in unlabelled for a in p.annotations(iid))
        assert len(again) == len(first) and set(again).isdisjoint(first)
    assert len(list((tmp_path / "m").glob("*.png"))) == 2
    # labelled images are not overwritten, but their maps are written
    assert main([*args, "--split", "train", "--store", "--out", str(tmp_path / "t")]) == 0
    assert "left 4 image(s) with other labels alone" in capsys.readouterr().out
    assert len(list((tmp_path / "t").glob("*.png"))) == 4
    assert main([*args, "--split", "train"]) == 1
    assert "--out DIR, --store" in capsys.readouterr().err


def test_review_queues_from_the_command_line(tmp_path, capsys):
    project = _trained(tmp_path, capsys)
    assert main(["review", str(project), "--run", "1", "--queue", "next-to-label", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["queue"] == "next-to-label" and len(data["entries"]) == 2
    scores = [e["score"] for e in data["entries"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert main(["review", str(project), "--run", "1", "--queue", "label-errors",
                 "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "1 image(s) predicted by the run's own model" in out and "s4.png" in out
    assert main(["review", str(project), "--run", "1", "--queue", "label-errors", "--folds",
                 "2", "--epochs", "1", "--json", "--limit", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["cost"]["folds"] == 2 and data["cost"]["by_folds"] == 4
    assert len(data["entries"]) == 3
    assert main(["review", str(project), "--run", "9", "--queue", "next-to-label"]) == 1
