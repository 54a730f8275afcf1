"""Project -> torch datasets for classification and semantic segmentation.

Everything a dataset needs from the project store (paths, tags, regions) is read once when
it is built, so DataLoader workers never touch the SQLite connection. Classification:
an image's tag is its class (images without a tag are left out; with several tags the
latest wins). Semantic segmentation: the label map of an image's polygon and mask regions
(`studio.core.rasterize.label_map`); unlabelled pixels are 255 (ignored by loss and
metrics), so partially labelled images train correctly; images without regions are left out.
Images marked for review that hold a model's annotations (pre-labels, accepted predictions)
are left out of every task until a person marks them otherwise: a model's unconfirmed
output is not ground truth, neither to learn from nor to measure against.
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from studio.core.errors import ConfigError
from studio.core.project_annotations import model_made
from studio.core.rasterize import REGION_KINDS, label_map
from studio.core.relink import check_unchanged
from studio.ml import augment
from studio.ml.config import RunConfig
from studio.ml.inference import eval_transform
from studio.ml.tasks import IGNORE_INDEX, IMAGENET_MEAN, IMAGENET_STD, task_class_ids, task_of


# --- what a dataset holds ----------------------------------------------------------------
@dataclass
class Sample:
    image_id: int
    path: str
    height: int
    width: int
    label: int = -1  # classification only
    channels: int = 3


class _RegionSnapshot:
    """The two store calls `label_map` makes, answered from memory (safe in workers)."""

    def __init__(self) -> None:
        self.records: dict[int, object] = {}
        self.regions: dict[int, list] = {}

    def image(self, image_id: int):
        return self.records[image_id]

    def annotations(self, image_id: int, kind=None):
        return self.regions[image_id]


@dataclass
class DatasetSource:
    """The samples of one split, read from the project in one go."""

    task: str
    split: str
    class_ids: list[int]
    samples: list[Sample]
    snapshot: _RegionSnapshot = field(default_factory=_RegionSnapshot)

    def label_map(self, image_id: int) -> np.ndarray:
        return label_map(self.snapshot, image_id, self.class_ids, ignore_index=IGNORE_INDEX)


def read_split(project, task: str, split: str, class_ids: Sequence[int]) -> DatasetSource:
    """Collect the labelled images of `split` for `task` (see the module docstring)."""
    class_ids = list(class_ids)
    index = {cid: i for i, cid in enumerate(class_ids)}
    # images under review keep their people's annotations; the model's are left out
    records = project.images(split=split)
    source = DatasetSource(task, split, class_ids, [])
    if task_of(task).image_label:
        rows = project.image_classes(kind="tag", split=split, ground_truth=True)
        label = {}
        for image_id, class_id in rows:
            if class_id in index:
                label[image_id] = index[class_id]
        for rec in records:
            if rec.id in label:
                source.samples.append(
                    Sample(rec.id, str(rec.abs_path), rec.height, rec.width, label[rec.id],
                           rec.channels))
        return source
    for rec in records:
        regions = [a for a in project.annotations(rec.id)
                   if a.kind in REGION_KINDS and a.class_id in index
                   and not (rec.status == "review" and model_made(a))]
        if regions:
            source.samples.append(
                Sample(rec.id, str(rec.abs_path), rec.height, rec.width, -1, rec.channels))
            source.snapshot.records[rec.id] = rec
            source.snapshot.regions[rec.id] = regions
    # regions were drawn on the recorded size: a file resized since import is named
    check_unchanged(project, list(source.snapshot.records.values()),
                    f"use the '{split}' split: it holds")
    return source


# --- decoded-image cache -----------------------------------------------------------------
class ByteLRU:
    """A thread-safe LRU of numpy arrays bounded by their total size in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key, value: tuple[np.ndarray, ...]) -> None:
        size = sum(a.nbytes for a in value if a is not None)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self.bytes -= sum(a.nbytes for a in old if a is not None)

    def __len__(self) -> int:
        return len(self._items)


def image_mode(channels: int) -> str:
    return "gray" if channels == 1 else "rgb"


def decode(path, channels: int) -> np.ndarray:
    """An image file as uint8 H×W (channels 1) or H×W×3 (16-bit images scaled down)."""
    from studio.core.images import load_image, to_uint8

    image = load_image(path, mode=image_mode(channels))
    return image if image.dtype == np.uint8 else to_uint8(image)


