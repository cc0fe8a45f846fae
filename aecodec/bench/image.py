"""Image benchmark runner: RD points and timings for aec, JPEG, WebP and AVIF on a folder of PNGs.

    data_dir/*.png (sorted, optional limit) ─load RGB─> images
    for codec, for quality, for image:
        image ─codec.encode─> bytes (timed) ─codec.decode─> RGB (timed)
        bytes, image, decoded ─metrics─> bpp, psnr-rgb, ms-ssim           (one per-image record)
    records ─aggregate─> per quality: mean bpp, psnr, ms-ssim; mean and median times
        ─> out_dir/<codec>.json   CompressAI results schema + machine, dataset, per_image, settings
    codec curves ─bdrate─> out_dir/summary.json (BD-rates; CompressAI reference decode time if aec ran)
    codec curves + published reference curves (Kodak data only) ─plot─> out_dir/rd.png

Timing: each codec first encodes and decodes the first image once untimed (model loading, JIT
compilation, library initialisation), then every call is timed with time.perf_counter. Times are
wall seconds in this process on this machine; summary.json names it and its load average.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path

import numpy as np
from PIL import Image

from aecodec.bench import bdrate, metrics
from aecodec.bench.codecs import get_codec
from aecodec.bench.machine import describe_machine
from aecodec.bench.plot import plot_rd

REFERENCE_DIR = Path(__file__).parent / "reference"


# ---------------------------------------------------------------- inputs

def list_images(data_dir: Path, limit: int | None = None) -> list[Path]:
    """The PNG files directly in data_dir, sorted by name, at most `limit` of them."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"image folder not found: {data_dir}")
    paths = sorted(p for p in data_dir.iterdir() if p.is_file() and p.suffix.lower() == ".png")
    if limit is not None:
        paths = paths[:limit]
    if not paths:
        raise FileNotFoundError(f"no PNG images in {data_dir}")
    return paths


def load_rgb(path: Path) -> Image.Image:
    """An 8-bit RGB image (alpha, palette and grey are converted to RGB)."""
    with Image.open(path) as image:
        image.load()
        return image.convert("RGB")


