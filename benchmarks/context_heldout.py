"""A context-model run against v6 on real files: held-out crops and a training slice (over-fitting check).

    run checkpoint.pt or context snapshot ─export─> model file ─compress_image─> .aec bytes ─decompress─> PSNR
    the same crops with the shipped v6 at the same qualities, in the same run;
    result per slice and quality: total bytes of both, the byte change (%), the mean PSNR change (dB)

A context-only run keeps v6's transforms, so at equal quality the PSNR is (nearly) equal and the
byte change is the context's gain. The training slice is drawn the same way from the training
folder; a gain much larger there than on the held-out slice means the context nets over-fit.

    python benchmarks/context_heldout.py --run runs/image-v7-ctx5/checkpoint.pt \
        --heldout HELDOUT --train TRAIN --out benchmarks/results/image/v7_context_heldout.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from aecodec import compress_image, decompress_image, registry
from aecodec.bench.machine import describe_machine
from aecodec.bench.metrics import psnr_rgb

SUFFIXES = {".png", ".webp", ".jpg", ".jpeg"}


def model_file(run: Path, tmp: Path) -> Path:
    """A run's checkpoint (.pt) or a context snapshot (.safetensors) -> a loadable model file."""
    import torch

    from aecodec.train.export import export_checkpoint

    if run.suffix == ".pt":
        return export_checkpoint(run, tmp / "model.safetensors")
    from safetensors.torch import load_file

    from aecodec.models.context import ContextHyperprior
    from aecodec.train.common import save_checkpoint
    from aecodec.train.image import _from_snapshot

    net = ContextHyperprior(N=128, M=192)
    net.load_state_dict(_from_snapshot(load_file(str(run)), net))
    ckpt = tmp / "snapshot.pt"
    save_checkpoint(ckpt, net, torch.optim.Adam(net.parameters()), 0, {"N": 128, "M": 192, "arch": "context"})
    return export_checkpoint(ckpt, tmp / "model.safetensors")


def every(folder: Path, k: int, limit: int) -> list[Path]:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)
    return paths[::k][:limit]


def code(paths: list[Path], quality: float, model) -> tuple[int, list[float]]:
    total, psnrs = 0, []
    for p in paths:
        with Image.open(p) as im:
            rgb = im.convert("RGB")
        data = compress_image(rgb, quality, model=model, threads=1)
        total += len(data)
        psnrs.append(psnr_rgb(rgb, decompress_image(data, model=model, threads=1)))
    return total, psnrs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="checkpoint.pt of a context run, or a context snapshot")
    ap.add_argument("--heldout", type=Path, required=True)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--every", type=int, default=4, help="held-out slice: every k-th file")
    ap.add_argument("--limit", type=int, default=31, help="files per slice")
    ap.add_argument("--qualities", default="1,4,7,10")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    from aecodec.modelfile import load_model_file

    qualities = [float(q) for q in args.qualities.split(",")]
    heldout = every(args.heldout, args.every, args.limit)
    n_train = len([p for p in args.train.iterdir() if p.suffix.lower() in SUFFIXES])
    train = every(args.train, max(1, n_train // args.limit), args.limit)
    v6 = registry.load(registry.DEFAULT_IMAGE_MODEL)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        v7 = load_model_file(model_file(args.run, Path(tmp)))
        rows = []
        for name, paths in (("heldout", heldout), ("train", train)):
            for q in qualities:
                b6, p6 = code(paths, q, v6)
                b7, p7 = code(paths, q, v7)
                rows.append({"slice": name, "files": len(paths), "quality": q, "v6_bytes": b6, "v7_bytes": b7,
                             "bytes_change_pct": round(100 * (b7 / b6 - 1), 2),
                             "psnr_change_db": round(float(np.mean(p7) - np.mean(p6)), 3),
                             "v6_psnr": round(float(np.mean(p6)), 3)})
                print(json.dumps(rows[-1]), file=sys.stderr)
    result = {"name": "context_heldout", "description": __doc__.splitlines()[0], "run": str(args.run),
              "machine": describe_machine(), "seconds": round(time.time() - t0, 1), "rows": rows}
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
