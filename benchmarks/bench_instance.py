"""Instance segmentation of crowded small objects: the instance U-Net against Mask R-CNN.

- DSB 2018 nuclei (stage1_test, 65 images): 70/10/20 % split (seeded, as
  bench_detection), each method trained with the recommended config for at most
  ``--minutes`` (30) of training, then mask mAP50 on the held-out 20 % counted with
  maxDets at least the most objects in one image (and COCO's default 100 beside it).
  The plan is asked with the mirror question answered "yes", as a person would answer
  it for nuclei (a mirrored or rotated nucleus is still a nucleus). It picks the instance
  U-Net for this data; Mask R-CNN is trained with the instance task's default config
  given the same answers (the plan's flips, rotation and detections per image) and
  measured the same way. The plan turns the U-Net's test-time flips on with that
  answer, so its held-out figures are of the flip-averaged maps (Mask R-CNN has none).
- StarDist's example image (a second domain, never trained on): objects the DSB-trained
  U-Net finds against the 125 of its label image, and mask mAP50 on it.
- BCCD detection keeps its box mAP50 (benchmarks/bench_detection.py's measurement).
- split: how long Inspect's split sliders take to split one 512 x 512 image's cached
  maps again (about 300 touching discs, the maps the network learns to predict, with
  noise), median of repeats; no training, seconds.

``--tiny`` proves the script end to end in a few minutes (a handful of images, one
short epoch, small networks); its figures are no measurement of the methods.

    python -m benchmarks.bench_instance [dsb] [stardist] [bccd] [split] [--tiny] [--minutes M]
        [--device cuda] [--threads N] [--no-rcnn | --no-unet] [--keep FOLDER]
        [--unet-option KEY=JSON ...]

The methods train one after the other, each on ``--threads`` CPU threads (default: all
of the machine's, as the plan assumes; the plan is asked with the same number).

``--keep`` leaves the DSB project (its runs included) in FOLDER for a closer look;
``--unet-option`` changes one of the recommended U-Net's model options (an ablation, e.g.
``input_norm="none"``): such figures are no longer the recommended config's.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
DSB = DATASETS / "dsb2018_nuclei" / "stage1_test"
STARDIST = DATASETS / "stardist_example"
STARDIST_OBJECTS = 125
MINUTES = 30.0
TINY = {"images": (6, 2, 3), "minutes": 1.5}


def _load() -> str:
    return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())


MIRROR = "yes"  # the plan's question, answered for nuclei


def _dsb_project(folder: Path, tiny: bool):
    from studio.core.formats import import_dataset
    from studio.core.project import Project
    from studio.core.splits import random_split

    project = Project.create(folder)
    import_dataset(project, "instances", DSB)
    random_split(project, 0.7, 0.1, 0.2, seed=0)
    if tiny:
        for split, n in zip(("train", "val", "test"), TINY["images"], strict=True):
            ids = [r.id for r in project.images(split=split)]
            project.set_split(ids[n:], "none")
    return project


def _train(project, cfg: dict, minutes: float, label: str):
    """fit with a wall-clock budget: the run is stopped after `minutes` of training."""
    from studio.ml.fit import fit

    start = time.perf_counter()
    metric = cfg.get("early_stopping", {}).get("metric", "")

    def stop() -> bool:
        return time.perf_counter() - start > minutes * 60

    def on_epoch(r: dict) -> None:
        print(f"    {label} epoch {r['epoch']}: loss {r['train_loss']:.3f} {metric} "
              f"{r.get(metric, 'n/a')}  {r['elapsed'] / 60:.1f} min  ({_load()})", flush=True)

    result = fit(project, cfg, callbacks={"on_epoch": on_epoch}, stop=stop)
    which = "best" if result.checkpoints.get("best") else "last"
    return result, which, (time.perf_counter() - start) / 60


def _rows(name: str, metrics: dict, minutes: float, target: str = "") -> list[dict]:
    mask = metrics["mask"]
    return [
        {"name": f"DSB2018 held-out mask mAP50, {name} (maxDets {mask['max_dets']})",
         "value": mask["map50"], "unit": "mAP", "target": target},
        {"name": f"DSB2018 held-out mask mAP50, {name}, COCO default maxDets 100",
         "value": mask["map50_100"], "unit": "mAP"},
        {"name": f"DSB2018 held-out mask mAP@[.5:.95], {name}", "value": mask["map"],
         "unit": "mAP"},
        {"name": f"DSB2018 {name} training time", "value": minutes, "unit": "min",
         "target": "<= 30"},
    ]


def _stardist(project, run_id: int, which: str, device: str) -> list[dict]:
    """Objects found on StarDist's example image, and mask mAP50 against its labels."""
    from studio.core.formats import import_dataset
    from studio.ml.evaluation import evaluate_run
    from studio.ml.predict import predict

    report = import_dataset(project, "instances", STARDIST / "mask2d.tif",
                            STARDIST / "img2d.tif", split="none")
    image_id = report.added_ids[0] if report.added_ids else project.image_ids()[-1]
    dets = predict(project, run_id, [image_id], device=device, which=which)
    rows = [{"name": "StarDist example: objects found (DSB-trained U-Net)",
             "value": float(len(dets[0])), "unit": "objects",
             "target": f"~{STARDIST_OBJECTS}"}]
    # the DSB held-out images are measured already: the test split becomes this image,
    # and is given back afterwards (Mask R-CNN is measured on the DSB images next)
    held_out = [r.id for r in project.images(split="test")]
    project.set_split(held_out, "none")
    project.set_split([image_id], "test")
    try:
        metrics = evaluate_run(project, run_id, "test", which, device=device)
    finally:
        project.set_split([image_id], "none")
        project.set_split(held_out, "test")
    rows.append({"name": "StarDist example: mask mAP50 (second domain)",
                 "value": metrics["mask"]["map50"], "unit": "mAP"})
    return rows


