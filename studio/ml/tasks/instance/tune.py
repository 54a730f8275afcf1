"""The split's thresholds chosen on the validation images, as StarDist chooses its
probability and NMS thresholds on validation data (``optimize_thresholds``).

The split has two knobs: the seed threshold (how readily touching objects come apart)
and the foreground threshold (how far objects reach). The best pair depends on how
sharp the trained network's maps are, which changes from epoch to epoch: measured on DSB
2018, the held-out mask mAP50 of one network went from 0.29 to 0.43 across seed
thresholds 0.3-0.5. So at every validation the maps of the validation images are kept
(the network runs once), split again over a small grid, and each pair scored by the
validation meter's own measure; the run keeps the best pair with the weights it
validated (`studio.ml.session`), so evaluation, prediction, export and Inspect's sliders
start from it.
"""

from __future__ import annotations

import itertools

import numpy as np

from studio.ml.tasks.detection.metrics import DetectionMeter, detections_to_coco
from studio.ml.tasks.instance.split import pack_maps, unpack_maps

SEEDS = (0.3, 0.4, 0.5, 0.6, 0.7)
FOREGROUNDS = (0.4, 0.5, 0.6)
FALLBACK_METRIC = "mask_map50"  # when the run's metric is no detection figure (a loss)
# validation maps kept for the choice (3 bytes a pixel: 48 MB). The choice costs about
# 4.6 s per million pixels on one CPU thread (14 splits and COCOevals; DSB's 6 validation
# images, 1 MP: 4.5 s), so larger validation sets keep the configured thresholds.
MAX_PIXELS = 16_000_000


class KeptMaps(list):
    """The maps `UNetInstances.split` keeps, in 1/255 steps (3 bytes a pixel), until
    `MAX_PIXELS` pixels are held; beyond that nothing more is kept and `complete` is
    False (a choice made on part of the images would not be the validation's)."""

    def __init__(self, max_pixels: int = MAX_PIXELS) -> None:
        super().__init__()
        self.max_pixels = int(max_pixels)
        self.pixels = 0
        self.complete = True

    def append(self, maps: dict[str, np.ndarray]) -> None:
        size = int(maps["foreground"].size)
        if not self.complete or self.pixels + size > self.max_pixels:
            self.complete = False
            return
        self.pixels += size
        super().append(pack_maps(maps))

    def maps(self, index: int) -> dict[str, np.ndarray]:
        """The kept maps of the index-th image, probabilities back in 0..1."""
        return unpack_maps(self[index])


def measure_split(model, meter: DetectionMeter, kept: KeptMaps, seed_threshold: float,
                  mask_threshold: float) -> dict:
    """The meter's flat figures for its images split from `kept` at these thresholds."""
    results: list[dict] = []
    for index, info in enumerate(meter.images):
        found = model.detections_of(kept.maps(index), seed_threshold, mask_threshold)
        results.extend(detections_to_coco(found, info["id"], True, info["width"],
                                          info["height"]))
    return meter.with_results(results).compute()


def tune_split(model, meter: DetectionMeter, kept: KeptMaps, metric: str
               ) -> tuple[dict[str, float], dict] | None:
    """The best (seed_threshold, mask_threshold) on the images `meter` has just
    measured with `model` (their maps in `kept`, in the same order) and the meter's
    figures at it: ({"seed_threshold", "mask_threshold"}, flat metrics), or None when
    the maps are not all there. The model's current pair wins ties."""
    if not kept.complete or len(kept) != len(meter.images) or not meter.objects:
        return None
    heads = model.roi_heads
    current = (float(heads.seed_threshold), float(heads.mask_threshold))
    flat = meter.compute()
    key = metric if metric in flat else FALLBACK_METRIC
    best_value, best_pair, best_flat = flat[key], current, flat
    for pair in itertools.product(SEEDS, FOREGROUNDS):
        if pair == current:
            continue
        figures = measure_split(model, meter, kept, *pair)
        if figures[key] > best_value:
            best_value, best_pair, best_flat = figures[key], pair, figures
    return {"seed_threshold": best_pair[0], "mask_threshold": best_pair[1]}, best_flat