def load_references() -> list[dict]:
    """Published reference curves shipped in aecodec/bench/reference/*.json (sorted by file name)."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(REFERENCE_DIR.glob("*.json"))]


def _looks_like_kodak(sizes: list[tuple[int, int]]) -> bool:
    """24 images of 768x512 or 512x768: the Kodak set the published reference points were measured on."""
    return len(sizes) == 24 and all(s in {(768, 512), (512, 768)} for s in sizes)


# ---------------------------------------------------------------- measuring

def measure(codec, image: Image.Image, quality, name: str) -> dict:
    """Encode and decode one image at one quality; the per-image record."""
    data, encoding_time = metrics.timed(codec.encode, image, quality)
    decoded, decoding_time = metrics.timed(codec.decode, data)
    if decoded.size != image.size:
        raise RuntimeError(f"{codec.name} decoded {name} at {decoded.size}, expected {image.size}")
    original, reconstruction = np.asarray(image), np.asarray(decoded)
    width, height = image.size
    return {
        "image": name,
        "width": width,
        "height": height,
        "quality": quality,
        "bytes": len(data),
        "bpp": metrics.bpp(len(data), width, height),
        "psnr-rgb": metrics.psnr_rgb(original, reconstruction),
        "ms-ssim": metrics.ms_ssim_rgb(original, reconstruction),
        "encoding_time": encoding_time,
        "decoding_time": decoding_time,
    }


def _mean(values: list) -> float | None:
    """Mean, or None if any value is missing (a mean over a different subset would mislead)."""
    if not values or any(v is None for v in values):
        return None
    return float(statistics.fmean(values))


def aggregate(records: list[dict], qualities: list) -> dict:
    """Per-quality means (bpp, psnr-rgb, ms-ssim, times) and median times, in CompressAI's results layout.

    PSNR is the mean of per-image PSNRs, as CompressAI reports it. MS-SSIM is None at a quality where
    any image has none (smaller than 161 px on a side).
    """
    results = {key: [] for key in ("quality", "bpp", "psnr-rgb", "ms-ssim", "encoding_time", "decoding_time",
                                   "encoding_time_median", "decoding_time_median")}
    for quality in qualities:
        rows = [r for r in records if r["quality"] == quality]
        results["quality"].append(quality)
        for key in ("bpp", "psnr-rgb", "ms-ssim", "encoding_time", "decoding_time"):
            results[key].append(_mean([r[key] for r in rows]))
        results["encoding_time_median"].append(float(statistics.median(r["encoding_time"] for r in rows)))
        results["decoding_time_median"].append(float(statistics.median(r["decoding_time"] for r in rows)))
    return results


def run_codec(codec, images: list[tuple[str, Image.Image]], qualities: list, log=print) -> tuple[dict, list[dict]]:
    """All images at all qualities through one codec: (aggregated results, per-image records)."""
    warm_name, warm_image = images[0]
    codec.decode(codec.encode(warm_image, qualities[len(qualities) // 2]))  # untimed warm-up
    records = []
    for quality in qualities:
        rows = [measure(codec, image, quality, name) for name, image in images]
        records.extend(rows)
        point = aggregate(rows, [quality])
        ms_ssim = point["ms-ssim"][0]
        log(f"  {codec.name} q={quality}: {point['bpp'][0]:.4f} bpp, {point['psnr-rgb'][0]:.2f} dB, "
            f"ms-ssim {'n/a' if ms_ssim is None else f'{ms_ssim:.4f}'}, "
            f"encode {point['encoding_time'][0] * 1000:.1f} ms, decode {point['decoding_time'][0] * 1000:.1f} ms")
    return aggregate(records, qualities), records


# ---------------------------------------------------------------- CompressAI reference decode time

def time_compressai_reference_decode(image_size=(512, 768), repeats=3) -> dict:
    """Decode time of CompressAI's own MeanScaleHyperprior(N=128, M=192).decompress in this process.

    Weights are randomly initialised (torch.manual_seed(0)): the timing covers the same work as a
    trained model (entropy decoding of z and y with CompressAI's rANS coder, h_s, g_s), but the
    stream size and the reconstruction are meaningless. The input is a smooth synthetic image of
    image_size (H, W), padded to multiples of 64 as the model needs.
    """
    import torch
    import compressai
    from compressai.models import MeanScaleHyperprior

    height, width = image_size
    padded = (height + (-height % 64), width + (-width % 64))
    torch.manual_seed(0)
    model = MeanScaleHyperprior(N=128, M=192).eval()
    model.update(force=True)

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0 : padded[0], 0 : padded[1]] / max(padded)
    planes = [0.5 + 0.4 * np.sin(2 * np.pi * (k + 1) * (xx + 0.5 * yy)) for k in range(3)]
    array = np.clip(np.stack(planes) + 0.02 * rng.standard_normal((3, *padded)), 0, 1)
    x = torch.from_numpy(array).float()[None]

    decode_seconds, synthesis_seconds = [], []
    with torch.no_grad():
        compressed = model.compress(x)
        stream_bytes = sum(len(s[0]) for s in compressed["strings"])
        for _ in range(repeats):
            _, seconds = metrics.timed(model.decompress, compressed["strings"], compressed["shape"])
            decode_seconds.append(seconds)
        y_hat = model.g_a(x).round()
        for _ in range(repeats):
            _, seconds = metrics.timed(model.g_s, y_hat)
            synthesis_seconds.append(seconds)
    return {
        "model": "compressai.models.MeanScaleHyperprior(N=128, M=192)",
        "weights": "randomly initialised (torch.manual_seed(0)); for timing only, stream size and output meaningless",
        "measured": "model.decompress(strings, shape) after model.update(force=True): "
                    "rANS decoding of z and y + h_s + g_s",
        "image_size": [height, width],
        "padded_size": list(padded),
        "stream_bytes": stream_bytes,
        "repeats": repeats,
        "decode_seconds": decode_seconds,
        "decode_seconds_median": float(statistics.median(decode_seconds)),
        "g_s_seconds_median": float(statistics.median(synthesis_seconds)),
        "compressai": compressai.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


# ---------------------------------------------------------------- efforts

def effort_table(default: dict, efforts: dict[str, dict]) -> dict:
    """For each aec-eN run: BD-rate against the default encoder (effort 0) over the qualities both
    ran, and encode / decode seconds per image (means over every image and quality)."""
    def seconds(doc, key):
        return float(statistics.fmean(r[key] for r in doc["per_image"]))

    rows = {"aec": {"effort": 0, "bd_rate_vs_effort_0": None, "encode_seconds": seconds(default, "encoding_time"),
                    "decode_seconds": seconds(default, "decoding_time")}}
    for name, doc in sorted(efforts.items(), key=lambda kv: kv[1]["settings"]["effort"]):
        shared = sorted(set(doc["results"]["quality"]) & set(default["results"]["quality"]))
        pick = lambda d: aggregate([r for r in d["per_image"] if r["quality"] in shared], shared)
        rows[name] = {"effort": doc["settings"]["effort"], "qualities": shared,
                      "bd_rate_vs_effort_0": bdrate.compare_curves(pick(default), pick(doc)),
                      "encode_seconds": seconds(doc, "encoding_time"), "decode_seconds": seconds(doc, "decoding_time")}
    return {"what": "BD-rate of aecodec --effort N against the default encoder (negative: fewer bits at equal "
                    "quality), mean encode and decode seconds per image, same machine and run", "rows": rows}


# ---------------------------------------------------------------- output

def _json_safe(value):
    """Non-finite floats (PSNR of identical images is inf) become None: JSON has no inf or NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: Path, document: dict) -> Path:
    path = Path(path)
    path.write_text(json.dumps(_json_safe(document), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def run_image_bench(data_dir: Path, codecs: list[str], out_dir: Path, qualities: dict[str, list] | None = None,
                    limit: int | None = None, log=print) -> dict:
    """Benchmark `codecs` on the PNGs in data_dir; write <codec>.json, summary.json and rd.png to out_dir.

    qualities overrides a codec's default sweep ({"jpeg": [10, 50], ...}). BD-rates are of the test
    codec ("aec" if it ran, else the first codec named) against each other codec; they are also
    computed against the published CompressAI Kodak curves when the data looks like Kodak.
    Returns the summary (also written to summary.json) with the paths written under "files".
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if not codecs:
        raise ValueError("no codecs to benchmark")
    adapters = [get_codec(name) for name in codecs]  # unknown names fail before any work
    qualities = qualities or {}
    paths = list_images(data_dir, limit)
    images = [(p.name, load_rgb(p)) for p in paths]
    sizes = [image.size for _, image in images]
    out_dir.mkdir(parents=True, exist_ok=True)

    machine = describe_machine()
    load_average = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    dataset = {
        "name": data_dir.resolve().name,
        "path": str(data_dir.resolve()),
        "images": len(images),
        "sizes": {f"{w}x{h}": sizes.count((w, h)) for w, h in sorted(set(sizes))},
    }
    notes = []
    too_small = [name for name, image in images if min(image.size) < metrics.MS_SSIM_MIN_SIDE]
    if too_small:
        notes.append(f"MS-SSIM not computed (None) for {len(too_small)} image(s) smaller than "
                     f"{metrics.MS_SSIM_MIN_SIDE} px on a side, where 5-scale MS-SSIM is undefined: "
                     f"{', '.join(too_small)}; mean MS-SSIM is None at every quality")
        log(notes[-1])
    log(f"image bench: {len(images)} images from {data_dir}, codecs {', '.join(codecs)}; machine {machine['cpu']}, "
        f"{machine['cores']} cores, load average {load_average}")

    files, documents = {}, {}
    for codec in adapters:
        codec_qualities = sorted(qualities.get(codec.name, codec.qualities))
        log(f"{codec.name}: {codec.description}; qualities {codec_qualities}")
        results, records = run_codec(codec, images, codec_qualities, log)
        documents[codec.name] = {
            "name": codec.name,
            "description": codec.description,
            "results": results,
            "settings": codec.settings,
            "machine": machine,
            "dataset": dataset,
            "notes": list(notes),
            "per_image": records,
        }
        files[codec.name] = str(write_json(out_dir / f"{codec.name}.json", documents[codec.name]))

    test = "aec" if "aec" in documents else adapters[0].name
    bd_rates = {anchor: bdrate.compare_curves(doc["results"], documents[test]["results"])
                for anchor, doc in documents.items() if anchor != test}
    references = load_references()
    if _looks_like_kodak(sizes):
        bd_vs_published = {ref["name"]: bdrate.compare_curves(ref["results"], documents[test]["results"])
                           for ref in references}
        plotted_references = references
    else:
        bd_vs_published = {"skipped": "the published points are for the 24 Kodak images; this data is not that set"}
        plotted_references = []
        notes.append("published CompressAI Kodak curves left out of the plot and BD-rates: the data is not Kodak")

    summary = {
        "dataset": dataset,
        "machine": machine,
        "load_average_at_start": load_average,
        "codecs": {name: {"description": doc["description"], "settings": doc["settings"], "file": f"{name}.json"}
                   for name, doc in documents.items()},
        "bd_rate": {
            "test": test,
            "method": f"bjontegaard.bd_rate, {bdrate.METHOD}, over the quality range both curves cover",
            "sign": "percent rate change of the test codec vs the anchor at equal quality; negative = fewer bits",
            "quality_axes": {"psnr-rgb": "PSNR-RGB in dB", "ms-ssim-db": "-10*log10(1 - MS-SSIM)"},
            "anchors": bd_rates,
            "published_anchors": bd_vs_published,
        },
        "references": [{"name": ref["name"], "source": ref["source"]} for ref in references],
        "notes": notes,
    }
    efforts = {name: doc for name, doc in documents.items() if name.startswith("aec-e")}
    if efforts and "aec" in documents:
        summary["efforts"] = effort_table(documents["aec"], efforts)
    if "aec" in documents:
        log("timing CompressAI MeanScaleHyperprior(N=128, M=192).decompress for comparison ...")
        height, width = max(sizes, key=lambda s: s[0] * s[1])[::-1]
        summary["compressai_reference_decode"] = time_compressai_reference_decode((height, width))

    title = (f"{dataset['name']} ({dataset['images']} images) on {machine['cpu']}, {machine['cores']} cores")
    files["plot"] = str(plot_rd(list(documents.values()), plotted_references, out_dir / "rd.png", title))
    files["summary"] = str(out_dir / "summary.json")
    summary["files"] = files
    write_json(out_dir / "summary.json", summary)
    log(f"wrote {', '.join(files.values())}")
    return _json_safe(summary)
