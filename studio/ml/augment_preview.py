"""Augmented previews of a project image, for the GUI's preview grid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def preview(spec: dict | None, project, image_id: int, n: int, seed: int,
            task: str = "semantic", class_ids: Sequence[int] | None = None,
            image_size: int | tuple[int, int] | None = None) -> list[tuple[np.ndarray, Any]]:
    """``n`` augmented versions of a project image for display, deterministic for ``seed``.

    Returns (uint8 HxWx3 image, target) pairs: the target is the uint8 label map
    (semantic) or the class index of the image's tag (classification; -1 if untagged).
    """
    from studio.core.images import load_image, to_uint8
    from studio.core.rasterize import label_map

    record = project.image(image_id)
    image = load_image(record.abs_path, mode="rgb")
    if image.dtype != np.uint8:
        image = to_uint8(image)
    if class_ids is None:
        class_ids = [c.id for c in project.classes()]
    class_ids = list(class_ids)
    if task == "semantic":
        target: Any = label_map(project, image_id, class_ids)
    else:
        tags = [a.class_id for a in project.annotations(image_id, kind="tag")
                if a.class_id in class_ids]
        target = class_ids.index(tags[0]) if tags else -1
    from studio.ml.augment import SampleTransform

    tf = SampleTransform(spec, task, image_size, True, [0.0], [1.0])
    out = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(n):
            img, tgt = tf(image, target)
            arr = (img.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            if task == "semantic":
                tgt = tgt.numpy().astype(np.uint8)
            out.append((np.ascontiguousarray(arr), tgt))
    return out