def _rcnn_config(plan_cfg: dict, device: str, tiny: bool, threads: int) -> dict:
    """Mask R-CNN's config: the task's default with the plan's answers (splits, flips and
    rotation, detections per image), so both methods see the same data."""
    from studio.ml.config import default_config

    rcnn = default_config("instance")
    rcnn.update(device=device, cpu_threads=threads, seed=plan_cfg["seed"],
                splits=plan_cfg["splits"],
                augment=copy.deepcopy(plan_cfg["augment"]),
                detection=copy.deepcopy(plan_cfg["detection"]))
    need = plan_cfg["detection"]["max_detections"]
    rcnn["model_options"]["detections_per_image"] = max(
        need, rcnn["model_options"].get("detections_per_image", 100))
    if tiny:  # windows of the default 256 px: few per image, bounded memory
        rcnn.update(epochs=1, val_every=1, samples_per_image=1)
        rcnn["model_options"].update(min_size=256, max_size=256)
    return rcnn


def bench_dsb(device: str, tiny: bool, minutes: float, with_stardist: bool,
              with_rcnn: bool = True, with_unet: bool = True, keep: str = "",
              unet_options: dict | None = None, threads: int = 0, seed: int = 0
              ) -> list[dict]:
    import torch

    from studio.ml.evaluation import evaluate_run
    from studio.ml.plan import recommend

    if not DSB.is_dir():
        return [{"name": "DSB instance", "value": float("nan"), "unit": "skipped: no data"}]
    budget = TINY["minutes"] if tiny else minutes
    threads = threads or torch.get_num_threads()
    torch.set_num_threads(threads)  # what the plan counts its steps for
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(keep) if keep else Path(tmp) / "dsb"
        project = _dsb_project(folder, tiny)
        try:
            plan = recommend(project, "instance", mirror=MIRROR, device=device)
            cfg = copy.deepcopy(plan.config)
            print(f"    plan: {plan.reasons['model']}", flush=True)
            print(f"    epochs: {plan.reasons['epochs']}", flush=True)
            cfg.update(device=device, cpu_threads=threads, seed=seed)
            if seed:
                print(f"    training seed {seed} (the split's seed stays 0)", flush=True)
            if unet_options and cfg["model"] == "unet_instances":
                cfg["model_options"].update(unet_options)
                print(f"    ablation: {unet_options}", flush=True)
            if tiny:
                cfg.update(epochs=1, val_every=1, image_size=64, samples_per_image=1,
                           crops_by_area=False)
                if cfg["model"] == "unet_instances":
                    cfg["model_options"].update(depth=2, width=8)
            if with_unet:
                result, which, spent = _train(project, cfg, budget, cfg["model"])
                metrics = evaluate_run(project, result.run_id, "test", which, device=device)
                rows += _rows(cfg["model"], metrics, spent, ">= 0.7 and above Mask R-CNN")
                if with_stardist and STARDIST.is_dir():
                    rows += _stardist(project, result.run_id, which, device)
            if with_rcnn:
                rcnn = _rcnn_config(cfg, device, tiny, threads)
                result, which, spent = _train(project, rcnn, budget, rcnn["model"])
                metrics = evaluate_run(project, result.run_id, "test", which, device=device)
                rows += _rows(rcnn["model"], metrics, spent)
        finally:
            project.close()
    return rows


