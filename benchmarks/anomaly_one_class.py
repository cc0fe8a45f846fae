"""One-class anomaly detection: the README recipe measured, with a model trained briefly on one class.

    # 0. NORMAL_TRAIN: links to ../shared/data/images/train/urban100__img_0{01..80}_*.webp (128 crops),
    #    NORMAL_HELDOUT: to urban100__img_0{81..99}_*.webp (32 crops)
    # 1. train on normal images, export a model file (the run in the results: 400 steps, 11 CPU-minutes)
    aecodec train image --arch hyperprior --init aecodec/weights/image-hyperprior-gain-v6.safetensors \\
        --data NORMAL_TRAIN --out runs/urban --steps 400 --batch-size 4 --crop 128 --lr 5e-5 --threads 1 \\
        --export runs/urban/model.safetensors
    # 2. this script: thresholds from held-out normal images, detection of other images and of defects
    python benchmarks/anomaly_one_class.py --model runs/urban/model.safetensors --normal NORMAL_HELDOUT \\
        --others ../shared/data/images/kodak,../shared/data/images/eval/mcmaster18 \\
        --out benchmarks/results/anomaly/one_class_urban.json

For the shipped general model and the class model: the threshold at 10 % false positives from the
held-out normal images' scores (bits per pixel at quality 6), how many other-class images (256×256
centre crops) score above it, the AUROC of normal against other, and the defect rates of
``aecodec bench anomaly`` on the held-out normal images (the foreign patch cut from an other-class
image). Also the likelihood-ratio score, class-model bits minus general-model bits per pixel, which
discounts how complex an image is for any model. Single-threaded.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from aecodec import analysis, coding
from aecodec.bench import anomaly
from aecodec.bench.machine import describe_machine

CROP = 256
FPR = 0.10


def load_crops(folder: Path) -> list[np.ndarray]:
    out = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() not in {".png", ".webp", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}:
            continue
        with Image.open(p) as im:
            a = np.asarray(im.convert("RGB"))
        h, w = a.shape[:2]
        y, x = max(0, (h - CROP) // 2), max(0, (w - CROP) // 2)
        out.append(a[y : y + CROP, x : x + CROP].copy())
    return out


def auroc(normal, other) -> float:
    """P(other scores above normal), ties counted half."""
    n, o = np.asarray(normal)[:, None], np.asarray(other)[None, :]
    return float(np.mean((o > n) + 0.5 * (o == n)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="model file trained on the normal class")
    ap.add_argument("--normal", required=True, type=Path, help="held-out normal images")
    ap.add_argument("--others", required=True, help="comma-separated folders of other-class images")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--quality", type=float, default=6.0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    coding.CODING_THREADS = 1
    t0 = time.perf_counter()
    normal = load_crops(args.normal)
    others = [c for d in args.others.split(",") for c in load_crops(Path(d))]
    models = {"general": analysis.resolve_model(None, "image"), "class": analysis.resolve_model(args.model, "image")}

    def bpp(img, name):
        return analysis.score_image(img, args.quality, model=models[name]).bits_per_pixel

    scores = {name: {"normal": [bpp(i, name) for i in normal], "other": [bpp(i, name) for i in others]}
              for name in models}
    scores["log_ratio"] = {k: list(np.subtract(scores["class"][k], scores["general"][k])) for k in ("normal", "other")}
    detection = {}
    for name, s in scores.items():
        t = analysis.suggest_threshold(s["normal"], FPR)
        detection[name] = {"threshold": round(t, 5), "normal_flagged": float(np.mean(np.array(s["normal"]) > t)),
                           "other_flagged": float(np.mean(np.array(s["other"]) > t)),
                           "auroc": round(auroc(s["normal"], s["other"]), 4),
                           "median_normal": round(float(np.median(s["normal"])), 5),
                           "median_other": round(float(np.median(s["other"])), 5)}
    defects = {}
    for name in ("general", "class"):
        rows = []
        for i, img in enumerate(normal):
            clean = analysis.score_image(img, args.quality, model=models[name])
            rng = np.random.default_rng([anomaly.SEED, 11, i])
            for kind in anomaly.DEFECTS:
                bad, box = anomaly.add_defect(img, kind, rng, others[i % len(others)])
                s = analysis.score_image(bad, args.quality, model=models[name])
                rows.append((kind, s.bits_per_pixel > clean.bits_per_pixel,
                             anomaly._overlaps(s.hottest_window(anomaly.WINDOW), box)))
        defects[name] = {kind: {"score_rises": float(np.mean([r[1] for r in rows if r[0] == kind])),
                                "hottest_window_hits": float(np.mean([r[2] for r in rows if r[0] == kind]))}
                         for kind in anomaly.DEFECTS}
    doc = {"model_file": Path(args.model).name, "class_model_weights": models["class"].weights_sha256[:16],
           "normal_heldout": str(args.normal), "n_normal": len(normal), "others": args.others, "n_other": len(others),
           "crop": CROP, "quality": args.quality, "fpr": FPR, "detection": detection, "defects_on_normal": defects,
           "seconds": round(time.perf_counter() - t0, 1), "machine": describe_machine(), "torch_threads": 1,
           "scores": {k: {kk: [round(x, 5) for x in vv] for kk, vv in v.items()} for k, v in scores.items()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps({"detection": detection, "defects_on_normal": defects}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
