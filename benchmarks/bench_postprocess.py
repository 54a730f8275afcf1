"""Post-processing and readouts, on synthetic maps (random ellipses of 5 classes, noisy
softmax probabilities, so thresholding leaves speckle and holes to clean):

- threshold (argmax, min confidence) + open + close + components + fill holes on 1024^2
  and 4096^2 maps with 5 classes (targets 20 ms / 300 ms), beside it the obvious
  implementation (float argmax, then per-class full-image morphology and components),
  and where the time goes at 4096^2, step by step;
- dense CRF, 10 iterations, 512^2 RGB, 2 and 5 classes (target 500 ms), with the mean IoU
  it gains on a noisy case (probabilities blurred across the image edges);
- slider move to updated readout: one 1024^2 image (target 100 ms) and split-wide over 30
  images of 512^2 (target 1 s), called the way the Inspect workspace calls it.
Median of a few repeats, wall-clock and CPU (all threads); the load average before and
after says how busy the machine was. Run alone with
``python -m benchmarks.bench_postprocess``.
"""

from __future__ import annotations

import copy
import os
import statistics
import time

import cv2
import numpy as np

CLASSES = 5


def scene(size: int, classes: int, seed: int, noise: float = 1.0, strength: float = 4.0):
    """(label map, RGB image, class probabilities (C, H, W)) of random ellipses; the
    probabilities are the truth's logits (`strength`) blurred by blobs of noise."""
    rng = np.random.default_rng(seed)
    target = np.zeros((size, size), np.uint8)
    scale = size / 512
    for _ in range(int(12 * max(1.0, scale))):
        c = int(rng.integers(1, classes))
        centre = tuple(int(v) for v in rng.integers(0, size, 2))
        axes = tuple(int(v * scale) for v in rng.integers(20, 90, 2))
        cv2.ellipse(target, centre, axes, float(rng.uniform(0, 180)), 0, 360, c, -1)
    image = np.stack([(target * (37 * k + 40)) % 200 + 30 for k in (1, 2, 3)], axis=2)
    image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    # the network's mistakes come in blobs of a few pixels at 1024^2; a larger image shows
    # the same scene at a finer scale (blobs scale with it)
    cells = max(8, min(size, 1024) // 4)
    small = rng.normal(0, noise, (classes, cells, cells)).astype(np.float32)
    noise_maps = np.stack([cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST)
                           for m in small])
    logits = np.stack([(target == c) * strength for c in range(classes)]).astype(np.float32)
    logits += noise_maps + rng.normal(0, 0.5, logits.shape).astype(np.float32)
    logits -= logits.max(0)
    p = np.exp(logits)
    return target, image, (p / p.sum(0)).astype(np.float32)


def _time(fn, repeats: int = 5) -> float:
    """Median wall-clock milliseconds of `fn` (the first call, a warm-up, not counted)."""
    return _times(fn, repeats)[0]


def _times(fn, repeats: int = 5) -> tuple[float, float]:
    """Median wall-clock and CPU (all threads of this process) milliseconds of `fn`; on a
    busy shared machine the CPU figure shows the work itself."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


def _row(name: str, fn, target: str, repeats: int = 5) -> dict:
    wall, cpu = _times(fn, repeats)
    return {"name": name, "value": wall, "unit": f"ms (cpu {cpu:.0f} ms)", "target": target}


def _cleaning_recipe() -> dict:
    return {"background": 0, "steps": [
        {"op": "threshold", "min_confidence": 0.4},
        {"op": "morphology", "operation": "open", "kernel_size": 3},
        {"op": "morphology", "operation": "close", "kernel_size": 3},
        {"op": "components", "min_size": 50},
        {"op": "fill_holes", "max_area": 200}]}


def _obvious(p: np.ndarray) -> np.ndarray:
    labels = p.argmax(0)
    labels[p.max(0) < 0.4] = 255
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    for c in range(1, p.shape[0]):
        m = (labels == c).astype(np.uint8)
        m2 = cv2.morphologyEx(cv2.morphologyEx(m, cv2.MORPH_OPEN, kernel), cv2.MORPH_CLOSE, kernel)
        n, cc, stats, _ = cv2.connectedComponentsWithStats(m2)
        small = np.isin(cc, np.nonzero(stats[:, cv2.CC_STAT_AREA] < 50)[0])
        m2[small] = 0
        labels[(m == 1) & (m2 == 0)] = 0
        labels[(m2 == 1) & ((labels == 0) | (labels == 255))] = c
    return labels


def _step_rows(p: np.ndarray, size: int) -> list[dict]:
    """Each step of the cleaning recipe alone, on the previous step's output."""
    from studio.ml.postprocess import components, fill_holes, morphology, threshold

    steps = [("threshold", lambda _: threshold(p, "argmax", 0.4)),
             ("open", lambda x: morphology(x, "open", 3, num_classes=CLASSES)),
             ("close", lambda x: morphology(x, "close", 3, num_classes=CLASSES)),
             ("components", lambda x: components(x, 50, num_classes=CLASSES)),
             ("fill holes", lambda x: fill_holes(x, 200, num_classes=CLASSES))]
    rows, x = [], None
    for name, step in steps:
        rows.append(_row(f"  step {name} {size}^2", lambda step=step, x=x: step(x), "",
                         repeats=3))
        x = step(x)
    return rows