def bench_bccd(device: str, tiny: bool) -> list[dict]:
    """BCCD's box mAP50 with the default detection config (bench_detection's figure)."""
    from benchmarks import bench_detection

    if not tiny:
        return bench_detection.bench_bccd(device)
    from studio.core.formats import import_dataset
    from studio.core.project import Project
    from studio.ml.config import default_config
    from studio.ml.evaluation import evaluate_run

    source = DATASETS / "bccd_voc" / "BCCD"
    if not source.is_dir():
        return [{"name": "BCCD detection", "value": float("nan"), "unit": "skipped: no data"}]
    with tempfile.TemporaryDirectory() as tmp, Project.create(Path(tmp) / "bccd") as project:
        import_dataset(project, "voc", source)
        for split, n in (("train", 6), ("val", 2), ("test", 3)):
            ids = [r.id for r in project.images(split=split)]
            project.set_split(ids[n:], "none")
        cfg = default_config("detection")
        cfg.update(device=device, cpu_threads=1, epochs=1)
        cfg["model_options"].update(min_size=128, max_size=160)
        result, which, spent = _train(project, cfg, TINY["minutes"], cfg["model"])
        metrics = evaluate_run(project, result.run_id, "test", which, device=device)
    return [{"name": "BCCD test box mAP50 (tiny run: no measurement)",
             "value": metrics["box"]["map50"], "unit": "mAP", "target": "0.88 kept"},
            {"name": "BCCD tiny training time", "value": spent, "unit": "min"}]


def crowded_maps(size: int = 512, objects: int = 300, seed: int = 0) -> dict:
    """Probability maps of `objects` touching discs on a size x size image: the targets
    of `studio.ml.tasks.instance.split` with noise, blurred a little (a network's maps are smooth)."""
    import cv2
    import numpy as np

    from studio.ml.tasks.instance.split import instance_targets, label_from_masks

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    label = np.zeros((size, size), np.int32)
    for k in range(objects):
        cx, cy = rng.integers(0, size, 2)
        r = int(rng.integers(7, 14))
        label[((xx - cx) ** 2 + (yy - cy) ** 2 < r * r) & (label == 0)] = k + 1
    masks = np.stack([label == v for v in np.unique(label) if v])
    label = label_from_masks(masks)
    fg, border, dist = instance_targets(masks)

    def noisy(a):
        a = a.astype(np.float32) + rng.normal(0, 0.05, a.shape).astype(np.float32)
        return np.clip(cv2.GaussianBlur(a, (5, 5), 1.0), 0, 1)

    return {"foreground": noisy(fg), "boundary": noisy(border), "distance": noisy(dist),
            "objects": int(label.max())}


