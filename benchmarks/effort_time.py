"""Encode and decode seconds of one photo at each --effort, same process, same run.

    image ─compress_image(quality, effort=e)─> bytes (timed) ─decompress_image─> pixels (timed)
    for e in the efforts asked; bpp, PSNR and the rate–distortion cost bpp + λ·MSE beside them

    python benchmarks/effort_time.py --out benchmarks/results/image/effort_time.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from aecodec import effort, image, registry
from aecodec.bench.machine import describe_machine

KODAK = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "images" / "kodak"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path, default=KODAK / "kodim01.png")
    ap.add_argument("--quality", type=float, default=6.0)
    ap.add_argument("--efforts", default="0,1,3,5,7,9")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    pixels = np.asarray(Image.open(args.image).convert("RGB"))
    net = registry.load(registry.DEFAULT_IMAGE_MODEL).net
    lam = effort.rd_lambda(net.lambdas, args.quality - 1)
    image.decompress_image(image.compress_image(pixels[:64, :64], args.quality))  # warm-up
    rows = []
    for e in (int(v) for v in args.efforts.split(",")):
        t0 = time.perf_counter()
        data = image.compress_image(pixels, args.quality, effort=e)
        t1 = time.perf_counter()
        decoded = np.asarray(image.decompress_image(data), np.float64)
        t2 = time.perf_counter()
        mse = float(np.mean((decoded - pixels) ** 2))
        bpp = 8 * len(data) / (pixels.shape[0] * pixels.shape[1])
        rows.append({"effort": e, "steps": effort.EFFORT_STEPS[e], "bytes": len(data), "bpp": round(bpp, 5),
                     "psnr": round(10 * math.log10(255**2 / mse), 3), "rd_cost": round(bpp + lam * mse, 5),
                     "encode_seconds": round(t1 - t0, 2), "decode_seconds": round(t2 - t1, 3)})
        print(json.dumps(rows[-1]), flush=True)
    doc = {"name": "effort_time", "description": __doc__.splitlines()[0], "machine": describe_machine(),
           "image": args.image.name, "quality": args.quality, "rows": rows}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
