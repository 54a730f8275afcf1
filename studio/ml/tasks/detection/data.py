"""A project's objects as torchvision detection targets.

Targets are dicts ``{"boxes": float (N, 4) XYXY in pixels, "labels": int64 (N,),
"masks": uint8 (N, H, W) (instance only), "image_id": int64}`` with label ``i + 1`` for the
run's class ``i`` (0 is the background). Boxes come from any object for ``detection``
(box, polygon or mask: its bounding box); ``instance`` learns from polygons and masks
only (a box has no mask). Images of the split without objects stay in as negatives.
Objects of classes outside the run are dropped, and in an instance run images with box
objects are left out (their objects have no mask and would be learnt as background);
both are counted (``DetectionSource.dropped``) so the run's log can say so.

Augmentation uses ``transforms.v2`` with ``tv_tensors`` so boxes and masks move with the
image; after the geometric ops instance boxes are re-derived from the moved masks (a
rotated box would only grow) and ``SanitizeBoundingBoxes`` drops objects that left the
image. With the "crop" resize policy, training sees ``image_size`` windows at native
scale (objects cut by the window are clipped; images smaller than the window are padded),
and only the objects in the window are rasterised, so images with thousands of nuclei
stay cheap.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.ops import masks_to_boxes
from torchvision.transforms import v2

from studio.core.errors import ConfigError
from studio.core.geometry import MaskGeom, box_to_mask, geometry_bbox, polygon_to_mask
from studio.core.project_annotations import model_made
from studio.core.relink import check_unchanged
from studio.ml.augment import maybe_apply, photometric_ops, rigid_ops
from studio.ml.augment_spec import AugmentSpec
from studio.ml.config import RunConfig
from studio.ml.datasets import (
    ByteLRU,
    RunData,
    Sample,
    decode,
    epoch_order,
    resolve_channels,
    resolve_normalize,
)
from studio.ml.tasks import task_class_ids, task_kinds, task_of


@dataclass
class DetectionSource:
    """One split's images and their objects, read from the project in one go."""

    task: str
    split: str
    class_ids: list[int]
    samples: list[Sample]
    # image id -> [(class index, kind, geometry)]
    objects: dict[int, list[tuple[int, str, object]]] = field(default_factory=dict)
    dropped: Counter = field(default_factory=Counter)

    @property
    def object_count(self) -> int:
        return sum(len(v) for v in self.objects.values())

    def dropped_message(self) -> str | None:
        """One log line about dropped objects, or None when none were."""
        if not self.dropped:
            return None
        parts = [f"{n} {reason}" for reason, n in sorted(self.dropped.items())]
        return f"'{self.split}' split: objects left out of this run: {', '.join(parts)}."


def read_detection_split(project, task: str, split: str, class_ids: Sequence[int]
                         ) -> DetectionSource:
    """Every image of ``split`` with its objects for ``task`` (see the module docstring)."""
    index = {cid: i for i, cid in enumerate(class_ids)}
    kinds = task_kinds(task)
    source = DetectionSource(task, split, list(class_ids), [])
    records = project.images(split=split)
    # objects were drawn on the recorded size: a file resized since import is named
    check_unchanged(project, records, f"use the '{split}' split: it holds")
    for rec in records:
        objects, maskless = [], 0
        anns = project.annotations(rec.id)
        if rec.status == "review":  # a model's unconfirmed objects are no ground truth; a
            people = [a for a in anns if not model_made(a)]  # person's on the image are
            waiting = sum(a.kind != "tag" for a in anns) - sum(a.kind != "tag" for a in people)
            anns = people
            if waiting and any(a.kind != "tag" for a in anns):
                source.dropped["object(s) made by a model, waiting for review"] += waiting
            elif waiting:  # only a model's objects: no ground truth at all
                source.dropped["image(s) with model annotations waiting for review"] += 1
                continue
        for ann in anns:
            if ann.kind == "tag":
                continue
            if ann.class_id not in index:
                source.dropped["object(s) of classes not in the run"] += 1
            elif ann.kind not in kinds:
                maskless += 1
            else:
                objects.append((index[ann.class_id], ann.kind, ann.geometry))
        if maskless:
            # its boxed objects would be learnt as background: leave the image out
            source.dropped["image(s) with box objects (instance segmentation needs "
                           "masks)"] += 1
            continue
        source.samples.append(Sample(rec.id, str(rec.abs_path), rec.height, rec.width, -1,
                                     rec.channels))
        source.objects[rec.id] = objects
    return source