def bench_split(repeats: int = 7) -> list[dict]:
    """Seconds Inspect takes to split one 512 x 512 image's kept maps at a new seed
    threshold (`InstanceMaps.objects`, as the worker calls it: the maps kept as Inspect
    keeps them, each repeat at a seed not split before)."""
    import statistics

    from studio.ml.inspect.instance_maps import InstanceMaps
    from studio.ml.models.registry import build_model

    maps = crowded_maps()
    model = build_model("unet_instances", 1, 1, options={"depth": 1, "width": 4})
    kept = InstanceMaps("instance", model, 0.01, 1000)
    kept.keep(0, {k: maps[k] for k in ("foreground", "boundary", "distance")})
    times, found = [], 0
    for i in range(repeats):
        seed = 0.3 + 0.02 * i
        start = time.perf_counter()
        found = len(kept.objects(0, seed, 0.5))
        times.append(time.perf_counter() - start)
    return [{"name": f"Inspect re-split of a 512x512 image's maps ({maps['objects']} planted "
                     f"objects, {found} found), median of {repeats}",
             "value": statistics.median(times), "unit": "s",
             "target": "fast enough for a slider (debounced, in the worker)"}]


def run(parts=("dsb", "stardist", "bccd", "split"), device: str = "cpu", tiny: bool = False,
        minutes: float = MINUTES, with_rcnn: bool = True, with_unet: bool = True,
        keep: str = "", unet_options: dict | None = None, threads: int = 0,
        seed: int = 0) -> list[dict]:
    """Rows for `python -m benchmarks` (the full measurement: an hour and more on a CPU)."""
    rows: list[dict] = []
    if "dsb" in parts or "stardist" in parts:
        rows += bench_dsb(device, tiny, minutes, "stardist" in parts, with_rcnn, with_unet,
                          keep, unet_options, threads, seed)
    if "bccd" in parts:
        rows += bench_bccd(device, tiny)
    if "split" in parts:
        rows += bench_split()
    if tiny:
        for row in rows:
            row["name"] += " [tiny]"
    return rows


def _options(parser, pairs: list[str]) -> dict:
    import json

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            parser.error(f"--unet-option {pair!r}: give KEY=JSON, e.g. input_norm=\"none\"")
        if not sep:
            parser.error(f"--unet-option {pair!r}: give KEY=JSON")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", help="dsb, stardist, bccd, split (default: all)")
    parser.add_argument("--tiny", action="store_true",
                        help="a few images and one short epoch: proves the script, measures "
                             "nothing")
    parser.add_argument("--minutes", type=float, default=MINUTES,
                        help="training budget of each method")
    parser.add_argument("--device", default="cpu")
    methods = parser.add_mutually_exclusive_group()
    methods.add_argument("--no-rcnn", action="store_true",
                         help="train the recommended method only (Mask R-CNN's figure left out)")
    methods.add_argument("--no-unet", action="store_true",
                         help="train Mask R-CNN only (the recommended method's figures left "
                              "out)")
    parser.add_argument("--unet-option", action="append", default=[], metavar="KEY=JSON",
                        help="change a model option of the recommended U-Net (an ablation)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads of each method (default: all the machine's)")
    parser.add_argument("--seed", type=int, default=0,
                        help="training seed of each method (another seed: run-to-run spread)")
    parser.add_argument("--keep", default="",
                        help="make the DSB project in this (new) folder and leave it there")
    args = parser.parse_args()
    parts = tuple(args.parts) or ("dsb", "stardist", "bccd", "split")
    unknown = set(parts) - {"dsb", "stardist", "bccd", "split"}
    if unknown:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}; use dsb, stardist, bccd, "
                     "split")
    print(f"device {args.device}, {_load()}", flush=True)
    for row in run(parts, args.device, args.tiny, args.minutes, not args.no_rcnn,
                   not args.no_unet, args.keep, _options(parser, args.unet_option),
                   args.threads, args.seed):
        print(f"{row['name']}: {row['value']:.4g} {row.get('unit', '')} "
              f"{row.get('target', '')}", flush=True)


if __name__ == "__main__":
    main()
