"""Forged files: self-consistent files the encoder never wrote, so that decoding gets past every
check (chunk CRCs, the symbols CRC) into the synthesis with any geometry and extreme symbols.

    forge_latents(net, key, z_shape)   z symbols -> y indexes -> y symbols -> coding.encode_latents
    forge_tile(net, index, tw, th)     a TILE payload (the z shape the image decoder expects)
    forge_segment(net, index, n, ch)   a SEGM payload (audio's own keys and channel packing)
    m_forge(rng, seed, pool)           the mutator: an image file (any size, tile, quality) of
                                       forged TILEs; audio seeds get m_forge_audio (any rates,
                                       length, segment, overlap) of forged SEGMs

The payloads are framed by the encoder's own functions, so they follow the format as it is.
"""

from __future__ import annotations

import copy
import random

import numpy as np

from aecodec import audio, coding, image
from aecodec.fuzz.mutators import dump_header, is_tiny_audio, small_pngs, tags_payload
from aecodec.fuzz.packing import pack_raw
from aecodec.fuzz.targets import ALIGN, audio_model, image_model


def forge_tile(net, tile_index: int, tw: int, th: int, z_sym=None, y_fill=None, precision: int = 16,
               rng: random.Random | None = None) -> bytes:
    """A TILE payload that decodes and passes its symbols CRC (what a forger can always make):
    z symbols given (or zeros) -> the decoder's own indexes -> y symbols (zeros, a constant or random)."""
    return forge_latents(net, tile_index, (net.N, th // 64, tw // 64), z_sym, y_fill, precision, rng)


def forge_latents(net, key: int, z_shape: tuple[int, ...], z_sym=None, y_fill=None, precision: int = 16,
                  rng: random.Random | None = None) -> bytes:
    """The latents of one coded unit (a TILE payload; one channel of a SEGM) passing its symbols CRC:
    z symbols -> the model's own y indexes (``net.hyper_decode``) -> y symbols (zeros, ``y_fill`` or
    random in [-3, 3]) -> ``coding.encode_latents``, the encoder's framing and CRC."""
    z_sym = np.zeros(z_shape, np.int32) if z_sym is None else np.asarray(z_sym, np.int32).reshape(z_shape)
    y_idx, _ = net.hyper_decode(z_sym)
    if y_fill == "random" and rng is not None:
        y_sym = np.random.default_rng(rng.getrandbits(32)).integers(-3, 4, y_idx.shape, dtype=np.int32)
    else:
        y_sym = np.full(y_idx.shape, 0 if y_fill is None else y_fill, np.int32)
    return coding.encode_latents(net, z_sym, y_sym, y_idx, precision, key)


EXTREME_SYMBOLS = [0, 1, -1, 40, -40, 1000, 2**20, -(2**20), 2**31 - 1, -(2**31)]
FORGED_SAMPLES = 3 << 20  # model-rate samples (× channels) of forged SEGMs in one case: ~3 s of synthesis


def forge_segment(net, index: int, length: int, channels: int, rng: random.Random | None = None,
                  fill=None, z_extreme: float = 0.0, precision: int = 16) -> bytes:
    """A SEGM payload of ``length`` model-rate samples whose channels pass their symbols CRC: each
    channel's latents under the encoder's key, packed as the encoder packs them (``audio._key``,
    ``audio._pack_channels``); a ``z_extreme`` share of the first 64 z symbols is extreme."""
    latents = []
    for c in range(channels):
        n = net.N * (length // ALIGN)
        k = min(n, 64)
        z = [rng.choice(EXTREME_SYMBOLS) if rng is not None and rng.random() < z_extreme else 0 for _ in range(k)]
        latents.append(forge_latents(net, audio._key(index, c), (net.N, length // ALIGN), z + [0] * (n - k),
                                     fill, precision, rng))
    return audio._pack_channels(index, latents)


def m_forge_audio(rng, seed, pool):
    """A self-consistent audio file the encoder never wrote: any rates, length, segment and overlap
    (multiples of the alignment, or not), SEGM chunks whose symbols (extreme values included) pass
    their CRC, so the synthesis, the cross-fades and the resampling run on them."""
    net = audio_model().net
    bases = [s for s in pool if is_tiny_audio(s)]
    base = seed if is_tiny_audio(seed) else rng.choice(bases)
    header = copy.deepcopy(base.header)
    a = header["audio"]
    if rng.random() < 0.8:
        a["sample_rate"] = rng.choice([1000, 8000, 16000, 16000, 22050, 44100, 48000, 768000])
        a["channels"] = rng.choice([1, 1, 2])
        a["coding"] = "mid-side" if a["channels"] == 2 else "mono"
        a["segment"] = ALIGN * rng.choice([1, 1, 2, 3, 5, 8, 64, 125, 409])
        a["overlap"] = rng.choice([ALIGN, ALIGN, 2 * ALIGN, a["segment"]])
        segments = rng.choice([0, 1, 1, 2, 3, 4, 8])
        model_len = max(0, (segments - 1) * a["segment"] + rng.choice([1, ALIGN - 1, ALIGN, ALIGN + 1, a["segment"]]))
        if segments == 0:
            model_len = 0
        a["frames"] = model_len * a["sample_rate"] // 16000 + rng.choice([0, 0, 1])
    if rng.random() < 0.1:
        a["overlap"] = rng.choice([0, 1, ALIGN - 1, ALIGN + 1, a.get("overlap", ALIGN)])
    header["quality"] = rng.choice(["1", "2", "3", "1.001", "2.999", header.get("quality", "2")]) \
        if rng.random() < 0.9 else rng.choice(["0.999", "3.001", "0.5", "7"])
    rate, channels, segment = a.get("sample_rate"), a.get("channels"), a.get("segment")
    if not all(isinstance(v, int) and v > 0 for v in (rate, channels, segment)) or channels > 2:
        return pack_raw(dump_header(header), base.chunks)
    overlap = a["overlap"] if isinstance(a.get("overlap"), int) and a["overlap"] >= 0 else ALIGN
    geo = audio.Geometry(audio.model_frames(a["frames"], rate, 16000), segment, overlap, ALIGN)
    fill = rng.choice([None, None, "random", rng.choice(EXTREME_SYMBOLS)])
    z_extreme = rng.choice([0.0, 0.0, 0.1, 1.0])
    chunks = []
    budget = FORGED_SAMPLES
    wanted = geo.count + rng.choice([0, 0, 0, 0, -1, 1])
    for k in range(max(0, min(wanted, 16))):
        length = geo.coded_length(min(k, max(geo.count - 1, 0))) if geo.count else ALIGN
        length = max(ALIGN, length - length % ALIGN)
        if length * channels > budget:
            break
        budget -= length * channels
        index = k if rng.random() < 0.95 else rng.choice([k + 1, k - 1, 2**32 - 1]) & 0xFFFFFFFF
        chunks.append(("SEGM", forge_segment(net, index, length, channels, rng, fill, z_extreme)))
    if rng.random() < 0.2:
        chunks.insert(rng.randrange(len(chunks) + 1), ("TAGS", tags_payload(rng)))
    return pack_raw(dump_header(header), chunks)


def m_forge(rng, seed, pool):
    """A self-consistent file the encoder never wrote: any geometry and tile size, TILE chunks whose
    symbols (extreme values included) pass their CRC, so the synthesis runs on them. Audio: a file
    of the tiny audio model, or any seed when the pool holds no image files (m_forge_audio)."""
    if is_tiny_audio(seed) or (any(is_tiny_audio(s) for s in pool)
                               and not any(s.header and s.header.get("modality") == "image" for s in pool)):
        return m_forge_audio(rng, seed, pool)
    model = image_model()
    net = model.net
    image_seeds_ = [s for s in pool if s.header and s.header.get("modality") == "image"
                    and s.header.get("model", {}).get("id") == model.variant.id]
    base = rng.choice(image_seeds_) if image_seeds_ else None
    header = copy.deepcopy(base.header) if base else {
        "modality": "image", "model": model.header, "coder": {"name": "aec-range-v1", "precision": 16},
        "quality": "4", "image": {"width": 64, "height": 64, "mode": "RGB", "bit_depth": 8, "tile": 1024,
                                  "coded_channels": 3}}
    img = header["image"]
    if rng.random() < 0.7:
        img["width"] = rng.choice([1, 63, 64, 65, 130, 300, 1000, 4096, 65535])
        img["height"] = rng.choice([1, 2, 64, 70, 128, 1000, 2730])
        img["tile"] = rng.choice([64, 64, 64, 64, 128, 192, 256, 512, 1024, 2048, 4096])
    if img.get("mode") in ("RGBA", "LA") and rng.random() < 0.7:
        img["mode"] = "RGB" if img["mode"] == "RGBA" else "L"
    header["quality"] = rng.choice(["1", "4", "8", "7.999", "1.001", header.get("quality", "4")])
    grid = image.tile_grid(img["width"], img["height"], img["tile"])
    chunks = []
    fill = rng.choice([None, None, "random", rng.choice(EXTREME_SYMBOLS)])
    for k, (x, y, tw, th) in enumerate(grid[: rng.choice([1, 2, 4])]):
        if tw * th > 512 * 512 and rng.random() < 0.9:
            tw_th_ok = False  # a large tile: forge the first one only (the decoder allocates it at once)
        else:
            tw_th_ok = True
        n = net.N * (th // 64) * (tw // 64)
        z = [rng.choice(EXTREME_SYMBOLS) if rng.random() < 0.1 else 0 for _ in range(min(n, 64))] + [0] * max(0, n - 64)
        chunks.append(("TILE", forge_tile(net, k, tw, th, z, fill, rng=rng)))
        if not tw_th_ok:
            break
    if rng.random() < 0.7:  # the rest of the tiles, as the header implies (when few)
        for k in range(len(chunks), len(grid) if len(grid) <= 8 else len(chunks)):
            _, _, tw, th = grid[k]
            chunks.append(("TILE", forge_tile(net, k, tw, th)))
    if img.get("mode") in ("RGBA", "LA"):
        chunks.append(("ALPH", small_pngs(rng, img["width"], img["height"])))
    return pack_raw(dump_header(header), chunks)