def epoch_order(samples: Sequence[Sample], per_image: int = 1, crop: int | None = None
                ) -> list[int]:
    """The sample position behind each index of an epoch: every sample `per_image` times,
    or with `crop` (a side in px) ``per_image`` times for each crop's worth of its area,
    rounded, at least ``per_image`` times (config "crops_by_area")."""
    per_image = max(1, int(per_image))
    times = [per_image * (max(1, round(s.height * s.width / crop ** 2)) if crop else 1)
             for s in samples]
    most = max(times, default=0)
    # round-robin, as repeating the list would: each pass holds every sample still due
    return [i for k in range(most) for i, t in enumerate(times) if k < t]


class ProjectDataset(Dataset):
    """(image tensor C×H×W, target) pairs: target an int64 class index or an H×W label map.

    `samples_per_image` > 1 repeats each image per epoch (e.g. several random crops);
    `crop_area` (a crop's side) repeats each as `epoch_order` says.
    """

    def __init__(self, source: DatasetSource, transform: Callable, channels: int = 3,
                 cache: ByteLRU | None = None, samples_per_image: int = 1,
                 crop_area: int | None = None) -> None:
        self.source = source
        self.transform = transform
        self.channels = channels
        self.cache = cache if cache is not None else ByteLRU(0)
        self.order = epoch_order(source.samples, samples_per_image, crop_area)

    def __len__(self) -> int:
        return len(self.order)

    def raw(self, index: int) -> tuple[np.ndarray, np.ndarray | int]:
        """The decoded uint8 image and its label (label map or class index), cached."""
        sample = self.source.samples[self.order[index]]
        hit = self.cache.get(sample.image_id)
        if hit is None:
            image = decode(sample.path, self.channels)
            target = (self.source.label_map(sample.image_id)
                      if task_of(self.source.task).label_map else None)
            hit = (image, target)
            self.cache.put(sample.image_id, hit)
        image, target = hit
        return image, (sample.label if target is None else target)

    def __getitem__(self, index: int):
        image, target = self.raw(index)
        if task_of(self.source.task).image_label:
            target = torch.tensor(target, dtype=torch.int64)
        return self.transform(image, target)


def crop_area(cfg: RunConfig) -> int | None:
    """The crop side `epoch_order` counts images' areas in, None unless the run trains on
    random crops with "crops_by_area"."""
    by_area = cfg.data.crops_by_area and cfg.data.resize_policy == "crop"
    return int(cfg.data.image_size) if by_area else None


