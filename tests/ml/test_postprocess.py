"""Post-processing steps on synthetic cases whose right answer is known, and recipes."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from studio.core.errors import ConfigError
from studio.ml.postprocess import (
    UNLABELLED,
    RecipeRunner,
    apply_recipe,
    components,
    default_recipe,
    dense_crf,
    fill_holes,
    hysteresis,
    load_recipe,
    load_run_recipe,
    morphology,
    recipe_from_json,
    recipe_to_json,
    refine_with_superpixels,
    save_recipe,
    save_run_recipe,
    threshold,
    validate_recipe,
)


def two_class(fg: np.ndarray) -> np.ndarray:
    fg = fg.astype(np.float32)
    return np.stack([1 - fg, fg])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def recipe(*steps: dict, background=0) -> dict:
    return {"background": background, "steps": list(steps)}


# --- threshold -------------------------------------------------------------------------------
def test_threshold_argmax_leaves_unsure_pixels_unlabelled():
    p = np.zeros((3, 2, 3), np.float32)
    p[:, 0, 0] = [0.8, 0.1, 0.1]
    p[:, 0, 1] = [0.2, 0.7, 0.1]
    p[:, 0, 2] = [0.3, 0.3, 0.4]  # unsure
    p[:, 1, :] = [[0.1], [0.1], [0.8]]
    assert threshold(p).tolist() == [[0, 1, 2], [2, 2, 2]]
    assert threshold(p, min_confidence=0.5).tolist() == [[0, 1, 255], [2, 2, 2]]
    assert np.array_equal(threshold(p), p.argmax(0))


def test_threshold_per_class_background_is_the_fallback():
    fg = np.array([[0.1, 0.35, 0.6]], np.float32)
    p = two_class(fg)
    assert threshold(p, "per_class", thresholds=0.3).tolist() == [[0, 1, 1]]
    assert threshold(p, "per_class", thresholds=[0.0, 0.5]).tolist() == [[0, 0, 1]]
    assert threshold(p, "per_class", thresholds=0.7, background=None).tolist() == [[0, 255, 255]]
    with pytest.raises(ConfigError, match="3 thresholds for 2 classes"):
        threshold(p, "per_class", thresholds=[0.1, 0.2, 0.3])


def test_threshold_matches_argmax_on_random_maps():
    rng = np.random.default_rng(0)
    p = rng.random((5, 40, 50), dtype=np.float32)
    assert np.array_equal(threshold(p), p.argmax(0))


# --- morphology ------------------------------------------------------------------------------
def square_with_speckle() -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros((40, 40), np.uint8)
    truth[10:30, 10:30] = 1
    noisy = truth.copy()
    for y, x in [(2, 3), (35, 5), (5, 36), (33, 33)]:
        noisy[y, x] = 1
    noisy[20, 20] = 0  # a pin hole
    return truth, noisy


def test_opening_removes_speckle_and_closing_fills_pinholes():
    truth, noisy = square_with_speckle()
    opened = morphology(noisy, "open", 3, "rect")
    assert opened[:, :10].sum() == 0 and opened[30:].sum() == 0  # speckle gone
    closed = morphology(opened, "close", 3, "rect")
    assert np.array_equal(closed, truth)


def test_dilation_takes_background_only_and_erosion_gives_it_back():
    labels = np.zeros((20, 20), np.uint8)
    labels[5:10, 5:10] = 1
    labels[5:10, 10:15] = 2
    grown = morphology(labels, "dilate", 3, "cross", classes=[1])
    assert (grown[5:10, 10:15] == 2).all()  # class 2 untouched
    assert grown[4, 7] == 1 and grown[7, 4] == 1
    shrunk = morphology(labels, "erode", 3, "rect", iterations=2, classes=[1])
    assert (shrunk == 1).sum() == 1 and shrunk[7, 7] == 1
    no_bg = morphology(labels, "erode", 3, "rect", classes=[1], background=None)
    assert no_bg[5, 5] == 255


# --- components ------------------------------------------------------------------------------
def test_components_remove_small_and_keep_largest():
    truth, noisy = square_with_speckle()
    assert np.array_equal(components(noisy, min_size=5) | (truth & ~noisy), truth)
    two = truth.copy()
    two[33:38, 33:38] = 1
    largest = components(two, keep_largest=1)
    assert np.array_equal(largest, truth)


def test_touching_blobs_are_kept_apart_or_merged_as_asked():
    labels = np.zeros((30, 30), np.uint8)
    labels[2:12, 2:12] = 1  # big blob
    labels[12:16, 12:16] = 1  # small blob touching it corner to corner
    merged = components(labels, keep_largest=1, connectivity=8)
    assert np.array_equal(merged, labels)  # one 8-connected component: both kept
    apart = components(labels, keep_largest=1, connectivity=4)
    assert apart[2:12, 2:12].all() and apart[12:16, 12:16].sum() == 0


def test_components_per_class():
    labels = np.zeros((20, 20), np.uint8)
    labels[1:3, 1:3] = 1  # 4 px of class 1
    labels[10:12, 10:12] = 2  # 4 px of class 2
    labels[15:19, 15:19] = 2
    out = components(labels, min_size=5, classes=[2])
    assert (out == 1).sum() == 4 and (out == 2).sum() == 16


# --- fill holes ------------------------------------------------------------------------------
def test_fill_holes_up_to_max_area():
    labels = np.zeros((40, 90), np.uint8)
    labels[5:25, 5:25] = 1
    labels[10:13, 10:13] = 0  # 9 px hole
    labels[5:25, 30:55] = 1
    labels[8:20, 34:50] = 0  # 192 px hole
    labels[5:25, 60:85] = 1
    labels[8:20, 64:80] = 0  # 192 px hole around a blob of class 2: two classes border it
    labels[12:14, 68:70] = 2
    labels[0:3, 0:90] = 1
    labels[0:2, 20:22] = 0  # a bay open to the image border is not a hole
    small = fill_holes(labels, max_area=20)
    assert (small[10:13, 10:13] == 1).all() and (small[8:20, 34:50] == 0).sum() == 192
    every = fill_holes(labels, max_area=None)
    assert (every[8:20, 34:50] == 1).all()
    assert (every[8:20, 64:80] == 0).sum() == 192 - 4 and (every[12:14, 68:70] == 2).all()
    assert (every[0:2, 20:22] == 0).all()
    assert np.array_equal(fill_holes(labels, max_area=None, classes=[2]), labels)
    no_bg = np.where(labels == 0, 255, labels).astype(np.uint8)
    assert (fill_holes(no_bg, max_area=20, background=None)[10:13, 10:13] == 1).all()


# --- hysteresis ------------------------------------------------------------------------------
def test_hysteresis_keeps_a_faint_part_connected_to_a_strong_one():
    fg = np.full((30, 40), 0.05, np.float32)
    fg[5:15, 5:15] = 0.95  # strong
    fg[8:12, 15:30] = 0.5  # faint tail attached to it
    fg[20:26, 20:26] = 0.5  # faint blob on its own
    p = two_class(fg)
    plain = threshold(p, "per_class", thresholds=0.6)
    assert plain[8:12, 15:30].sum() == 0  # a plain threshold loses the tail
    grown = hysteresis(threshold(p), p, high=0.8, low=0.4)
    assert grown[5:15, 5:15].all() and grown[8:12, 15:30].all()
    assert grown[20:26, 20:26].sum() == 0  # no seed, dropped
    assert grown.sum() == 100 + 60


# --- dense CRF -------------------------------------------------------------------------------
def test_crf_moves_a_boundary_that_is_off_onto_the_image_edge():
    rng = np.random.default_rng(0)
    h, w, edge, off = 48, 64, 32, 4
    image = np.where(np.arange(w)[None, :] < edge, 60, 190).astype(np.float64)
    image = np.clip(image + rng.normal(0, 4, (h, w)), 0, 255).astype(np.uint8)
    image = np.repeat(image[..., None], 3, axis=2)
    fg = np.where(np.arange(w)[None, :] < edge - off, 0.3, 0.7) * np.ones((h, 1))
    p = two_class(fg)
    before = p.argmax(0)
    assert (before[:, edge - off:edge] == 1).all()
    refined = dense_crf(p, image, iterations=5)
    after = refined.argmax(0)
    truth = np.arange(w)[None, :].repeat(h, 0) >= edge
    assert np.array_equal(after.astype(bool), truth)
    assert np.allclose(refined.sum(0), 1, atol=1e-4)


def test_crf_with_five_classes_and_grey_image_keeps_clean_input():
    labels = np.kron(np.arange(5)[None, :], np.ones((20, 12), np.int64))  # 5 vertical bands
    image = (labels * 50).astype(np.uint8)
    p = np.stack([(labels == c) * 0.8 + 0.04 for c in range(5)]).astype(np.float32)
    out = dense_crf(p, image, iterations=3)
    assert out.shape == p.shape and np.array_equal(out.argmax(0), labels)
    with pytest.raises(ConfigError, match="differ in size"):
        dense_crf(p, image[:, :10])


# --- superpixels -----------------------------------------------------------------------------
def test_superpixel_voting_removes_a_ragged_edge():
    rng = np.random.default_rng(1)
    h = w = 96
    yy, xx = np.mgrid[:h, :w]
    truth = (yy - 48) ** 2 + (xx - 48) ** 2 < 30 ** 2
    image = np.where(truth, 170, 70).astype(np.float64) + rng.normal(0, 5, (h, w))
    image = np.repeat(np.clip(image, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    jag = (rng.random((h // 4, w // 4)) < 0.5).repeat(4, 0).repeat(4, 1)
    ragged = truth.copy()
    band = cv2.dilate(truth.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool) & ~cv2.erode(
        truth.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    ragged[band] = jag[band]
    before = iou(ragged, truth)
    refined = refine_with_superpixels(ragged.astype(np.uint8), image, region_size=12,
                                      compactness=20.0).astype(bool)
    after = iou(refined, truth)
    assert before < 0.9 and after > 0.97
    p = two_class(ragged * 0.6 + 0.2)
    mean = refine_with_superpixels(ragged.astype(np.uint8), image, p, region_size=12,
                                   compactness=20.0, mode="mean").astype(bool)
    assert iou(mean, truth) > 0.97


# --- recipes ---------------------------------------------------------------------------------
def tuned_recipe() -> dict:
    r = default_recipe()
    for step in r["steps"]:
        step["enabled"] = step["op"] not in ("hysteresis",)
    r["steps"][1]["min_confidence"] = 0.55  # threshold
    r["steps"][3]["region_size"] = 10  # superpixels
    r["steps"][6]["min_size"] = 12  # components
    return r


def noisy_case(seed=0, h=64, w=80):
    rng = np.random.default_rng(seed)
    truth = np.zeros((h, w), np.uint8)
    truth[10:40, 10:50] = 1
    truth[45:60, 55:75] = 2
    image = (truth * 90 + 30).astype(np.float64) + rng.normal(0, 6, (h, w))
    image = np.clip(image, 0, 255).astype(np.uint8)
    logits = np.stack([(truth == c) * 2.0 for c in range(3)]) + rng.normal(0, 1.2, (3, h, w))
    p = np.exp(logits)
    return (p / p.sum(0)).astype(np.float32), image, truth


def test_default_recipe_is_complete_and_changes_nothing():
    r = default_recipe("semantic")
    ops = [s["op"] for s in r["steps"]]
    assert ops == ["crf", "threshold", "hysteresis", "superpixels", "morphology", "morphology",
                   "components", "fill_holes"]
    assert validate_recipe(r) == r
    p, image, _ = noisy_case()
    assert np.array_equal(apply_recipe(r, p, image=image), p.argmax(0))
    with pytest.raises(ConfigError, match="semantic"):
        default_recipe("classification")


def test_recipe_round_trips_through_json_with_identical_masks(tmp_path, project):
    r = tuned_recipe()
    p, image, truth = noisy_case()
    direct = apply_recipe(r, p, image=image)
    again = recipe_from_json(recipe_to_json(r))
    assert again == validate_recipe(r)
    assert np.array_equal(apply_recipe(again, p, image=image), direct)
    save_recipe(r, tmp_path / "r.json")
    assert np.array_equal(apply_recipe(load_recipe(tmp_path / "r.json"), p, image=image), direct)
    run = project.create_run("semantic", {})
    assert load_run_recipe(project, run) is None
    path = save_run_recipe(project, run, r)
    assert path.name == "postprocess.json" and path.parent == project.run_dir(run)
    assert np.array_equal(apply_recipe(load_run_recipe(project, run), p, image=image), direct)
    # and the cleaning helps on this noisy case
    assert iou(direct == 1, truth == 1) > iou(p.argmax(0) == 1, truth == 1)


def test_runner_recomputes_only_the_changed_steps():
    r = tuned_recipe()
    p, image, _ = noisy_case(1)
    runner = RecipeRunner(p, image=image)
    first = runner.run(r)
    assert runner.steps_run == 7
    r["steps"][7]["max_area"] = 5  # fill_holes, the last step
    second = runner.run(r)
    assert runner.steps_run == 1 and np.array_equal(second, apply_recipe(r, p, image=image))
    r["steps"][4]["kernel_size"] = 5  # first morphology
    runner.run(r)
    assert runner.steps_run == 4
    assert np.array_equal(runner.run(r), apply_recipe(r, p, image=image))
    assert runner.steps_run == 0
    assert first.dtype == np.uint8 and first.shape == p.shape[1:]


def test_label_map_input_and_missing_inputs():
    labels = np.zeros((20, 20), np.uint8)
    labels[5:15, 5:15] = 1
    labels[1, 1] = 1
    r = recipe({"op": "threshold"}, {"op": "components", "min_size": 3})
    out = apply_recipe(r, labels=labels)
    assert out[1, 1] == 0 and out[5:15, 5:15].all()
    with pytest.raises(ConfigError, match="needs the image"):
        apply_recipe(recipe({"op": "superpixels"}), labels=labels)
    with pytest.raises(ConfigError, match="needs probability maps"):
        apply_recipe(recipe({"op": "hysteresis"}), labels=labels)
    with pytest.raises(ConfigError, match="probability maps or a label map"):
        apply_recipe(recipe())
    with pytest.raises(ConfigError, match="class index 4"):
        apply_recipe(recipe({"op": "components", "min_size": 3, "classes": [4]}), labels=labels,
                     num_classes=2)
    # a map with no labelled pixel still has its background class: nothing to clean
    empty = np.full((6, 6), UNLABELLED, np.uint8)
    assert (apply_recipe(r, labels=empty) == UNLABELLED).all()


@pytest.mark.parametrize("bad, message", [
    ([], "JSON object"),
    ({"steps": [{"op": "blur"}]}, "unknown op 'blur'"),
    ({"steps": [{"op": "morphology", "radius": 3}]}, "unknown parameters radius"),
    ({"steps": [{"op": "morphology", "kernel_size": 0}]}, "'kernel_size' must be an integer"),
    ({"steps": [{"op": "morphology", "shape": "disc"}]}, "'shape' must be one of"),
    ({"steps": [{"op": "hysteresis", "low": 0.9, "high": 0.5}]}, "must not exceed"),
    ({"steps": [{"op": "threshold"}, {"op": "crf"}]}, "before the threshold"),
    ({"steps": [{"op": "threshold"}, {"op": "threshold"}]}, "one threshold step"),
    ({"steps": [{"op": "threshold", "thresholds": [0.5, 2]}]}, "'thresholds' must be"),
    ({"steps": [{"op": "components", "classes": "all"}]}, "'classes' must be null"),
    ({"steps": [{"op": "fill_holes", "enabled": "yes"}]}, "'enabled' must be true or false"),
    ({"steps": [], "colour": 1}, "unknown keys: colour"),
    ({"steps": [], "version": 7}, "version 7"),
    ({"steps": [], "background": -1}, "'background' must be"),
])
def test_bad_recipes_are_refused_with_a_clear_message(bad, message):
    with pytest.raises(ConfigError, match=message):
        validate_recipe(bad)


def test_recipe_json_is_plain_and_complete():
    data = json.loads(recipe_to_json({"steps": [{"op": "fill_holes"}]}))
    assert data == {"version": 1, "task": "semantic", "background": 0,
                    "steps": [{"op": "fill_holes", "enabled": True, "max_area": 64,
                               "classes": None}]}
    with pytest.raises(ConfigError, match="not valid JSON"):
        recipe_from_json("{steps")


def test_components_and_holes_beyond_16_bit_labels():
    labels = np.zeros((600, 600), np.uint8)
    labels[::2, ::2] = 1  # 90000 single-pixel components
    labels[300:310, 300:310] = 1
    out = components(labels, min_size=2)
    assert out[300:310, 300:310].all() and out[0, 0] == 0 and out[100, 100] == 0
    assert (out == 1).sum() == 100 + 11  # the block and the dots touching it
    holes = np.ones((600, 600), np.uint8)
    holes[1:-1:2, 1:-1:2] = 0  # 89401 one-pixel holes
    assert (fill_holes(holes, max_area=1) == 1).all()


def test_parameter_specs_cover_every_default_and_bound_the_validation():
    from studio.ml.postprocess import STEP_DEFAULTS, STEP_PARAMETERS

    assert {op: set(p) for op, p in STEP_PARAMETERS.items()} == {
        op: set(p) for op, p in STEP_DEFAULTS.items()}
    for op, params in STEP_PARAMETERS.items():
        for key, spec in params.items():
            if spec["kind"] in ("int", "float") and spec["min"] is not None:
                low = spec["min"] - (0 if spec["min_open"] else 1)
                with pytest.raises(ConfigError, match=key):
                    validate_recipe({"steps": [{"op": op, key: low}]})
                extra = {"high": 1.0} if op == "hysteresis" else {}
                validate_recipe({"steps": [{"op": op, **extra, key: spec["ui_max"]}]})


def test_the_number_of_recipe_steps_is_bounded(tmp_path, capsys):
    from studio.cli import main
    from studio.ml.postprocess.recipe import MAX_STEPS

    step = {"op": "morphology", "operation": "dilate", "kernel_size": 255, "iterations": 100}
    many = {"steps": [dict(step) for _ in range(100)]}
    with pytest.raises(ConfigError, match=f"has 100 steps; at most {MAX_STEPS}"):
        validate_recipe(many)
    assert len(validate_recipe({"steps": [dict(step)] * MAX_STEPS})["steps"]) == MAX_STEPS
    path = tmp_path / "many.json"
    path.write_text(json.dumps(many))
    with pytest.raises(ConfigError, match="at most"):
        load_recipe(path)
    # the CLI refuses it before any prediction (no project needed to get that far)
    assert main(["predict", str(tmp_path / "nowhere"), "--run", "1", "--images",
                 str(path), "--out", str(tmp_path / "o"), "--postprocess", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at most" in err
