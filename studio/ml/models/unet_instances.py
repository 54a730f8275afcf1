"""The instance U-Net: our U-Net predicting foreground, touching boundaries and distance
to the edge, split into objects by a seeded watershed (`studio.ml.tasks.instance.split`).

It speaks the torchvision detection API so that the one detection path trains,
validates, tiles, evaluates and predicts it unchanged: ``model(images, targets)`` in
training mode returns its losses by name, ``model(images)`` in eval mode a list of
{"boxes", "labels", "scores", "masks" (N, 1, H, W) bool} per image, and ``model.roi_heads``
holds the thresholds that path sets (``score_thresh``, ``nms_thresh``,
``detections_per_img``) and the split's own ``seed_threshold``.

Input: with ``input_norm`` "image" (the default) each image's channels are first scaled
by the image's own mean and spread, as StarDist and Cellpose normalise each image: a dim
fluorescence image and a bright one look alike to the network (DSB 2018 holds images whose
mean grey level is 5 beside ones at 200). Whole images are scaled as a whole, also when
they are predicted window by window; training crops each by itself.

Test-time flips (config "tta", `flip_averaging`): the raw maps are averaged over flipped
copies of the image, each flipped back, before the split (as Cellpose's "augment").

Losses: foreground BCE + soft Dice (objects are a small share of the pixels), boundary
BCE weighted by ``boundary_weight`` (the touching band is thin and decides the split),
distance: mean squared error inside the objects times ``distance_weight`` (its dips
between touching objects make the seeds; unweighted, it was a tenth of the foreground
loss and crowded nuclei merged: on DSB 2018, in the same half hour of training, the
held-out mask mAP50 was 0.633 unweighted, 0.712 / 0.671 weighted 5 and 0.728 / 0.690
weighted 10, at training seeds 0 / 1), and a class cross entropy over object pixels when
there are several classes. (A BCE over every pixel, as StarDist learns its
object probability, was tried: on DSB 2018 its distance maps came out flat, with few
seeds, and the held-out mask mAP50 was 0.30 -- 0.34 at its best split thresholds --
against 0.49 with this loss, at the same half hour of training.)
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from studio.core.errors import ConfigError
from studio.ml.flips import flipped_views
from studio.ml.models import unet
from studio.ml.models.transfer import mark_parts
from studio.ml.tasks.instance.split import (
    MASK_THRESHOLD,
    MIN_AREA,
    SEED_THRESHOLD,
    instance_targets,
    label_from_masks,
    objects_of,
    split_instances,
)

MAPS = 3  # foreground, boundary, distance; class logits follow when K > 1
DEFAULT_OPTIONS: dict[str, Any] = {
    "depth": 4,
    "width": 16,
    "space_to_depth": 1,
    "detections_per_image": 500,
    "seed_threshold": SEED_THRESHOLD,
    "mask_threshold": MASK_THRESHOLD,
    "min_area": MIN_AREA,
    "boundary_weight": 5.0,
    "distance_weight": 10.0,
    "input_norm": "image",
}
NORM_EPS = 1e-3  # the least spread an image is divided by (a blank image stays blank)
# its description, beside Mask R-CNN's, is the instance task's
# (`studio.ml.tasks.instance.MAPS_SPLIT`)


class SplitHeads:
    """The thresholds the detection path sets on ``model.roi_heads``, and the split's."""

    def __init__(self, detections: int, seed_threshold: float, mask_threshold: float,
                 min_area: int) -> None:
        self.score_thresh = 0.05
        self.nms_thresh = 0.5
        self.detections_per_img = int(detections)
        self.seed_threshold = float(seed_threshold)
        self.mask_threshold = float(mask_threshold)
        self.min_area = int(min_area)


def check_options(options: dict[str, Any]) -> None:
    """ConfigError for options out of range (the U-Net's own are checked when built)."""
    for key in ("seed_threshold", "mask_threshold"):
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ConfigError(f"'model_options.{key}' must be a number in [0, 1), got {value!r}.")
    for key in ("detections_per_image", "min_area"):
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"'model_options.{key}' must be a positive integer, got "
                              f"{value!r}.")
    if options["input_norm"] not in ("image", "none"):
        raise ConfigError("'model_options.input_norm' must be 'image' or 'none', got "
                          f"{options['input_norm']!r}.")
    for key in ("boundary_weight", "distance_weight"):
        weight = options[key]
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
            raise ConfigError(f"'model_options.{key}' must be a positive number, got "
                              f"{weight!r}.")


