"""`make demo`: encode and decode the bundled sample photo with the shipped weights.

    examples/kodim23.png ─compress_image(q)─> demo-out/kodim23-q<q>.aec ─decompress_image─> .png
    prints bytes, bpp, PSNR-RGB and times per quality, and JPEG (Pillow) at the nearest size
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from aecodec.bench.metrics import psnr_rgb

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "kodim23.png"


def jpeg_near(image: Image.Image, target_bytes: int) -> tuple[int, int, float]:
    """Pillow JPEG quality whose size is closest to target_bytes: (quality, bytes, PSNR)."""
    ref = np.asarray(image)
    best = None
    for q in range(5, 96, 5):
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=q)
        size = buf.tell()
        if best is None or abs(size - target_bytes) < abs(best[1] - target_bytes):
            best = (q, size, psnr_rgb(ref, np.asarray(Image.open(buf).convert("RGB"))))
    return best


def main(argv=None) -> int:
    from aecodec import codec, registry

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path, default=SAMPLE)
    ap.add_argument("--out", type=Path, default=Path("demo-out"))
    ap.add_argument("--qualities", default="2,4,6,8")
    args = ap.parse_args(argv)

    image = Image.open(args.image).convert("RGB")
    ref = np.asarray(image)
    w, h = image.size
    args.out.mkdir(parents=True, exist_ok=True)
    loaded = registry.load(registry.DEFAULT_IMAGE_MODEL)
    print(f"{args.image.name}: {w}×{h}, model {loaded.variant.name} (weights {loaded.weights_sha256[:16]})")
    print(f"{'q':>3} {'bytes':>7} {'bpp':>6} {'PSNR':>6} {'enc s':>6} {'dec s':>6}   JPEG at nearest size")
    for q in [float(x) for x in args.qualities.split(",")]:
        t0 = time.perf_counter()
        data = codec.compress_image(image, q)
        t1 = time.perf_counter()
        out = codec.decompress_image(data)
        t2 = time.perf_counter()
        stem = f"{args.image.stem}-q{q:g}"
        (args.out / f"{stem}.aec").write_bytes(data)
        out.save(args.out / f"{stem}.png")
        p = psnr_rgb(ref, np.asarray(out))
        jq, jbytes, jp = jpeg_near(image, len(data))
        print(f"{q:>3g} {len(data):>7} {8 * len(data) / (w * h):>6.3f} {p:>6.2f} {t1 - t0:>6.2f} {t2 - t1:>6.2f}"
              f"   q{jq}: {jbytes} bytes, {jp:.2f} dB")
    print(f"outputs in {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
