"""Peak memory and time of encoding and decoding a large photo (default 6000×4000, 24 MP).

    Kodak image ─Lanczos upscale─> 6000×4000 PNG ─child: aecodec encode─> .aec ─child: aecodec decode─> .png
    peak RSS of each child (getrusage RUSAGE_CHILDREN, ru_maxrss) and wall time

    python benchmarks/image_memory.py --out benchmarks/results/image/memory_24mp.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from PIL import Image

from aecodec.bench.machine import describe_machine, run_cli_child

DEFAULT_SOURCE = Path(__file__).resolve().parents[1] / "examples" / "kodim23.png"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--size", default="6000x4000")
    ap.add_argument("--quality", default="6")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    w, h = map(int, args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big = tmp / "big.png"
        Image.open(args.source).convert("RGB").resize((w, h), Image.LANCZOS).save(big, compress_level=1)
        enc_s, enc_mib = run_cli_child(["encode", str(big), "-o", str(tmp / "big.aec"), "-q", args.quality, "--quiet"])
        size = (tmp / "big.aec").stat().st_size
        dec_s, dec_mib = run_cli_child(["decode", str(tmp / "big.aec"), "-o", str(tmp / "out.png"), "--quiet"])
        assert Image.open(tmp / "out.png").size == (w, h)
    doc = {
        "name": "image_memory", "description": __doc__.splitlines()[0], "machine": describe_machine(),
        "width": w, "height": h, "quality": args.quality, "bytes": size, "bpp": 8 * size / (w * h),
        "encode_seconds": round(enc_s, 2), "encode_peak_rss_mib": round(enc_mib, 1),
        "decode_seconds": round(dec_s, 2), "decode_peak_rss_mib": round(dec_mib, 1), "limit_mib": 3072,
    }
    print(json.dumps(doc, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return 0 if max(enc_mib, dec_mib) < 3072 else 1


if __name__ == "__main__":
    sys.exit(main())
