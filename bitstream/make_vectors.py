"""Regenerate the conformance vectors in bitstream/vectors/ (run from the repository root).

    python bitstream/make_vectors.py

Vectors are committed; tests check that each decodes to its .json and that
re-encoding reproduces the bytes, so a change here that alters a vector is a
format change (see SPEC.md, versioning policy).
"""

import json
from pathlib import Path

import numpy as np

from aecodec import container, entropy

OUT = Path(__file__).parent / "vectors"
# audio-music-24k-0.2.0.* was written by release 0.2.0 itself (commit 931f075) and is never
# regenerated: it pins that release's music files (tests/test_vectors.py RELEASE_0_2_0).
# image-overlap-200x120.* (1.4: overlapped tiles with tile-local ẑ, commit 3982079) is no longer
# written by aecodec, which writes 1.5 instead; it is kept and never regenerated.


def gaussian_tables(scales, precision):
    """Small discretized-Gaussian tables in CompressAI's layout (last symbol = escape)."""
    from math import erf, sqrt

    cdfs, lengths, offsets = [], [], []
    for s in scales:
        half = max(1, int(np.ceil(3 * s)))
        values = np.arange(-half, half + 1)
        cdf_f = lambda x: 0.5 * (1 + erf(x / (s * sqrt(2))))
        pmf = np.array([cdf_f(v + 0.5) - cdf_f(v - 0.5) for v in values] + [1e-3])
        total = 1 << precision
        freq = np.maximum(1, np.floor(pmf / pmf.sum() * (total - len(pmf)))).astype(np.int64)
        freq[np.argmax(freq)] += total - freq.sum()
        cdfs.append([0] + np.cumsum(freq).tolist())
        lengths.append(len(pmf) + 1)
        offsets.append(-half)
    width = max(lengths)
    cdfs = [c + [0] * (width - len(c)) for c in cdfs]
    return cdfs, lengths, offsets


def coder_vector(name, scales, precision, n, seed):
    cdfs, lengths, offsets = gaussian_tables(scales, precision)
    rng = np.random.default_rng(seed)
    indexes = rng.integers(0, len(scales), n)
    symbols = np.round(rng.normal(0, 1, n) * np.array(scales)[indexes]).astype(np.int64)
    symbols[:6] = [2**31 - 1, -(2**31), 1000, -1000, 7, -7]  # escapes of every length class
    doc = {"precision": precision, "cdfs": cdfs, "cdf_lengths": lengths, "offsets": offsets,
           "indexes": indexes.tolist(), "symbols": symbols.tolist()}
    data = entropy.encode(doc["symbols"], doc["indexes"], cdfs, lengths, offsets, precision)
    (OUT / f"{name}.rc").write_bytes(data)
    (OUT / f"{name}.json").write_text(json.dumps(doc, separators=(",", ":")) + "\n")


def container_vector(name, version, compress_header):
    """The same chunks with a plain (1.0) or a deflated (1.1) header."""
    header = {"modality": "test", "note": "aec container conformance vector", "version": version}
    chunks = [("AAAA", b"first chunk"), ("EMPT", b""), ("BIN0", bytes(range(256)))]
    (OUT / f"container-{name}.aec").write_bytes(container.pack(header, chunks, compress_header))
    doc = {"header": header, "chunks": [{"tag": t, "payload_hex": p.hex()} for t, p in chunks]}
    (OUT / f"container-{name}.json").write_text(json.dumps(doc, indent=1) + "\n")


def image_vector():
    """A 72×40 crop of the bundled sample coded with the shipped default model at quality 5,
    plus the decoded pixels. Symbols decode exactly (their CRC is in the file); pixels come
    from a float synthesis transform and are expected within ±1 on other CPUs."""
    from PIL import Image

    from aecodec import codec

    sample = Path(__file__).resolve().parents[1] / "examples" / "kodim23.png"
    crop = Image.open(sample).convert("RGB").crop((300, 150, 372, 190))
    data = codec.compress_image(crop, 5)
    (OUT / "image-q5-72x40.aec").write_bytes(data)
    codec.decompress_image(data).save(OUT / "image-q5-72x40.expected.png")
    doc = {"width": 72, "height": 40, "mode": "RGB", "model": codec.read_info(data).header["model"],
           "pixel_tolerance": 1, "expected": "image-q5-72x40.expected.png"}
    (OUT / "image-q5-72x40.json").write_text(json.dumps(doc, indent=1) + "\n")