# --- targets ---------------------------------------------------------------------------
def _shifted_mask(kind: str, geometry, x0: int, y0: int, h: int, w: int) -> np.ndarray:
    if kind == "mask":
        return MaskGeom(geometry.x - x0, geometry.y - y0, geometry.bitmap).to_full(h, w)
    if kind == "polygon":
        return polygon_to_mask(np.asarray(geometry) - (x0, y0), h, w)
    x, y, bw, bh = geometry
    return box_to_mask((x - x0, y - y0, bw, bh), h, w)


def build_target(objects, window: tuple[int, int, int, int], masks: bool) -> dict:
    """Target of the objects that meet ``window`` (x0, y0, w, h), in window coordinates."""
    x0, y0, w, h = window
    boxes, labels, bitmaps = [], [], []
    for label, kind, geometry in objects:
        bx, by, bw, bh = geometry_bbox(kind, geometry)
        x1, y1 = max(bx, x0), max(by, y0)
        x2, y2 = min(bx + bw, x0 + w), min(by + bh, y0 + h)
        if x2 <= x1 or y2 <= y1:
            continue
        if masks:
            bitmap = _shifted_mask(kind, geometry, x0, y0, h, w)
            if not bitmap.any():
                continue
            bitmaps.append(bitmap)
        boxes.append([x1 - x0, y1 - y0, x2 - x0, y2 - y0])
        labels.append(label + 1)
    target = {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
              "labels": torch.tensor(labels, dtype=torch.int64)}
    if masks:
        target["masks"] = (torch.from_numpy(np.stack(bitmaps).astype(np.uint8)) if bitmaps
                           else torch.zeros((0, h, w), dtype=torch.uint8))
    return target


def mask_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Pixel-edge XYXY boxes of (N, H, W) masks (masks_to_boxes gives the last pixel)."""
    if masks.shape[0] == 0:
        return torch.zeros((0, 4), dtype=torch.float32)
    boxes = masks_to_boxes(masks.bool()).float()
    boxes[:, 2:] += 1
    boxes[~masks.bool().flatten(1).any(1)] = 0  # an empty mask: a box of no size (sanitised away)
    return boxes


# --- transforms ------------------------------------------------------------------------
def geometric_ops(spec: AugmentSpec | dict) -> list[v2.Transform]:
    """The spec's box-safe geometric ops (elastic, cutout and mixing do not apply here)."""
    spec = AugmentSpec.of(spec)
    out = rigid_ops(spec, mask_fill=0)
    scale = spec.scale
    if scale.enabled:  # zoom in by up to the crop-area range's square root
        zoom = 1.0 / max(1e-3, float(scale.scale[0])) ** 0.5
        out.append(maybe_apply(v2.RandomAffine(0, scale=(1.0, zoom)), scale.p))
    return out


class DetectionTransform:
    """uint8 image + target -> normalised float (C, H, W) and target, boxes and masks
    kept in step with the image (augmentation only when ``train``)."""

    def __init__(self, spec: dict, task: str, train: bool, mean: Sequence[float],
                 std: Sequence[float]) -> None:
        self.masks = task_of(task).has_masks
        self.mean, self.std = [float(m) for m in mean], [float(s) for s in std]
        geometric = geometric_ops(spec) if train else []
        self.geometric = v2.Compose(geometric) if geometric else None
        photometric = photometric_ops(spec) if train else []
        self.photometric = v2.Compose(photometric) if photometric else None
        self.sanitize = v2.SanitizeBoundingBoxes(min_size=1.0)

    def __call__(self, image: np.ndarray, target: dict) -> tuple[torch.Tensor, dict]:
        arr = image[:, :, None] if image.ndim == 2 else image
        img = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1))
        size = tuple(img.shape[-2:])
        sample = {"boxes": tv_tensors.BoundingBoxes(target["boxes"], format="XYXY",
                                                    canvas_size=size),
                  "labels": target["labels"]}
        if self.masks:
            sample["masks"] = tv_tensors.Mask(target["masks"])
        if self.geometric is not None:
            img, sample = self.geometric(img, sample)
            if self.masks:
                sample["boxes"] = tv_tensors.BoundingBoxes(
                    mask_boxes(sample["masks"]), format="XYXY", canvas_size=tuple(img.shape[-2:]))
            img, sample = self.sanitize(img, sample)
        if self.photometric is not None:
            img = self.photometric(img)
        x = img.as_subclass(torch.Tensor).float().div_(255.0)
        mean, std = self.mean, self.std
        if len(mean) == 1 and x.shape[0] > 1:
            mean, std = mean * x.shape[0], std * x.shape[0]
        x = v2.functional.normalize(x, mean, std)
        out = {"boxes": sample["boxes"].as_subclass(torch.Tensor).float(),
               "labels": sample["labels"].as_subclass(torch.Tensor).long()}
        if self.masks:
            out["masks"] = sample["masks"].as_subclass(torch.Tensor).to(torch.uint8)
        return x, out