class ImageStandardize(nn.Module):
    """(B, C, H, W) -> each image's channels minus their mean, over their spread."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(-2, -1), keepdim=True)
        std = x.std(dim=(-2, -1), keepdim=True) if x.shape[-1] * x.shape[-2] > 1 else \
            torch.ones_like(mean)
        return (x - mean) / std.clamp_min(NORM_EPS)


def _missing_means_unscaled(module, state_dict, prefix, *_args) -> None:
    """A state dict saved before inputs were scaled per image says nothing of it: its
    weights expect unscaled inputs."""
    key = prefix + "input_standardized"
    if key not in state_dict:
        state_dict[key] = torch.tensor(False)


class UNetInstances(nn.Module):
    """See the module docstring."""

    def __init__(self, num_classes: int, in_channels: int, options: dict[str, Any]) -> None:
        super().__init__()
        check_options(options)
        self.num_classes = int(num_classes)
        net_options = dict(unet.DEFAULT_OPTIONS)
        net_options.update(depth=options["depth"], width=options["width"],
                           space_to_depth=options["space_to_depth"])
        outputs = MAPS + (self.num_classes if self.num_classes > 1 else 0)
        self.net = unet.build_unet(outputs, in_channels, net_options)
        self.boundary_weight = float(options["boundary_weight"])
        self.distance_weight = float(options["distance_weight"])
        self.roi_heads = SplitHeads(options["detections_per_image"], options["seed_threshold"],
                                    options["mask_threshold"], options["min_area"])
        self.kept_maps: list[dict[str, np.ndarray]] | None = None  # see `keeping_maps`
        self.flips: tuple[tuple[int, ...], ...] = ((),)  # see `flip_averaging`
        # kept with the weights: they were trained on inputs scaled so, or not
        self.register_buffer("input_standardized",
                             torch.tensor(options["input_norm"] == "image"))
        self._register_load_state_dict_pre_hook(_missing_means_unscaled, with_module=True)
        self.standardize = ImageStandardize()

    def scaled(self, image: torch.Tensor) -> torch.Tensor:
        """One image (C, H, W) or a batch as the network takes it (see the docstring)."""
        if not bool(self.input_standardized):
            return image
        return self.standardize(image[None])[0] if image.dim() == 3 else self.standardize(image)

    def network(self) -> nn.Module:
        """What an export holds: the scaling (if any) and the U-Net, raw input to maps."""
        return nn.Sequential(self.standardize, self.net) if bool(self.input_standardized) \
            else self.net

    # --- maps ---------------------------------------------------------------------------
    def run_net(self, batch: torch.Tensor) -> torch.Tensor:
        """The network's raw output (B, C, H, W) of a scaled batch; out of training, the
        mean over `flips` (dims of the batch, each view flipped back)."""
        if self.training or len(self.flips) <= 1:
            return self.net(batch)
        return sum(flipped_views(self.net, batch, self.flips)) / len(self.flips)

    def maps(self, images: list[torch.Tensor]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Raw outputs (B, C, H, W) of a batch of images padded to one size, and the sizes."""
        sizes = [tuple(int(s) for s in im.shape[-2:]) for im in images]
        h, w = max(s[0] for s in sizes), max(s[1] for s in sizes)
        batch = torch.stack([F.pad(self.scaled(im), (0, w - im.shape[-1], 0, h - im.shape[-2]))
                             for im in images])
        return self.run_net(batch), sizes

    def forward(self, images: list[torch.Tensor], targets: list[dict] | None = None):
        raw, sizes = self.maps(images)
        if self.training:
            if targets is None:
                raise ValueError("targets are needed in training mode")
            return self.losses(raw, sizes, targets)
        return [self.split(raw[i, :, :h, :w]) for i, (h, w) in enumerate(sizes)]

    # --- training -----------------------------------------------------------------------
    def losses(self, raw: torch.Tensor, sizes, targets: list[dict]) -> dict[str, torch.Tensor]:
        b, _, h, w = raw.shape
        fg = np.zeros((b, h, w), np.float32)
        bd = np.zeros((b, h, w), np.float32)
        dist = np.zeros((b, h, w), np.float32)
        valid = np.zeros((b, h, w), np.float32)
        cls = np.full((b, h, w), -100, np.int64)
        for i, ((ih, iw), target) in enumerate(zip(sizes, targets, strict=True)):
            valid[i, :ih, :iw] = 1.0
            masks = target["masks"].detach().cpu().numpy().astype(bool)
            if not len(masks):
                continue
            f, t, d = instance_targets(masks[:, :ih, :iw])
            fg[i, :ih, :iw], bd[i, :ih, :iw], dist[i, :ih, :iw] = f, t, d
            if self.num_classes > 1:
                label = label_from_masks(masks[:, :ih, :iw])
                kinds = target["labels"].detach().cpu().numpy().astype(np.int64) - 1
                lookup = np.concatenate([[-100], kinds])
                cls[i, :ih, :iw] = lookup[label]
        dev = raw.device
        fg_t, bd_t, dist_t, valid_t = (torch.from_numpy(a).to(dev) for a in (fg, bd, dist, valid))
        n_valid = valid_t.sum().clamp_min(1.0)
        fg_logit, bd_logit = raw[:, 0].float(), raw[:, 1].float()
        bce = F.binary_cross_entropy_with_logits(fg_logit, fg_t, reduction="none")
        prob = torch.sigmoid(fg_logit) * valid_t
        dice = 1 - (2 * (prob * fg_t).sum() + 1) / (prob.sum() + fg_t.sum() + 1)
        bd_bce = F.binary_cross_entropy_with_logits(
            bd_logit, bd_t, reduction="none",
            pos_weight=torch.tensor(self.boundary_weight, device=dev))
        inside = fg_t * valid_t
        dist_err = (torch.sigmoid(raw[:, 2].float()) - dist_t) ** 2
        out = {"loss_foreground": (bce * valid_t).sum() / n_valid + dice,
               "loss_boundary": (bd_bce * valid_t).sum() / n_valid,
               "loss_distance": self.distance_weight * (dist_err * inside).sum()
               / inside.sum().clamp_min(1.0)}
        if self.num_classes > 1:
            cls_t = torch.from_numpy(cls).to(dev)
            if (cls_t >= 0).any():
                out["loss_class"] = F.cross_entropy(raw[:, MAPS:].float(), cls_t,
                                                    ignore_index=-100)
            else:
                out["loss_class"] = raw[:, MAPS:].sum() * 0.0
        return out

    def split_info(self) -> dict[str, Any]:
        """What an exported copy of ``net`` needs to give the same objects: the meaning of
        its output channels and the split's parameters."""
        heads = self.roi_heads
        scaled = bool(self.input_standardized)
        return {"scaling": ("inside the model: each image's channels minus their mean, over "
                            "their standard deviation (feed whole images)" if scaled else
                            "none beyond the input's"),
                "output": "logits N x C x H x W: channel 0 foreground, 1 touching border, "
                          "2 distance to the edge (each through a sigmoid: 0..1)"
                          + (", 3.. class logits" if self.num_classes > 1 else ""),
                "split": {"method": "seeded watershed on the distance map (seeds: distance "
                                    "> seed_threshold off the border; grown over foreground "
                                    "> mask_threshold; objects under min_area dropped)",
                          "seed_threshold": heads.seed_threshold,
                          "mask_threshold": heads.mask_threshold, "min_area": heads.min_area}}

    # --- prediction ---------------------------------------------------------------------
    def probabilities(self, raw: torch.Tensor) -> dict[str, np.ndarray]:
        """One image's raw (C, H, W) output as numpy maps: foreground, boundary, distance
        (0..1) and, with several classes, the class index of each pixel."""
        maps = torch.sigmoid(raw[:MAPS].float()).detach().cpu().numpy()
        out = {"foreground": maps[0], "boundary": maps[1], "distance": maps[2]}
        if self.num_classes > 1:
            out["classes"] = raw[MAPS:].argmax(0).detach().cpu().numpy()
        return out

    def detect_tiled(self, image: torch.Tensor, window: int, ys: list[int], xs: list[int],
                     bump: torch.Tensor) -> dict[str, torch.Tensor]:
        """Detections of one large (C, H, W) image: the maps predicted window by window
        at the corners `ys` x `xs` (each window padded to `window`), blended with the
        (window, window) weights `bump`, split once, so no object is cut at a window's
        edge. (`studio.ml.tasks.detection.predict.detect` gives the corners and weights.)"""
        _, height, width = image.shape
        image = self.scaled(image)  # the whole image's scale for every window
        bump = bump.to(image.device)
        total = weight = None
        for y0 in ys:
            for x0 in xs:
                tile = image[:, y0:y0 + window, x0:x0 + window]
                th, tw = tile.shape[-2:]
                tile = F.pad(tile, (0, window - tw, 0, window - th))
                raw = self.run_net(tile[None])[0, :, :th, :tw]
                if total is None:
                    total = raw.new_zeros((raw.shape[0], height, width))
                    weight = raw.new_zeros((height, width))
                w = bump[:th, :tw]
                total[:, y0:y0 + th, x0:x0 + tw] += raw * w
                weight[y0:y0 + th, x0:x0 + tw] += w
        return self.split(total / weight)

    def split(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """Detections of one image from its raw output, as the heads' thresholds say."""
        maps = self.probabilities(raw)
        if self.kept_maps is not None:
            self.kept_maps.append(maps)
        return {k: v.to(raw.device) for k, v in self.detections_of(maps).items()}

    def detections_of(self, maps: dict[str, np.ndarray], seed_threshold: float | None = None,
                      mask_threshold: float | None = None) -> dict[str, torch.Tensor]:
        """Detections (CPU tensors, as `forward` gives them) of one image's maps (as
        `probabilities` gives them) split at these thresholds (None: the heads')."""
        heads = self.roi_heads
        seed = heads.seed_threshold if seed_threshold is None else seed_threshold
        mask = heads.mask_threshold if mask_threshold is None else mask_threshold
        labels = split_instances(maps["foreground"], maps["boundary"], maps["distance"],
                                 seed, mask, heads.min_area)
        found = objects_of(labels, maps["foreground"], maps.get("classes"))
        keep = found["scores"] >= heads.score_thresh
        keep[np.flatnonzero(keep)[heads.detections_per_img:]] = False
        return {"boxes": torch.from_numpy(found["boxes"][keep]),
                "labels": torch.from_numpy(found["labels"][keep]),
                "scores": torch.from_numpy(found["scores"][keep]),
                "masks": torch.from_numpy(found["masks"][keep][:, None])}


@contextlib.contextmanager
def keeping_maps(model: UNetInstances, kept: list | None = None):
    """Within it, every image the model splits leaves its probability maps (as
    `UNetInstances.probabilities` gives them, in the image's own pixels) in the yielded
    list (`kept`, or a new one), so a caller may split them again with other parameters
    without re-running the network (Inspect's split sliders, the split's tuning)."""
    kept = [] if kept is None else kept
    old, model.kept_maps = model.kept_maps, kept
    try:
        yield kept
    finally:
        model.kept_maps = old


@contextlib.contextmanager
def flip_averaging(model: UNetInstances, flips):
    """Within it, the model's predictions are the mean over `flips` (tensor dims of an
    N x C x H x W batch, as `studio.ml.flips.tta_flips` gives them; () the image as
    it is)."""
    old = model.flips
    model.flips = tuple(tuple(int(d) for d in dims) for dims in flips) or ((),)
    try:
        yield
    finally:
        model.flips = old


def build_unet_instances(num_classes: int, in_channels: int, options: dict[str, Any],
                         pretrained_state: None = None) -> nn.Module:
    """The registry's builder (no published weights); its parts named for the training
    helpers (encoder levels, the 1x1 output layer)."""
    model = UNetInstances(num_classes, in_channels, options)
    levels = [f"net.downs.{i}" for i in range(len(model.net.downs))]
    mark_parts(model, backbone=["net.downs"], head=["net.head"], stages=[[n] for n in levels])
    return model
