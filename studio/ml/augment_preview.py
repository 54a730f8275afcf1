"""Augmented previews of a project image, for the GUI's preview grid, and the images worth
previewing: those with labels for the task (an unlabelled one shows no masks), by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from studio.ml.tasks import task_of

MAX_CHOICES = 5000  # images offered by name in the preview's list


def preview_choices(project, task: str, limit: int = MAX_CHOICES
                    ) -> tuple[list[tuple[int, str]], bool]:
    """(image id, name) of the images to preview, sorted by name, and whether they are
    labelled: the images with labels for `task`, else (none yet) every image. Names are
    the file names; files called alike (in other folders) are named by their path."""
    from collections import Counter

    from studio.ml.tasks import task_kinds

    labelled: set[int] = set()
    for kind in task_kinds(task):
        labelled.update(image_id for image_id, _c in project.image_classes(kind=kind))
    records = project.images()
    chosen = [r for r in records if r.id in labelled] or records
    alike = Counter(r.name for r in chosen)
    choices = sorted(((r.id, r.name if alike[r.name] == 1 else r.path) for r in chosen),
                     key=lambda c: (c[1].lower(), c[0]))
    return choices[:limit], bool(labelled)


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
    if task_of(task).label_map:
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
            if task_of(task).label_map:
                tgt = tgt.numpy().astype(np.uint8)
            out.append((np.ascontiguousarray(arr), tgt))
    return out
