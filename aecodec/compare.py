"""How close a decoded file is to its original: the benchmark's metrics, as ``aecodec compare``.

    compare(original, decoded)   -> dict: images PSNR-RGB and MS-SSIM-RGB (an .aec image is decoded
                                    first); audio log-mel distance, STOI and SI-SDR (an .aec file:
                                    its decode at the original rate; the decoded side resampled to
                                    the original's rate, both cut to the shorter)
    summary_line(doc)            -> the one line ``aecodec compare`` prints

Two files of different kinds (an image and audio) are a UsageError; different sizes or channel
counts, or audio under 0.25 s, an InputError.
"""

from __future__ import annotations

import math
from pathlib import Path

from aecodec.errors import InputError, UsageError
from aecodec.io import formats
from aecodec.io.formats import AUDIO_SUFFIXES


def compare(original: str, decoded: str) -> dict:
    """The metrics of ``decoded`` against ``original`` (file names; not stdin)."""
    paths = [original, decoded]
    if "-" in paths:
        raise UsageError("compare reads files, not stdin")
    audio_side = [_aec_modality(p) == "audio" if Path(p).suffix.lower() == ".aec" else formats.is_audio(p)
                  for p in paths]
    if audio_side[0] != audio_side[1]:
        raise UsageError("compare takes two images or two audio files")
    if audio_side[0] or Path(original).suffix.lower() in AUDIO_SUFFIXES:
        return compare_audio(original, decoded)
    return compare_images(original, decoded)


def summary_line(doc: dict) -> str:
    """compare's document in words, as ``aecodec compare`` prints it: "DECODED vs ORIGINAL: PSNR-RGB ..."."""
    if doc["modality"] == "audio":
        return (f"{doc['decoded']} vs {doc['original']}: log-mel distance {doc['log_mel']:.3f}, "
                f"STOI {doc['stoi']:.3f}, SI-SDR {doc['si_sdr']:.2f} dB")
    return (f"{doc['decoded']} vs {doc['original']}: PSNR-RGB {doc['psnr_rgb']:.2f} dB"
            + (f", MS-SSIM {doc['ms_ssim_rgb']:.4f}" if doc["ms_ssim_rgb"] is not None else
               ", MS-SSIM n/a (a side under 161 pixels)"))


def _aec_modality(path: str) -> str | None:
    from aecodec import container

    with open(path, "rb") as f:
        return container.ContainerReader(f).header.get("modality")


def _load_image(path: str):
    from aecodec import image as image_api
    from aecodec.io import image as image_io

    if Path(path).suffix.lower() == ".aec":
        return image_api.decompress_image(Path(path).read_bytes())
    return image_io.open_image(path)


def compare_images(original: str, decoded: str) -> dict:
    from aecodec.bench.metrics import ms_ssim_rgb, psnr_rgb
    from aecodec.io import image as image_io

    a, b = (image_io.to_planes(_load_image(p)).rgb for p in (original, decoded))
    if a.shape != b.shape:
        raise InputError(f"the images differ in size: {a.shape[1]}×{a.shape[0]} and {b.shape[1]}×{b.shape[0]}")
    psnr = psnr_rgb(a, b)
    return {"modality": "image", "original": original, "decoded": decoded, "width": a.shape[1], "height": a.shape[0],
            "psnr_rgb": round(psnr, 4) if math.isfinite(psnr) else None, "ms_ssim_rgb": ms_ssim_rgb(a, b)}


def compare_audio(original: str, decoded: str) -> dict:
    import numpy as np

    from aecodec.bench import audio_metrics
    from aecodec.io import audio as audio_io

    def load(path):
        if Path(path).suffix.lower() == ".aec":  # an aec file: its decode at the original rate
            from aecodec import audio

            return audio.read(path)
        src = audio_io.open_audio(path)
        try:
            data = np.concatenate(list(src.blocks()) or [np.zeros((0, src.channels), np.float32)])
        finally:
            src.close()
        return data, src.sample_rate

    (a, ra), (b, rb) = load(original), load(decoded)
    if a.shape[1] != b.shape[1]:
        raise InputError(f"the files differ in channels: {a.shape[1]} and {b.shape[1]}")
    if rb != ra:
        b = audio_metrics.resample(b, rb, ra)
    n = min(len(a), len(b))
    if n < ra // 4:
        raise InputError("too short to compare (under 0.25 s)")
    a, b = a[:n], b[:n]
    return {"modality": "audio", "original": original, "decoded": decoded, "sample_rate": ra, "frames": n,
            "log_mel": round(audio_metrics.log_mel(a, b, ra), 4), "stoi": round(audio_metrics.stoi(a, b, ra), 4),
            "si_sdr": round(audio_metrics.si_sdr(a, b), 3)}

