"""Inspect's split sliders for instance runs whose model predicts per-pixel maps and
splits them into objects (the instance task's `maps_split` method, the instance U-Net;
the task object, `studio.ml.tasks.registry.InstanceTask`, says which models do and
splits their maps).

The network runs once per image (`DetectionSession.predict`); its probability maps
(foreground, touching border, distance, classes) stay here, one set per image, and a
change of the split's own parameters (seed threshold, foreground threshold) splits them
again in the worker: no network call. The objects of each split setting are kept for
the last few settings, so moving the score or NMS slider afterwards costs nothing more.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from studio.core.formats.labelimages import objects_by_value
from studio.core.geometry import MaskGeom
from studio.ml.tasks.detection.matching import Objects
from studio.ml.tasks.instance.split import pack_maps, unpack_maps
from studio.ml.tasks.registry import task

KEPT_SETTINGS = 3  # split settings whose objects stay cached (all images of each)


def label_objects(labels: np.ndarray, maps: dict[str, np.ndarray], min_score: float,
                  most: int) -> Objects:
    """The objects of a split's label map, as Inspect keeps detections (masks cropped to
    their boxes; score: mean foreground probability; class indices 0..K-1 by majority of
    the maps' classes; best score first; at most `most`, scores from `min_score`)."""
    fg = maps["foreground"]
    classes = maps.get("classes")
    boxes, scores, kinds, masks = [], [], [], []
    for _value, x0, y0, bitmap in objects_by_value(labels):
        bh, bw = bitmap.shape
        score = float(fg[y0:y0 + bh, x0:x0 + bw][bitmap].mean())
        if score < min_score:
            continue
        kind = 0
        if classes is not None:
            kind = int(np.bincount(classes[y0:y0 + bh, x0:x0 + bw][bitmap].ravel()).argmax())
        boxes.append((x0, y0, x0 + bw, y0 + bh))
        scores.append(score)
        kinds.append(kind)
        masks.append(MaskGeom(int(x0), int(y0), bitmap))
    order = np.argsort(-np.asarray(scores, np.float32), kind="stable")[:most]
    h, w = labels.shape
    return Objects(np.asarray(boxes, np.float32).reshape(-1, 4)[order],
                   np.asarray(kinds, np.int64)[order], np.asarray(scores, np.float32)[order],
                   [masks[i] for i in order], int(w), int(h))


class InstanceMaps:
    """Each image's maps (set once, by the session's one network pass) and the objects
    of the recent split settings."""

    def __init__(self, task_name: str, model, min_score: float, most: int) -> None:
        self.task = task(task_name)
        params = self.task.split_parameters(model)
        self.defaults = (params["seed_threshold"], params["mask_threshold"])
        self.min_area = int(params["min_area"])
        self.min_score = float(min_score)
        self.most = int(most)
        self.maps: dict[int, dict[str, np.ndarray]] = {}
        self.splits = 0  # re-splits done (a test and the benchmark count them)
        self._objects: OrderedDict[tuple[float, float], dict[int, Objects]] = OrderedDict()
        self._lock = threading.Lock()

    def nbytes(self) -> int:
        """Memory the kept maps take."""
        return sum(v.nbytes for maps in self.maps.values() for v in maps.values())

    def keep(self, image_id: int, maps: dict[str, np.ndarray]) -> None:
        """Keep an image's maps (objects split from earlier ones are forgotten), the
        probabilities in 1/255 steps (3 bytes a pixel instead of 12: the sliders move in
        steps of 0.01)."""
        small = pack_maps(maps)
        with self._lock:
            self.maps[image_id] = small
            for per_image in self._objects.values():
                per_image.pop(image_id, None)

    def objects(self, image_id: int, seed: float, foreground: float) -> Objects:
        """The image's objects split at (`seed`, `foreground`); its maps must be kept."""
        key = (round(float(seed), 4), round(float(foreground), 4))
        with self._lock:
            found = self._objects.get(key, {}).get(image_id)
            maps = self.maps[image_id]
        if found is not None:
            return found
        maps = unpack_maps(maps)
        labels = self.task.split_maps(maps, *key, self.min_area)
        found = label_objects(labels, maps, self.min_score, self.most)
        with self._lock:
            self.splits += 1
            per_image = self._objects.setdefault(key, {})
            self._objects.move_to_end(key)
            per_image[image_id] = found
            while len(self._objects) > KEPT_SETTINGS:
                self._objects.popitem(last=False)
        return found
