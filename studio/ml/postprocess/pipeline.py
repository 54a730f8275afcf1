"""Running a recipe: :func:`apply_recipe` for one-off use, :class:`RecipeRunner` for
sliders (it remembers the result after every step, so moving a parameter recomputes only
that step and the ones after it: a morphology slider never re-runs the CRF).

Inputs: per-class probabilities (C, H, W) float32 and/or a label map (H, W) uint8
(255 = unlabelled), plus the image (H, W) or (H, W, 3) uint8 for the CRF and superpixels.
Given a label map, it is the starting mask and the threshold step has nothing to do;
steps that need probabilities or the image raise ConfigError when those are missing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from studio.core.errors import ConfigError
from studio.ml.postprocess import labels as lab
from studio.ml.postprocess.crf import dense_crf
from studio.ml.postprocess.morph import morphology
from studio.ml.postprocess.recipe import validate_recipe
from studio.ml.postprocess.regions import components, fill_holes
from studio.ml.postprocess.superpixels import refine_with_superpixels


@dataclass(frozen=True)
class _State:
    probabilities: np.ndarray | None
    labels: np.ndarray | None


def _check_inputs(probabilities, labels, image) -> tuple[np.ndarray | None, np.ndarray | None]:
    if probabilities is None and labels is None:
        raise ConfigError("Post-processing needs probability maps or a label map.")
    probs = None
    if probabilities is not None:
        probs = np.asarray(probabilities)
        if probs.ndim != 3 or probs.shape[0] < 1:
            raise ConfigError(f"Probabilities must be (classes, height, width), got "
                              f"{probs.shape}.")
        if probs.shape[0] > 254:
            raise ConfigError(f"At most 254 classes fit a label map, got {probs.shape[0]}.")
        probs = np.ascontiguousarray(probs, dtype=np.float32)
    lbl = None
    if labels is not None:
        lbl = np.asarray(labels)
        if lbl.ndim != 2:
            raise ConfigError(f"A label map must be (height, width), got {lbl.shape}.")
        if lbl.dtype != np.uint8:
            if lbl.size and (lbl.min() < 0 or lbl.max() > 255):
                raise ConfigError("Label map values must be class indices 0..254 or 255.")
            lbl = lbl.astype(np.uint8)
        lbl = np.ascontiguousarray(lbl)
    shape = probs.shape[1:] if probs is not None else lbl.shape
    if lbl is not None and lbl.shape != shape:
        raise ConfigError(f"The label map {lbl.shape} and probabilities {probs.shape} differ "
                          "in size.")
    if image is not None and np.asarray(image).shape[:2] != shape:
        raise ConfigError(f"The image {np.asarray(image).shape[:2]} and the maps {shape} "
                          "differ in size.")
    return probs, lbl


def _need(state: _State, what: str, op: str) -> np.ndarray:
    if state.probabilities is None:
        raise ConfigError(f"The '{op}' step needs probability maps, but only a label map was "
                          f"given ({what}).")
    return state.probabilities


def _labels_of(state: _State) -> np.ndarray:
    if state.labels is not None:
        return state.labels
    return lab.threshold(state.probabilities)  # type: ignore[arg-type]


def _run_step(step: dict, state: _State, image, background, num_classes: int) -> _State:
    op = step["op"]
    probs = state.probabilities
    if op == "crf":
        p = _need(state, "the CRF refines probabilities", op)
        if image is None:
            raise ConfigError("The 'crf' step needs the image; give it with the predictions.")
        return _State(dense_crf(p, image, step["iterations"], step["smooth_sigma"],
                                step["smooth_weight"], step["bilateral_sigma"],
                                step["color_sigma"], step["bilateral_weight"]), state.labels)
    if op == "threshold":
        if state.labels is not None:
            return state  # a given label map is the starting mask
        return _State(probs, lab.threshold(probs, step["mode"], step["min_confidence"],
                                           step["thresholds"], background))
    labels = _labels_of(state)
    if op == "hysteresis":
        p = _need(state, "hysteresis thresholds probabilities", op)
        out = lab.hysteresis(labels, p, step["high"], step["low"], step["classes"], background)
    elif op == "superpixels":
        out = _superpixels(labels, image, probs, step)
    elif op == "morphology":
        out = morphology(labels, step["operation"], step["kernel_size"], step["shape"],
                         step["iterations"], step["classes"], background, num_classes)
    elif op == "components":
        out = components(labels, step["min_size"], step["keep_largest"],
                         step["connectivity"], step["classes"], background, num_classes)
    elif op == "fill_holes":
        out = fill_holes(labels, step["max_area"], step["classes"], background, num_classes)
    else:  # validate_recipe rejects unknown ops first
        raise ConfigError(f"Unknown post-processing op {op!r}.")
    return _State(probs, out)


def _superpixels(labels: np.ndarray, image, probs, step: dict) -> np.ndarray:
    if step["mode"] == "mean" and probs is None:
        raise ConfigError("Superpixel mode 'mean' needs probability maps; use 'vote'.")
    return refine_with_superpixels(labels, image, probs, step["region_size"],
                                   step["compactness"], step["iterations"], step["mode"])


class RecipeRunner:
    """Applies recipes to one image's cached predictions, reusing the results of the
    unchanged leading steps of the previous recipe. Not thread-safe: one per worker."""

    def __init__(self, probabilities: np.ndarray | None = None,
                 labels: np.ndarray | None = None, image: np.ndarray | None = None,
                 num_classes: int | None = None) -> None:
        self.probabilities, self.labels = _check_inputs(probabilities, labels, image)
        self.image = None if image is None else np.ascontiguousarray(image)
        if self.probabilities is not None:
            self.num_classes = int(self.probabilities.shape[0])
        elif num_classes is not None:
            self.num_classes = int(num_classes)
        else:  # at least one, so that an all-unlabelled map has a background class 0
            self.num_classes = max(1, lab.count_classes(self.labels))
        self._keys: list[str] = []
        self._states: list[_State] = []
        self.steps_run = 0  # steps computed by the last run() (the rest came from the cache)

    def run(self, recipe: dict) -> np.ndarray:
        """The post-processed label map (H, W) uint8 for `recipe` (a new array)."""
        recipe = validate_recipe(recipe)
        background = recipe["background"]
        if background is not None and background >= self.num_classes:
            raise ConfigError(f"The recipe's background class {background} does not exist "
                              f"(the model has {self.num_classes} classes).")
        steps = [s for s in recipe["steps"] if s["enabled"]]
        keys, prefix = [], json.dumps(background)
        for step in steps:
            prefix += json.dumps(step, sort_keys=True)
            keys.append(prefix)
        reuse = 0
        while (reuse < len(keys) and reuse < len(self._keys)
               and self._keys[reuse] == keys[reuse]):
            reuse += 1
        states = self._states[:reuse]
        state = states[-1] if states else _State(self.probabilities, self.labels)
        self.steps_run = 0
        for step in steps[reuse:]:
            state = _run_step(step, state, self.image, background, self.num_classes)
            states.append(state)
            self.steps_run += 1
        self._keys, self._states = keys, states
        return _labels_of(state).copy()


def apply_recipe(recipe: dict, probabilities: np.ndarray | None = None,
                 labels: np.ndarray | None = None, image: np.ndarray | None = None,
                 num_classes: int | None = None) -> np.ndarray:
    """The label map (H, W) uint8 (255 = unlabelled) that `recipe` makes of the inputs."""
    return RecipeRunner(probabilities, labels, image, num_classes).run(recipe)
