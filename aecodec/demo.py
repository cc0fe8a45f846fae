"""`make demo`: encode and decode the bundled sample photo and speech clip with the shipped weights.

    examples/kodim23.png ─compress_image(q)─> demo-out/kodim23-q<q>.aec ─decompress_image─> .png
        prints bytes, bpp, PSNR-RGB and times per quality, and JPEG (Pillow) at the nearest size
    examples/vctk-p225_003.flac ─audio.compress(kbps)─> demo-out/…-<kbps>k.aec ─audio.decompress─> .wav
        prints bytes, measured kbps, SI-SDR, log-mel distance and speed (× real time)
"""

from __future__ import annotations

import argparse
import io
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from aecodec.bench.metrics import psnr_rgb

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SAMPLE = EXAMPLES / "kodim23.png"
SPEECH_SAMPLE = EXAMPLES / "vctk-p225_003.flac"


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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path, default=SAMPLE)
    ap.add_argument("--out", type=Path, default=Path("demo-out"))
    ap.add_argument("--qualities", default="2,4,6,8,10")
    ap.add_argument("--speech", type=Path, default=SPEECH_SAMPLE)
    ap.add_argument("--kbps", default="3,6,12", help="speech bitrates")
    args = ap.parse_args(argv)
    image_demo(args)
    print()
    speech_demo(args)
    print(f"outputs in {args.out}/")
    return 0


def image_demo(args) -> None:
    from aecodec import image as image_api
    from aecodec import registry

    image = Image.open(args.image).convert("RGB")
    ref = np.asarray(image)
    w, h = image.size
    args.out.mkdir(parents=True, exist_ok=True)
    loaded = registry.load(registry.DEFAULT_IMAGE_MODEL)
    print(f"{args.image.name}: {w}×{h}, model {loaded.variant.name} (weights {loaded.weights_sha256[:16]})")
    print(f"{'q':>3} {'bytes':>7} {'bpp':>6} {'PSNR':>6} {'enc s':>6} {'dec s':>6}   JPEG at nearest size")
    for q in [float(x) for x in args.qualities.split(",")]:
        t0 = time.perf_counter()
        data = image_api.compress_image(image, q)
        t1 = time.perf_counter()
        out = image_api.decompress_image(data)
        t2 = time.perf_counter()
        stem = f"{args.image.stem}-q{q:g}"
        (args.out / f"{stem}.aec").write_bytes(data)
        out.save(args.out / f"{stem}.png")
        p = psnr_rgb(ref, np.asarray(out))
        jq, jbytes, jp = jpeg_near(image, len(data))
        print(f"{q:>3g} {len(data):>7} {8 * len(data) / (w * h):>6.3f} {p:>6.2f} {t1 - t0:>6.2f} {t2 - t1:>6.2f}"
              f"   q{jq}: {jbytes} bytes, {jp:.2f} dB")


def speech_demo(args) -> None:
    import soundfile as sf

    from aecodec import audio
    from aecodec.dsp import log_mel_distance, si_sdr

    x, rate = sf.read(str(args.speech), dtype="float32", always_2d=True)
    seconds = len(x) / rate
    loaded = audio.choose_model(rate, x.shape[1], None, samples=x)  # as compress() below picks
    print(f"{args.speech.name}: {seconds:.2f} s, {rate} Hz ×{x.shape[1]}, model {loaded.variant.name} "
          f"(weights {loaded.weights_sha256[:16]})")
    print(f"{'-b':>4} {'bytes':>6} {'kbps':>6} {'SI-SDR':>7} {'log-mel':>7} {'enc ×RT':>8} {'dec ×RT':>8}")
    for kbps in [float(k) for k in args.kbps.split(",")]:
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:  # a rate below the model's: said in the table
            warnings.simplefilter("always", audio.RateWarning)
            data = audio.compress(x, rate, kbps)
        t1 = time.perf_counter()
        y, _ = audio.decompress(data)
        t2 = time.perf_counter()
        stem = f"{args.speech.stem}-{kbps:g}k"
        (args.out / f"{stem}.aec").write_bytes(data)
        sf.write(str(args.out / f"{stem}.wav"), y, rate)
        print(f"{kbps:>4g} {len(data):>6} {8 * len(data) / 1000 / seconds:>6.2f} {si_sdr(x[:, 0], y[:, 0]):>7.2f} "
              f"{log_mel_distance(x[:, 0], y[:, 0], rate):>7.3f} {seconds / (t1 - t0):>8.1f} {seconds / (t2 - t1):>8.1f}"
              + ("  (below the model's lowest rate)" if any(issubclass(w.category, audio.RateWarning) for w in caught) else ""))


if __name__ == "__main__":
    sys.exit(main())
