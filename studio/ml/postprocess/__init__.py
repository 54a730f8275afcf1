"""Post-processing of segmentation predictions: recipes of cleaning steps (threshold,
hysteresis, dense CRF, superpixels, morphology, connected components, hole filling)
applied identically by the GUI, the CLI and batch jobs. No Qt.

Public entry points: `default_recipe`, `validate_recipe`, `load_recipe` / `save_recipe`,
`recipe_to_json` / `recipe_from_json`, `save_run_recipe` / `load_run_recipe` (the recipe
stored with the run it was tuned on), `apply_recipe` and `RecipeRunner` (incremental, for
sliders); the single steps live in `labels`, `morph`, `regions`, `crf` and
`superpixels`.
"""

from studio.ml.postprocess.crf import dense_crf
from studio.ml.postprocess.labels import UNLABELLED, hysteresis, threshold
from studio.ml.postprocess.morph import morphology
from studio.ml.postprocess.pipeline import RecipeRunner, apply_recipe
from studio.ml.postprocess.recipe import (
    STEP_DEFAULTS,
    STEP_PARAMETERS,
    default_recipe,
    load_recipe,
    load_run_recipe,
    recipe_from_json,
    recipe_to_json,
    run_recipe_path,
    save_recipe,
    save_run_recipe,
    validate_recipe,
)
from studio.ml.postprocess.regions import components, fill_holes
from studio.ml.postprocess.superpixels import refine_with_superpixels, slic_segments

__all__ = [
    "STEP_DEFAULTS",
    "STEP_PARAMETERS",
    "UNLABELLED",
    "RecipeRunner",
    "apply_recipe",
    "components",
    "default_recipe",
    "dense_crf",
    "fill_holes",
    "hysteresis",
    "load_recipe",
    "load_run_recipe",
    "morphology",
    "recipe_from_json",
    "recipe_to_json",
    "refine_with_superpixels",
    "run_recipe_path",
    "save_recipe",
    "save_run_recipe",
    "slic_segments",
    "threshold",
    "validate_recipe",
]
