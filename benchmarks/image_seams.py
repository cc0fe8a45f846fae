"""Do tile borders show on large photos? Overlapped tiles sharing ẑ (bitstream 1.5) vs independent
tiles (as aecodec 0.2.0 coded them) vs the model coding the image in one piece, same images, same run.

    Kodak photo ─Lanczos upscale─> 2560×1600 ─encode (q2, q6; 1024-px tiles)─> decode
    error jumps across tile borders vs across the other 64-px grid lines (aecodec.bench.seams);
    "whole": the same model without tiles (no file; aecodec.bench.seams.whole_image_decode), what
    the content alone gives at the tile-border lines; overlapped rows also report how many pixels
    equal the whole-image decode

    python benchmarks/image_seams.py --out benchmarks/results/image/seams.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from aecodec import codec, registry
from aecodec.bench.machine import describe_machine
from aecodec.bench.seams import seam_ratios, summarize, whole_image_decode
from aecodec.testing import smooth_image

KODAK = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "images" / "kodak"


def photos(kodak: Path, names: list[str], size: tuple[int, int]) -> dict[str, np.ndarray]:
    out = {}
    for name in names:
        im = Image.open(kodak / f"{name}.png").convert("RGB")
        if im.height > im.width:
            im = im.rotate(90, expand=True)
        out[name] = np.asarray(im.resize(size, Image.LANCZOS))
    out["smooth-synthetic"] = smooth_image(*size, seed=1)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kodak", type=Path, default=KODAK)
    ap.add_argument("--images", default="kodim01,kodim05,kodim12,kodim23")
    ap.add_argument("--size", default="2560x1600")
    ap.add_argument("--qualities", default="2,6")
    ap.add_argument("--tile", type=int, default=codec.DEFAULT_TILE)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    size = tuple(int(v) for v in args.size.lower().split("x"))
    rows, pooled, wholes = [], {}, {}
    loaded = registry.load(registry.DEFAULT_IMAGE_MODEL)
    for name, image in photos(args.kodak, args.images.split(","), size).items():
        for q in (float(v) for v in args.qualities.split(",")):
            for layout, independent in (("independent", True), ("overlapped", False)):
                t0 = time.perf_counter()
                data = codec.compress_image(image, q, tile=args.tile, independent_tiles=independent)
                t1 = time.perf_counter()
                decoded = np.asarray(codec.decompress_image(data))
                t2 = time.perf_counter()
                whole = wholes.setdefault((name, q), whole_image_decode(loaded, image, q))
                ratios = seam_ratios(image, decoded, args.tile)
                for kind, v in ratios.items():
                    pooled.setdefault((layout, q), {}).setdefault(kind, []).extend(v)
                mse = float(np.mean((image.astype(np.float64) - decoded) ** 2))
                rows.append({"image": name, "quality": q, "layout": layout, "bytes": len(data),
                             "psnr": round(10 * np.log10(255**2 / mse), 3), "encode_s": round(t1 - t0, 2),
                             "decode_s": round(t2 - t1, 2), **summarize(ratios),
                             "equal_to_whole": round(float(np.mean(decoded == whole)), 6),
                             "max_diff_to_whole": int(np.abs(decoded.astype(np.int16) - whole).max())})
                print(json.dumps(rows[-1]), flush=True)
            ratios = seam_ratios(image, wholes[(name, q)], args.tile)
            for kind, v in ratios.items():
                pooled.setdefault(("whole", q), {}).setdefault(kind, []).extend(v)
            rows.append({"image": name, "quality": q, "layout": "whole", **summarize(ratios)})
            print(json.dumps(rows[-1]), flush=True)
    summary = {f"{layout} q{q:g}": summarize(r) for (layout, q), r in pooled.items()}
    doc = {"name": "image_seams", "description": __doc__.splitlines()[0], "machine": describe_machine(),
           "size": args.size, "tile": args.tile, "rows": rows, "summary": summary,
           "how": "ratio = error jump across a line / median jump between neighbouring columns (rows); "
                  "tile_border: lines on the tile grid, grid: the other multiples of 64; whole: the model "
                  "without tiles (the content's own jumps at those lines)"}
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