def _load_row(when: str) -> dict:
    one, five, _ = os.getloadavg()
    return {"name": f"load average {when} (1 min, 5 min; {os.cpu_count()} CPUs)",
            "value": f"{one:.2f}, {five:.2f}", "unit": "", "target": ""}


def _miou(pred: np.ndarray, target: np.ndarray, classes: int) -> float:
    from studio.ml.readouts import image_stats, readout

    return readout(image_stats(pred, target, classes, boundary=False))["mean_iou"]


def _crf_rows(classes: int) -> list[dict]:
    from studio.ml.postprocess import dense_crf

    rng = np.random.default_rng(7)
    target, image, _ = scene(512, classes, 3)
    onehot = np.stack([(target == c) for c in range(classes)]).astype(np.float32)
    # a network that blurs across edges and is noisy: boundaries off, speckle inside
    blurred = np.stack([cv2.GaussianBlur(m, (0, 0), 6) for m in onehot])
    logits = 4 * blurred + rng.normal(0, 0.9, blurred.shape).astype(np.float32)
    p = np.exp(logits - logits.max(0))
    p = (p / p.sum(0)).astype(np.float32)
    before = _miou(p.argmax(0), target, classes)
    after = _miou(dense_crf(p, image, iterations=10).argmax(0), target, classes)
    return [_row(f"dense CRF 10 it 512^2 RGB {classes} classes",
                 lambda: dense_crf(p, image, iterations=10), "<= 500", repeats=3),
            {"name": f"  mean IoU before -> after CRF ({classes} classes)",
             "value": f"{before:.3f} -> {after:.3f} ({after - before:+.3f})", "unit": "",
             "target": "gain > 0"}]


def run() -> list[dict]:
    from studio.ml.postprocess import apply_recipe
    from studio.ml.readouts import SplitReadout

    rows = [_load_row("before")]
    recipe = _cleaning_recipe()
    for size, target_ms in ((1024, "<= 20"), (4096, "<= 300")):
        _, _, p = scene(size, CLASSES, 1)
        rows.append(_row(f"threshold+open+close+components+fill {size}^2 x5",
                         lambda p=p: apply_recipe(recipe, p), target_ms,
                         repeats=5 if size == 1024 else 3))
        if size == 1024:
            ms = rows[-1]["value"]
            obvious = _time(lambda p=p: _obvious(p))
            rows.append({"name": "  obvious implementation 1024^2 x5 (ratio to ours)",
                         "value": f"{obvious:.1f} ms ({obvious / ms:.1f}x)", "unit": "",
                         "target": ""})
        else:
            rows += _step_rows(p, size)
    rows += _crf_rows(2)
    rows += _crf_rows(CLASSES)

    # one image: the GUI holds a SplitReadout of the current image; a slider moves the
    # closing kernel; update + readout is what the readout panel waits for.
    target, image, p = scene(1024, CLASSES, 2)
    one = SplitReadout([target], [p], [image])
    one.update(recipe)
    sizes = iter([5, 3] * 50)

    def move_one():
        r = copy.deepcopy(recipe)
        r["steps"][2]["kernel_size"] = next(sizes)
        one.update(r)
        one.image(0)

    rows.append(_row("slider move -> readout, one 1024^2 image x5", move_one, "<= 100"))
    scenes = [scene(512, CLASSES, 10 + i) for i in range(30)]
    split = SplitReadout([s[0] for s in scenes], [s[2] for s in scenes], [s[1] for s in scenes],
                         threads=2)
    split.update(recipe)

    def move_split():
        r = copy.deepcopy(recipe)
        r["steps"][2]["kernel_size"] = next(sizes)
        split.update(r)
        split.split()

    rows.append(_row("slider move -> split readout, 30 x 512^2 x5", move_split, "<= 1000",
                     repeats=3))
    rows.append(_load_row("after"))
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']}: {row['value']} {row['unit']} (target {row['target']})")