# --- dataset -----------------------------------------------------------------------------
def pad_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pad an image with zeros at the bottom and right to at least height x width."""
    h, w = image.shape[:2]
    if h >= height and w >= width:
        return image
    pad = [(0, max(0, height - h)), (0, max(0, width - w))] + [(0, 0)] * (image.ndim - 2)
    return np.pad(image, pad)


class DetectionDataset(Dataset):
    """(image tensor, target dict) pairs of a DetectionSource.

    ``crop``: train on random ``crop`` x ``crop`` windows at native scale (padded when the
    image is smaller); None: whole images. Evaluation always uses whole images.
    """

    def __init__(self, source: DetectionSource, transform: DetectionTransform,
                 channels: int = 3, cache: ByteLRU | None = None, crop: int | None = None,
                 samples_per_image: int = 1, by_area: bool = False) -> None:
        self.source, self.transform, self.channels = source, transform, channels
        self.cache = cache if cache is not None else ByteLRU(0)
        self.crop = int(crop) if crop else None
        self.order = epoch_order(source.samples, samples_per_image,
                                 self.crop if by_area else None)

    def __len__(self) -> int:
        return len(self.order)

    def image(self, sample: Sample) -> np.ndarray:
        hit = self.cache.get(sample.image_id)
        if hit is None:
            hit = (decode(sample.path, self.channels),)
            self.cache.put(sample.image_id, hit)
        return hit[0]

    def __getitem__(self, index: int):
        sample = self.source.samples[self.order[index]]
        image = self.image(sample)
        h, w = image.shape[:2]
        x0 = y0 = 0
        if self.crop is not None:
            x0 = random.randint(0, max(0, w - self.crop))
            y0 = random.randint(0, max(0, h - self.crop))
            image = pad_to(image[y0:y0 + self.crop, x0:x0 + self.crop], self.crop, self.crop)
            h, w = image.shape[:2]
        target = build_target(self.source.objects[sample.image_id], (x0, y0, w, h),
                              self.transform.masks)
        x, target = self.transform(image, target)
        target["image_id"] = torch.tensor(sample.image_id, dtype=torch.int64)
        return x, target


def collate_detection(batch):
    """Images and targets as lists (detection images differ in size)."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)


DetectionDataset.collate_fn = staticmethod(collate_detection)


def eval_dataset(source: DetectionSource, cfg: RunConfig, normalize: dict, channels: int,
                 cache: ByteLRU | None = None) -> DetectionDataset:
    """Whole images, no augmentation: what validation, evaluation and prediction see."""
    transform = DetectionTransform(cfg.augment, cfg.task, False, normalize["mean"],
                                   normalize["std"])
    return DetectionDataset(source, transform, channels, cache)


def build_detection_data(project, cfg: RunConfig, class_ids: Sequence[int] | None = None,
                         normalize: dict | None = None, channels: int | None = None,
                         log=None) -> RunData:
    """The train / val datasets of a detection or instance run (`cfg` validated).

    `log(text)` hears about objects left out (classes not in the run, boxes in an
    instance run).
    """
    task = cfg.task
    class_ids = list(class_ids) if class_ids is not None else task_class_ids(project, task)
    names = {c.id: c.name for c in project.classes()}
    train_split, val_split = cfg.data.train_split, cfg.data.val_split
    train_src = read_detection_split(project, task, train_split, class_ids)
    if not train_src.object_count:
        waiting = train_src.dropped.get("image(s) with model annotations waiting for review")
        raise ConfigError(f"The '{train_split}' split has no objects for {task} to train on"
                          + (f" ({waiting} image(s) hold only a model's objects waiting for "
                             "review: review them, or mark them done)" if waiting else "")
                          + ". Label objects in it or run a split first.")
    val_src = read_detection_split(project, task, val_split, class_ids) if val_split else None
    for source in (train_src, val_src):
        if source is not None and source.dropped_message() and log is not None:
            log(source.dropped_message())
    if channels is None:
        channels = resolve_channels(cfg, train_src.samples,
                                    [s.channels for s in train_src.samples])
    if normalize is None:
        normalize = resolve_normalize(cfg, train_src.samples, channels)
    cache = ByteLRU(int(cfg.hardware.cache_mb * 2**20))
    transform = DetectionTransform(cfg.augment, task, True, normalize["mean"],
                                   normalize["std"])
    crop = cfg.data.image_size if cfg.data.resize_policy == "crop" else None
    train = DetectionDataset(train_src, transform, channels, cache, crop,
                             cfg.data.samples_per_image, cfg.data.crops_by_area)
    val = None
    if val_src is not None and val_src.samples:
        val = eval_dataset(val_src, cfg, normalize, channels, cache)
    return RunData(class_ids, [names.get(i, str(i)) for i in class_ids], channels, normalize,
                   train, val, False)