# --- normalisation statistics -----------------------------------------------------------
def dataset_mean_std(samples: Sequence[Sample], channels: int, max_images: int = 200,
                     seed: int = 0) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (0..1 scale) over up to `max_images` sampled images."""
    chosen = list(samples)
    if len(chosen) > max_images:
        chosen = random.Random(seed).sample(chosen, max_images)
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    count = 0
    for sample in chosen:
        img = decode(sample.path, channels).astype(np.float64) / 255.0
        img = img.reshape(-1, channels)
        total += img.sum(axis=0)
        total_sq += np.square(img).sum(axis=0)
        count += img.shape[0]
    if count == 0:
        return [0.5] * channels, [0.25] * channels
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    std = np.maximum(std, 1e-3)
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


def resolve_channels(cfg: RunConfig, samples: Sequence[Sample],
                     records_channels: Sequence[int]) -> int:
    """config "channels": 1 or 3 as given; "auto": 3 for pretrained models, else 1 when
    every training image is single-channel, else 3."""
    value = cfg.data.channels
    if value in (1, 3):
        return int(value)
    if cfg.model.pretrained:
        return 3
    return 1 if records_channels and all(c == 1 for c in records_channels) else 3


# --- loaders ---------------------------------------------------------------------------
def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(dataset: Dataset, batch_size: int, *, train: bool, num_workers: int = 0,
                device: torch.device | None = None, seed: int = 0,
                collate_fn: Callable | None = None, sampler=None) -> DataLoader:
    """A DataLoader with the house settings: shuffled and drop_last for training, pinned
    memory on CUDA, persistent seeded workers when `num_workers` > 0. A `sampler` (e.g.
    distributed training's) replaces the shuffling. Without `collate_fn`, a dataset's own
    `collate_fn` attribute is used when it has one."""
    if collate_fn is None:  # a Subset (a rank's share) collates like its dataset
        collate_fn = getattr(getattr(dataset, "dataset", dataset), "collate_fn", None)
    if len(dataset) == 0:
        raise ConfigError("There are no labelled images to load.")
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    drop_last = bool(train and len(dataset) > batch_size)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=num_workers,
        pin_memory=bool(device is not None and device.type == "cuda"),
        persistent_workers=num_workers > 0,
        worker_init_fn=_seed_worker if num_workers > 0 else None,
        generator=generator,
        collate_fn=collate_fn,
    )


# --- everything a run needs ------------------------------------------------------------
@dataclass
class RunData:
    """The datasets, loaders and preprocessing facts of one run."""

    class_ids: list[int]
    class_names: list[str]
    channels: int
    normalize: dict
    train: ProjectDataset
    val: ProjectDataset | None
    full_image_val: bool  # semantic: validate whole images (`studio.ml.inference`)


def resolve_normalize(cfg: RunConfig, samples: Sequence[Sample], channels: int) -> dict:
    """{"mean", "std", "source"}: ImageNet statistics for ImageNet-pretrained models (or when
    asked), the train split's statistics otherwise, or the values given in the config."""
    norm = cfg.data.normalize
    if isinstance(norm, dict):
        mean, std = [float(v) for v in norm["mean"]], [float(v) for v in norm["std"]]
        if len(mean) != channels or len(std) != channels:
            raise ConfigError(f"'normalize' gives {len(mean)} mean / {len(std)} std values for "
                              f"{channels}-channel images.")
        return {"mean": mean, "std": std, "source": norm.get("source", "config")}
    # torchvision's COCO detectors were trained on ImageNet-normalised images as well
    if norm == "imagenet" or (norm == "auto" and cfg.model.pretrained in ("imagenet", "coco")):
        if channels == 1:
            return {"mean": [float(np.mean(IMAGENET_MEAN))], "std": [float(np.mean(IMAGENET_STD))],
                    "source": "imagenet"}
        return {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "source": "imagenet"}
    mean, std = dataset_mean_std(samples, channels, cfg.data.normalize_max_images,
                                 cfg.training.seed)
    return {"mean": mean, "std": std, "source": "dataset"}


def build_run_data(project, cfg: RunConfig, class_ids: Sequence[int] | None = None,
                   normalize: dict | None = None, channels: int | None = None) -> RunData:
    """Read the train/val splits and set up transforms for `cfg` (validated).

    Raises ConfigError when the train split holds no labelled image or fewer than two
    classes are labelled.
    """
    task = cfg.task
    class_ids = list(class_ids) if class_ids is not None else task_class_ids(project, task)
    names = {c.id: c.name for c in project.classes()}
    if len(class_ids) < 2:
        raise ConfigError(f"{task.capitalize()} needs at least two labelled classes; this "
                          f"project has {len(class_ids)}. Label a second class (for example "
                          "'background').")
    train_split, val_split = cfg.data.train_split, cfg.data.val_split
    train_src = read_split(project, task, train_split, class_ids)
    if not train_src.samples:
        kind = "tagged" if task_of(task).image_label else "region-annotated"
        raise ConfigError(f"The '{train_split}' split has no {kind} images to train on. "
                          "Label images in it or run a split first.")
    val_src = read_split(project, task, val_split, class_ids) if val_split else None
    excluded = set(cfg.data.exclude)  # e.g. a cross-validation fold
    if excluded:
        for src in (train_src, val_src):
            if src is not None:
                src.samples = [s for s in src.samples if s.image_id not in excluded]
        if not train_src.samples:
            raise ConfigError(f"Every labelled image of the '{train_split}' split is excluded; "
                              "nothing is left to train on.")
    if channels is None:
        channels = resolve_channels(cfg, train_src.samples,
                                    [s.channels for s in train_src.samples])
    if normalize is None:
        normalize = resolve_normalize(cfg, train_src.samples, channels)
    mean, std = normalize["mean"], normalize["std"]
    cache = ByteLRU(int(cfg.hardware.cache_mb * 2**20))
    size, policy, spec = cfg.data.image_size, cfg.data.resize_policy, cfg.augment
    train_tf = augment.build_transforms(spec, task, size, train=True, mean=mean, std=std,
                                        resize_policy=policy)
    train = ProjectDataset(train_src, train_tf, channels, cache, cfg.data.samples_per_image,
                           crop_area(cfg))
    full = task_of(task).label_map  # validated on whole images (`studio.ml.inference`)
    val = None
    if val_src is not None and val_src.samples:
        val = ProjectDataset(val_src, eval_transform(cfg, mean, std), channels, cache)
    return RunData(class_ids, [names.get(i, str(i)) for i in class_ids], channels, normalize,
                   train, val, full)
