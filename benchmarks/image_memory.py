"""Peak memory and time of encoding and decoding a large photo (default 6000×4000, 24 MP).

    Kodak image ─Lanczos upscale─> 6000×4000 PNG ─child: aecodec encode─> .aec ─child: aecodec decode─> .png
    peak RSS of each child (getrusage RUSAGE_CHILDREN, ru_maxrss) and wall time, for the default
    overlapped tiles sharing ẑ (bitstream 1.5) and, in the same run, independent tiles (--independent-tiles,
    the 0.2.0 layout)

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
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big = tmp / "big.png"
        Image.open(args.source).convert("RGB").resize((w, h), Image.LANCZOS).save(big, compress_level=1)
        for layout, extra in (("independent", ["--independent-tiles"]), ("overlapped", [])):
            enc_s, enc_mib = run_cli_child(["encode", str(big), "-o", str(tmp / "big.aec"), "-q", args.quality,
                                            "--quiet", "-f", *extra])
            size = (tmp / "big.aec").stat().st_size
            dec_s, dec_mib = run_cli_child(["decode", str(tmp / "big.aec"), "-o", str(tmp / "out.png"), "--quiet", "-f"])
            assert Image.open(tmp / "out.png").size == (w, h)
            runs[layout] = {"bytes": size, "bpp": 8 * size / (w * h), "encode_seconds": round(enc_s, 2),
                            "encode_peak_rss_mib": round(enc_mib, 1), "decode_seconds": round(dec_s, 2),
                            "decode_peak_rss_mib": round(dec_mib, 1)}
    new, old = runs["overlapped"], runs["independent"]
    doc = {
        "name": "image_memory", "description": __doc__.splitlines()[0], "machine": describe_machine(),
        "width": w, "height": h, "quality": args.quality, **new, "limit_mib": 2048, "independent_tiles": old,
        "wall_ratio_vs_independent": {"encode": round(new["encode_seconds"] / old["encode_seconds"], 3),
                                      "decode": round(new["decode_seconds"] / old["decode_seconds"], 3)},
    }
    print(json.dumps(doc, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return 0 if max(new["encode_peak_rss_mib"], new["decode_peak_rss_mib"]) < doc["limit_mib"] else 1


if __name__ == "__main__":
    sys.exit(main())