def audio_vector():
    """A short stereo 22.05 kHz clip through the shipped speech model (resampling, mid/side)."""
    import numpy as np

    from aecodec import audio

    rate = 22050
    t = np.arange(int(0.6 * rate)) / rate
    left = 0.3 * np.sin(2 * np.pi * 180 * t) * np.hanning(len(t))
    x = np.stack([left, 0.6 * left + 0.05 * np.sin(2 * np.pi * 700 * t)], axis=1).astype(np.float32)
    data = audio.compress(x, rate, 6, model="speech")
    y, _ = audio.decompress(data)
    (OUT / "audio-speech-6k-stereo.aec").write_bytes(data)
    np.save(OUT / "audio-speech-6k-stereo.expected.npy", y)
    doc = {"sample_rate": rate, "channels": 2, "frames": len(x), "model": audio.read_info(data).header["model"],
           "sample_tolerance": 1e-4, "expected": "audio-speech-6k-stereo.expected.npy"}
    (OUT / "audio-speech-6k-stereo.json").write_text(json.dumps(doc, indent=1) + "\n")


def audio_ladder_vector():
    """A mono 16 kHz clip at -b 12: the speech rate ladder's top rung (envelope aec-env-v2-b64, 1.3)."""
    import numpy as np

    from aecodec import audio

    rate = 16000
    t = np.arange(int(0.9 * rate)) / rate
    f0 = 140 + 30 * np.sin(2 * np.pi * 3 * t)  # a voiced sound with vibrato: harmonics that move
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(0.2 / k * np.sin(k * phase) for k in range(1, 20)) * np.hanning(len(t)) ** 0.5
    x = x.astype(np.float32)
    data = audio.compress(x, rate, 12, model="speech")
    y, _ = audio.decompress(data)
    (OUT / "audio-speech-12k-ladder.aec").write_bytes(data)
    np.save(OUT / "audio-speech-12k-ladder.expected.npy", y)
    doc = {"sample_rate": rate, "channels": 1, "frames": len(x), "model": audio.read_info(data).header["model"],
           "envelope": audio.read_info(data).header["audio"]["envelope"],
           "sample_tolerance": 1e-4, "expected": "audio-speech-12k-ladder.expected.npy"}
    (OUT / "audio-speech-12k-ladder.json").write_text(json.dumps(doc, indent=1) + "\n")


def context_vector():
    """SPEC §6.1 with the seeded tiny context model of ``aecodec.testing`` (random weights, so
    only this implementation can decode it): pins the coding order by group and pass and the
    float64 parameters until a context model ships. Two independent 64-px tiles (§6), quality 2.5."""
    from PIL import Image

    from aecodec import codec
    from aecodec.testing import smooth_image, tiny_context_model

    model = tiny_context_model()
    data = codec.compress_image(smooth_image(96, 48, seed=11), 2.5, model=model, tile=64, independent_tiles=True)
    (OUT / "image-context-tiny.aec").write_bytes(data)
    codec.decompress_image(data, model=model).save(OUT / "image-context-tiny.expected.png")
    doc = {"width": 96, "height": 48, "mode": "RGB", "model": "aecodec.testing.tiny_context_model()",
           "pixel_tolerance": 1, "expected": "image-context-tiny.expected.png"}
    (OUT / "image-context-tiny.json").write_text(json.dumps(doc, indent=1) + "\n")


def overlap_vector():
    """SPEC §6.2 + §6.3 (1.5): a 200×120 crop of the bundled sample in 64-px tiles (4 × 2, the last
    column and row padded) with the shipped default model at quality 4: overlapped synthesis
    windows and shared-ẑ windows across tile borders and the image's padded edge."""
    from PIL import Image

    from aecodec import codec

    sample = Path(__file__).resolve().parents[1] / "examples" / "kodim23.png"
    crop = Image.open(sample).convert("RGB").crop((250, 120, 450, 240))
    data = codec.compress_image(crop, 4, tile=64)
    (OUT / "image-shared-hyper-200x120.aec").write_bytes(data)
    codec.decompress_image(data).save(OUT / "image-shared-hyper-200x120.expected.png")
    doc = {"width": 200, "height": 120, "mode": "RGB", "tile": 64, "model": codec.read_info(data).header["model"],
           "pixel_tolerance": 1, "expected": "image-shared-hyper-200x120.expected.png"}
    (OUT / "image-shared-hyper-200x120.json").write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    import sys

    OUT.mkdir(exist_ok=True)
    coder_vector("coder-p16", [0.3, 1.0, 4.0, 12.0], 16, 400, 1)
    coder_vector("coder-p12", [0.5, 2.0, 6.0], 12, 300, 2)
    container_vector("basic", "1.0", compress_header=False)
    container_vector("deflate", "1.1", compress_header=True)
    if "--no-image" not in sys.argv:
        image_vector()
        context_vector()
        overlap_vector()
    if "--no-audio" not in sys.argv:
        audio_vector()
        audio_ladder_vector()
    print("wrote", sorted(p.name for p in OUT.iterdir()))
