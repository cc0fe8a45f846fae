"""Python API: images <-> aec bytes.

    compress_image(image, quality)  PIL/ndarray ─io─> RGB planes ─pad 64─> tiles
        tile ─model.analyze─> z, y symbols + indexes ─entropy.encode─> TILE chunk
        header + TILE* + ALPH/ICCP|ICCN/EXIF ─container─> bytes
    decompress_image(data)          the mirror; the symbols' CRC catches a desync

Tiles are coded independently (memory stays bounded for large photos); each is
a chunk. Models come from the registry unless ``model=`` passes a LoadedModel.
"""

from __future__ import annotations

import io
import os
import struct
import threading
import warnings
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from aecodec import container, effort as effort_mod, entropy, registry
from aecodec.errors import CorruptStreamError, FormatError, HeaderError, InputError, LimitError, ModelError
from aecodec.io import icc as image_icc
from aecodec.io import image as image_io

DEFAULT_TILE = 1024
# Largest tile: decoding one tile needs ~10 activations of N × tile²/4 floats, about
# 0.5 GB at 1024²; larger tiles would let a small forged file demand gigabytes.
MAX_TILE = 1024
IMAGE_ALIGN = 64
TILE_HEAD = struct.Struct("<III")  # z bytes, y bytes, crc32 of the decoded symbols
DEFAULT_QUALITY = registry.BY_NAME[registry.DEFAULT_IMAGE_MODEL].default_quality

__all__ = ["compress_image", "compress_image_to_target", "TargetResult", "TargetBppWarning", "decompress_image",
           "read_info", "ImageInfo", "DEFAULT_TILE", "DEFAULT_QUALITY"]


def _resolve(model) -> registry.LoadedModel:
    if model is None:
        return registry.load(registry.DEFAULT_IMAGE_MODEL)
    if isinstance(model, str):
        return registry.load(model)
    return model


def _quality_text(quality: float) -> str:
    return f"{float(quality):.3f}".rstrip("0").rstrip(".")


def _pad(rgb: np.ndarray, align: int) -> np.ndarray:
    h, w = rgb.shape[:2]
    ph, pw = -h % align, -w % align
    if ph or pw:
        rgb = np.pad(rgb, ((0, ph), (0, pw), (0, 0)), mode="edge")
    return rgb


def tile_grid(width: int, height: int, tile: int) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) of each tile in raster order; the image is first padded to multiples of 64."""
    pw, ph = width + (-width % IMAGE_ALIGN), height + (-height % IMAGE_ALIGN)
    return [(x, y, min(tile, pw - x), min(tile, ph - y)) for y in range(0, ph, tile) for x in range(0, pw, tile)]


def _symbols_crc(tile_index: int, *arrays: np.ndarray) -> int:
    """CRC-32 of the tile's raster index (u32 LE) and its symbols (int32 LE): catches a
    desynchronised decoder and tiles moved to another place."""
    crc = zlib.crc32(struct.pack("<I", tile_index))
    for a in arrays:
        crc = zlib.crc32(np.ascontiguousarray(a, dtype="<i4").tobytes(), crc)
    return crc


@contextmanager
def single_threaded_torch():
    """Run the model with one torch thread in this thread while inside the block.

    Convolutions split their sums differently with 2 threads than with 1, which
    changes float results in the last bits: latents could then round differently
    (another bitstream) and decoded samples differ (not bit-exact; for images a
    pixel within a rounding error of .5 would flip). One thread makes both depend
    on the bitstream alone. torch's thread count is per OS thread (OpenMP), so
    this sets and restores the calling thread's; parallel_map's workers are set
    to one thread when they start. Parallelism comes from tiles, segments and
    files coded side by side."""
    with torch_threads(1):
        yield


@contextmanager
def torch_threads(n: int):
    """``n`` torch threads in this OS thread inside the block (restored after)."""
    import torch

    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if before != n:
            torch.set_num_threads(before)


def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


# Threads that code tiles / segments in parallel (None: one per CPU). Set to 1 to measure or
# use a single core; results are identical for every value.
CODING_THREADS: int | None = None


def coding_workers(workers: int | None = None) -> int:
    return workers or CODING_THREADS or (os.cpu_count() or 1)


def parallel_map(func, items, workers: int | None = None, cancel: threading.Event | None = None):
    """func over items on a few threads, results in input order, at most 2·workers in flight
    (bounded memory). With single-threaded torch inside, this is where coding gets its
    parallelism; results do not depend on the number of workers. If the consumer stops early
    (an error, Ctrl-C), queued items are dropped and ``cancel`` is set so that long running
    items can stop early."""
    workers = coding_workers(workers)
    if workers <= 1:
        yield from map(func, items)
        return
    with ThreadPoolExecutor(workers, initializer=_one_torch_thread) as pool:
        pending: deque = deque()
        try:
            for item in items:
                pending.append(pool.submit(func, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BaseException:
            if cancel is not None:
                cancel.set()
            for future in pending:
                future.cancel()
            raise


def encode_latents(net, z_sym: np.ndarray, y_sym: np.ndarray, y_idx: np.ndarray, precision: int, key: int) -> bytes:
    """Symbols of one coded unit (an image tile, an audio segment channel) -> payload
    ``<III z bytes, y bytes, crc32(key, symbols)> | z data | y data``."""
    z_data = entropy.encode(z_sym, net.z_indexes(z_sym.shape), *net.z_tables(), precision=precision)
    if hasattr(net, "y_order"):  # a context model: y is coded pass by pass (SPEC §6.1)
        order = net.y_order(y_sym.shape)
        y_data = entropy.encode(y_sym.reshape(-1)[order], y_idx.reshape(-1)[order], *net.y_tables(), precision=precision)
    else:
        y_data = entropy.encode(y_sym, y_idx, *net.y_tables(), precision=precision)
    return TILE_HEAD.pack(len(z_data), len(y_data), _symbols_crc(key, z_sym, y_sym)) + z_data + y_data


def decode_latents(net, payload: bytes, z_shape: tuple[int, ...], precision: int, key: int, what: str = "tile",
                   quality_level: float | None = None):
    """The mirror of encode_latents -> (y symbols, what the synthesis needs: the means for a
    hyperprior model, (ŷ, μh) for a context model, which needs ``quality_level`` to
    compute its passes' parameters); a desync raises CorruptStreamError."""
    if len(payload) < TILE_HEAD.size:
        raise FormatError(f"{what} payload shorter than its header")
    z_len, y_len, crc = TILE_HEAD.unpack_from(payload)
    if TILE_HEAD.size + z_len + y_len != len(payload):
        raise FormatError(f"{what} payload sizes do not add up")
    z_data = payload[TILE_HEAD.size : TILE_HEAD.size + z_len]
    y_data = payload[TILE_HEAD.size + z_len :]
    # The chunk CRC has already vouched for the bytes: a failure to decode them
    # means the decoder's model disagrees with the encoder's (or a forged file).
    try:
        z_sym = entropy.decode(z_data, net.z_indexes(z_shape), *net.z_tables(), precision=precision)
        if hasattr(net, "decode_y"):
            stream = entropy.StreamDecoder(y_data, *net.y_tables(), precision=precision)
            with single_threaded_torch():
                y_sym, _, y_hat, mu_h = net.decode_y(z_sym, quality_level, lambda k, sel, means, idx: stream.decode(idx))
            stream.finish()
            means = (y_hat, mu_h)
        else:
            with single_threaded_torch():
                y_idx, means = net.hyper_decode(z_sym)
            y_sym = entropy.decode(y_data, y_idx, *net.y_tables(), precision=precision)
    except FormatError as exc:
        raise CorruptStreamError(f"{what} does not decode (corrupt data or encoder/decoder desynchronised): {exc}") from None
    if _symbols_crc(key, z_sym, y_sym) != crc:
        raise CorruptStreamError("decoded symbols do not match the encoder's checksum (encoder/decoder desynchronised)")
    return y_sym, means


def _window(lo: int, hi: int, margin: int, limit: int) -> tuple[int, int]:
    """[lo, hi) widened by ``margin`` on both sides, clipped to [0, limit)."""
    return max(0, lo - margin), min(limit, hi + margin)


def encode_tile(loaded: registry.LoadedModel, rgb: np.ndarray, box: tuple[int, int, int, int], quality_level: float,
                precision: int, tile_index: int, overlapped: bool = False, effort: int = 0, refine_threads: int = 1,
                progress=None, cancel: threading.Event | None = None) -> bytes:
    """Tile ``box`` = (x, y, w, h) of the padded image ``rgb`` -> TILE payload.

    ``overlapped``: the analysis also sees ``net.analysis_margin`` latent cells of pixels around the
    tile, so the tile's latent is the one a whole-image analysis gives (SPEC §6.2). ``effort`` > 0
    refines the scaled latent for the rate–distortion cost (``aecodec.effort``) on
    ``refine_threads`` torch threads before it is coded."""
    import torch

    net = loaded.net
    x, y, tw, th = box
    m = 16 * net.analysis_margin if overlapped else 0
    x0, x1 = _window(x, x + tw, m, rgb.shape[1])
    y0, y1 = _window(y, y + th, m, rgb.shape[0])
    window = torch.from_numpy(np.ascontiguousarray(rgb[y0:y1, x0:x1])).permute(2, 0, 1)[None].float().div_(255.0)
    with torch.no_grad(), single_threaded_torch():
        latent = net.analyze_latent(window)
        if overlapped:
            latent = latent[:, :, (y - y0) // 16 : (y - y0 + th) // 16, (x - x0) // 16 : (x - x0 + tw) // 16].contiguous()
        y_q, z_sym = net.scaled_latent(latent, quality_level)
    if effort:
        pixels = window[:, :, y - y0 : y - y0 + th, x - x0 : x - x0 + tw]
        with torch_threads(refine_threads):
            y_q = effort_mod.refine_latent(net, pixels, y_q, z_sym, quality_level, effort, progress=progress,
                                           cancel=cancel)
    with torch.no_grad(), single_threaded_torch():
        z_sym, y_sym, y_idx = net.quantize(y_q, z_sym, quality_level)
    return encode_latents(net, z_sym, y_sym, y_idx, precision, tile_index)


def decode_tile_latent(loaded: registry.LoadedModel, payload: bytes, tw: int, th: int, quality_level: float,
                       precision: int, tile_index: int):
    """TILE payload -> the tile's synthesis input [1, C, th/16, tw/16] (see the model's synthesis_input)."""
    import torch

    net = loaded.net
    y_sym, state = decode_latents(net, payload, (net.N, th // 64, tw // 64), precision, tile_index, "TILE chunk",
                                  quality_level)
    with torch.no_grad(), single_threaded_torch():
        return net.synthesis_input(y_sym, state, quality_level)


def _synthesize(net, latent, quality_level: float) -> np.ndarray:
    """Synthesis input (a tile or a window) -> RGB uint8 [16h, 16w, 3]."""
    import torch

    with torch.no_grad(), single_threaded_torch():
        x_hat = net.synthesize_input(latent, quality_level)
    return x_hat[0].mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def decode_tile(loaded: registry.LoadedModel, payload: bytes, tw: int, th: int, quality_level: float,
                precision: int, tile_index: int) -> np.ndarray:
    """TILE payload of an independently synthesised tile (SPEC §6) -> RGB uint8 tile of th × tw."""
    latent = decode_tile_latent(loaded, payload, tw, th, quality_level, precision, tile_index)
    return _synthesize(loaded.net, latent, quality_level)


def compress_image(image, quality: float = DEFAULT_QUALITY, *, model=None, tile: int = DEFAULT_TILE,
                   target_bpp: float | None = None, independent_tiles: bool = False, effort: int = 0,
                   progress=None) -> bytes:
    """PIL image or uint8 array (H×W, H×W×3, H×W×4) -> aec bytes. quality: 1 (smallest) .. 10, fractional allowed.

    ``tile`` bounds memory; images larger than one tile are synthesised through overlapping
    windows, so tiles do not show (bitstream 1.4). ``independent_tiles``: code and synthesise
    each tile alone instead, as releases up to 0.2 did (readable by their decoders; seams can show).

    ``effort`` 0 (default, fastest) … 9: refine each tile's latent for the rate–distortion cost
    before coding it (``aecodec.effort``; same format and decoder, smaller files for the same
    quality, slower encoding). ``progress(n)`` is called as refinement steps finish.

    ``target_bpp``: instead of ``quality``, the highest quality whose file has at most that many
    bits per pixel (see compress_image_to_target); a ``TargetBppWarning`` says when the model's
    range of qualities cannot reach it."""
    if target_bpp is not None:
        result = compress_image_to_target(image, target_bpp, model=model, tile=tile,
                                          independent_tiles=independent_tiles, effort=effort)
        if result.warning:
            warnings.warn(result.warning, TargetBppWarning, stacklevel=2)
        return result.data
    buf = io.BytesIO()
    write_image(buf, image, quality, model=model, tile=tile, independent_tiles=independent_tiles, effort=effort,
                progress=progress)
    return buf.getvalue()


def write_image(fileobj: BinaryIO, image, quality: float = DEFAULT_QUALITY, *, model=None, tile: int = DEFAULT_TILE,
                independent_tiles: bool = False, effort: int = 0, progress=None) -> None:
    """Like compress_image, writing chunk by chunk to a binary file object."""
    loaded = _resolve(model)
    lo, hi = loaded.variant.qualities
    if not isinstance(quality, (int, float)) or not lo <= float(quality) <= hi:
        raise InputError(f"quality must be between {lo:g} and {hi:g}, got {quality!r}")
    if tile < IMAGE_ALIGN or tile % IMAGE_ALIGN or tile > MAX_TILE:
        raise InputError(f"tile must be a multiple of {IMAGE_ALIGN} in [64, {MAX_TILE}], got {tile}")
    effort = effort_mod.check_effort(effort)
    planes = image.planes if isinstance(image, _PlanesImage) else image_io.to_planes(image)
    width, height = planes.size
    precision = loaded.net.entropy_bottleneck.entropy_coder_precision
    header = {
        "modality": "image",
        "model": loaded.header,
        "coder": {"name": entropy.CODER_NAME, "precision": precision},
        "quality": _quality_text(quality),
        "image": {"width": width, "height": height, "mode": planes.mode, "bit_depth": planes.bit_depth,
                  "tile": tile, "coded_channels": 3},
    }
    level = float(quality) - 1.0
    rgb = _pad(planes.rgb, IMAGE_ALIGN)
    grid = tile_grid(width, height, tile)
    # several tiles: synthesised through overlapping windows of the whole latent (SPEC §6.2, 1.4),
    # so tile borders do not show; one tile is the plain layout. Context models' tiles are §6.1 (1.3).
    overlap = loaded.net.synthesis_margin if len(grid) > 1 and not independent_tiles else 0
    if overlap:
        header["image"]["overlap"] = overlap
    minor = 4 if overlap else 3 if hasattr(loaded.net, "y_order") else 0
    flags = container.FLAG_OVERLAPPED_TILES if overlap else 0
    workers = coding_workers()
    # refinement of fewer tiles than cores shares the cores out (other coding stays one thread per tile)
    refine_threads = max(1, workers // min(len(grid), workers))
    cancel = threading.Event()
    minor = max(minor, image_icc.minor_for(planes.icc))  # an ICCN chunk is 1.3 (SPEC §3.1)
    with container.ContainerWriter(fileobj, header, minor=minor, flags=flags) as writer:
        def one(item):
            i, box = item
            return encode_tile(loaded, rgb, box, level, precision, i, overlapped=bool(overlap), effort=effort,
                               refine_threads=refine_threads, progress=progress, cancel=cancel)

        for payload in parallel_map(one, enumerate(grid), workers, cancel):
            writer.add_chunk("TILE", payload)
        if planes.alpha is not None:
            writer.add_chunk("ALPH", image_io.alpha_to_png(planes.alpha))
        if planes.icc:
            writer.add_chunk(*image_icc.chunk_for(planes.icc))  # ICCN: a known profile by name
        if planes.exif:
            writer.add_chunk("EXIF", planes.exif)


class TargetBppWarning(UserWarning):
    """compress_image(target_bpp=) could not reach the target inside the model's quality range."""


@dataclass
class TargetResult:
    """What compress_image_to_target chose: the file, its quality and rate, and whether the
    target was reachable (``warning`` says why not, else None)."""

    data: bytes
    quality: float
    bpp: float
    target_bpp: float
    warning: str | None = None


def compress_image_to_target(image, target_bpp: float, *, model=None, tile: int = DEFAULT_TILE,
                             steps: int = 8, independent_tiles: bool = False, effort: int = 0) -> TargetResult:
    """The highest quality whose file has at most ``target_bpp`` bits per pixel: bisection over
    the model's whole continuous quality range (from the registry), on real file sizes.

    Unreachable targets are not an error: below the lowest quality's rate the lowest quality is
    returned, above the highest quality's rate the highest; ``warning`` then says so."""
    if isinstance(target_bpp, bool) or not isinstance(target_bpp, (int, float)) or not (
            np.isfinite(target_bpp) and target_bpp > 0):
        raise InputError(f"target bits per pixel must be a positive number, got {target_bpp!r}")
    loaded = _resolve(model)
    planes = image_io.to_planes(image)  # converted once, coded at every step
    pixels = planes.size[0] * planes.size[1]
    lo, hi = (float(q) for q in loaded.variant.qualities)

    def code(q: float) -> tuple[bytes, float]:
        data = compress_image(_PlanesImage(planes), q, model=loaded, tile=tile, independent_tiles=independent_tiles,
                              effort=effort)
        return data, 8 * len(data) / pixels

    best, best_bpp = code(lo)
    if best_bpp > target_bpp:
        return TargetResult(best, lo, best_bpp, float(target_bpp),
                            f"target {target_bpp:g} bpp is below the lowest quality's rate: "
                            f"quality {lo:g} gives {best_bpp:.4f} bpp")
    top, top_bpp = code(hi)
    if top_bpp <= target_bpp:
        return TargetResult(top, hi, top_bpp, float(target_bpp),
                            f"target {target_bpp:g} bpp is above the highest quality's rate: "
                            f"quality {hi:g} gives {top_bpp:.4f} bpp")
    best_q, a, b = lo, lo, hi
    for _ in range(steps):
        mid = round((a + b) / 2, 3)
        if mid in (a, b):
            break
        data, rate = code(mid)
        if rate <= target_bpp:
            best, best_bpp, best_q, a = data, rate, mid, mid
        else:
            b = mid
    return TargetResult(best, best_q, best_bpp, float(target_bpp))


class _PlanesImage:
    """Already converted ImagePlanes passed back through compress_image without a second conversion."""

    def __init__(self, planes):
        self.planes = planes


@dataclass
class ImageInfo:
    header: dict
    width: int
    height: int
    mode: str
    bit_depth: int
    tile: int
    quality: float
    model: registry.ModelVariant | None
    overlap: int = 0  # latent cells of overlap between synthesis windows; 0: independent tiles (SPEC §6.2)


# Largest synthesis overlap a file may ask for: one neighbouring tile row (at least 4 cells tall)
# then holds every latent row a window needs.
MAX_OVERLAP = 4


def _int_field(obj: dict, key: str, lo: int, hi: int) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise HeaderError(f"header field {key!r} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def parse_coding_fields(header: dict) -> tuple[float, registry.ModelVariant | None]:
    """The fields every modality shares: coder name and precision, quality, model id.
    Returns (quality, the registry's variant for the id or None)."""
    coder, model = header["coder"], header["model"]
    if coder.get("name") != entropy.CODER_NAME:
        raise HeaderError(f"unknown entropy coder {coder.get('name')!r}")
    _int_field(coder, "precision", 1, 16)
    try:
        quality = float(str(header.get("quality")))
    except ValueError:
        raise HeaderError(f"bad quality {header.get('quality')!r}") from None
    if not np.isfinite(quality):
        raise HeaderError("quality is not finite")
    return quality, registry.BY_ID.get(_int_field(model, "id", 0, 65535))


def parse_image_header(header: dict) -> ImageInfo:
    """Validate every field that sizes work or memory before anything is decoded."""
    if header.get("modality") != "image":
        raise HeaderError(f"not an image file (modality {header.get('modality')!r})")
    img = header.get("image")
    model = header.get("model")
    coder = header.get("coder")
    if not isinstance(img, dict) or not isinstance(model, dict) or not isinstance(coder, dict):
        raise HeaderError("image header lacks its image, model or coder object")
    width = _int_field(img, "width", 1, 65535)
    height = _int_field(img, "height", 1, 65535)
    if width * height > image_io.MAX_PIXELS:
        raise LimitError(f"{width}×{height} exceeds the limit of {image_io.MAX_PIXELS} pixels")
    tile = _int_field(img, "tile", IMAGE_ALIGN, MAX_TILE)
    if tile % IMAGE_ALIGN:
        raise HeaderError(f"tile {tile} is not a multiple of {IMAGE_ALIGN}")
    mode = img.get("mode")
    if mode not in ("RGB", "RGBA", "L", "LA"):
        raise HeaderError(f"unknown image mode {mode!r}")
    bit_depth = img.get("bit_depth", 8)
    if bit_depth not in (8, 16):
        raise HeaderError(f"unknown bit depth {bit_depth!r}")
    if img.get("coded_channels") != 3:
        raise HeaderError("coded_channels must be 3")
    overlap = _int_field(img, "overlap", 1, MAX_OVERLAP) if "overlap" in img else 0
    quality, variant = parse_coding_fields(header)
    return ImageInfo(header, width, height, mode, bit_depth, tile, quality, variant, overlap)


def read_info(data_or_file) -> ImageInfo:
    """Header of an aec image file, validated; decodes nothing."""
    return parse_image_header(container.ContainerReader(data_or_file).header)


def _model_for(info: ImageInfo, model) -> registry.LoadedModel:
    wanted = info.header["model"]
    if model is not None:
        loaded = _resolve(model)
    else:
        if info.model is None:
            raise ModelError(f"file was written by model id {wanted.get('id')} ({wanted.get('name')!r}), "
                             f"which this aecodec does not have{registry.retired_hint(wanted.get('id'))}")
        loaded = registry.load(info.model.name)
    if loaded.variant.id != wanted.get("id") or loaded.weights_sha256[:16] != wanted.get("weights"):
        raise ModelError(f"file needs model {wanted.get('name')!r} id {wanted.get('id')} weights "
                         f"{wanted.get('weights')}, have {loaded.variant.name!r} id {loaded.variant.id} "
                         f"weights {loaded.weights_sha256[:16]}")
    lo, hi = loaded.variant.qualities
    if not lo <= info.quality <= hi:
        raise HeaderError(f"quality {info.quality} outside the model's range [{lo}, {hi}]")
    return loaded


def decompress_image(data_or_file, *, model=None):
    """aec bytes (or a binary file object) -> PIL image in the input's mode, with icc_profile/exif in info."""
    reader = container.ContainerReader(data_or_file)
    info = parse_image_header(reader.header)
    loaded = _model_for(info, model)
    grid = tile_grid(info.width, info.height, info.tile)
    rgb = np.empty((info.height, info.width, 3), np.uint8)
    alpha = icc = exif = None
    n_tiles = 0
    extras: dict = {}

    def tiles():
        """TILE chunks with their place; other chunks are kept aside as they pass."""
        n = 0
        for tag, payload in reader.chunks():
            if tag == "TILE":
                if n >= len(grid):
                    raise FormatError(f"more TILE chunks than the {len(grid)} the header implies")
                yield n, payload
                n += 1
            elif tag in ("ALPH", "ICCP", "ICCN", "EXIF"):
                extras[tag] = payload

    if bool(reader.flags & container.FLAG_OVERLAPPED_TILES) != bool(info.overlap):
        raise HeaderError("the overlapped-tiles flag and the header's image.overlap disagree")
    decoded = (_decode_overlapped if info.overlap else _decode_independent)(loaded, info, tiles(), grid)
    for n, (x, y), pixels in decoded:
        h, w = min(pixels.shape[0], info.height - y), min(pixels.shape[1], info.width - x)
        rgb[y : y + h, x : x + w] = pixels[:h, :w]
        n_tiles += 1
    if "ALPH" in extras:
        alpha = image_io.alpha_from_png(extras["ALPH"], (info.width, info.height))
    icc, exif = image_icc.from_chunks(extras), extras.get("EXIF")
    if n_tiles != len(grid):
        raise FormatError(f"file has {n_tiles} TILE chunks, the header implies {len(grid)}")
    if (alpha is not None) != (info.mode in ("RGBA", "LA")):
        raise FormatError(f"mode {info.mode} and the presence of an alpha plane disagree")
    return image_io.from_planes(rgb, alpha, info.mode, info.bit_depth, icc, exif)


def _decode_independent(loaded, info: ImageInfo, tiles, grid):
    """Tiles synthesised one by one (SPEC §6) -> (index, (x, y), RGB tile) in order."""
    precision, level = info.header["coder"]["precision"], info.quality - 1.0

    def one(item):
        n, payload = item
        x, y, tw, th = grid[n]
        return n, (x, y), decode_tile(loaded, payload, tw, th, level, precision, n)

    yield from parallel_map(one, tiles)


def _decode_overlapped(loaded, info: ImageInfo, tiles, grid):
    """Overlapped tiles (SPEC §6.2) -> (index, (x, y), RGB tile) in order.

    The tiles' latents are decoded in parallel and kept as bands, one per row of tiles; once the
    row below is complete, each tile of a row is synthesised from the window of the whole latent
    that extends it by ``overlap`` cells (clipped to the image): the pixels a whole-image
    synthesis gives, with memory bounded by three rows of latents."""
    import torch

    precision, level, m = info.header["coder"]["precision"], info.quality - 1.0, info.overlap
    net = loaded.net
    row_ys = sorted({y for _, y, _, _ in grid})
    rows = [[n for n, box in enumerate(grid) if box[1] == ry] for ry in row_ys]
    row_of = {n: r for r, ns in enumerate(rows) for n in ns}
    lat_w = (grid[rows[0][-1]][0] + grid[rows[0][-1]][2]) // 16
    lat_h = (row_ys[-1] + grid[rows[-1][0]][3]) // 16
    bands: dict[int, torch.Tensor] = {}  # row of tiles -> its latent band [1, C, h, lat_w]
    filled: dict[int, int] = {}  # row -> tiles decoded

    def latent(item):
        n, payload = item
        x, y, tw, th = grid[n]
        return n, decode_tile_latent(loaded, payload, tw, th, level, precision, n)

    def synthesize_row(r: int):
        top = row_ys[r] // 16
        parts = [(r2, bands[r2]) for r2 in (r - 1, r, r + 1) if r2 in bands]
        strip = torch.cat([b for _, b in parts], 2)
        strip_top = row_ys[parts[0][0]] // 16
        height = grid[rows[r][0]][3] // 16
        r0, r1 = _window(top, top + height, m, lat_h)

        def one(n):
            x, y, tw, th = grid[n]
            c0, c1 = _window(x // 16, (x + tw) // 16, m, lat_w)
            pixels = _synthesize(net, strip[:, :, r0 - strip_top : r1 - strip_top, c0:c1].contiguous(), level)
            oy, ox = 16 * (top - r0), 16 * (x // 16 - c0)
            return n, (x, y), pixels[oy : oy + th, ox : ox + tw]

        yield from parallel_map(one, rows[r])

    def ready(r: int) -> bool:
        return filled.get(r, 0) == len(rows[r])

    done = 0  # rows synthesised so far
    for n, lat in parallel_map(latent, tiles):
        r = row_of[n]
        if r not in bands:
            bands[r] = torch.empty(1, lat.shape[1], grid[n][3] // 16, lat_w, dtype=lat.dtype)
        x = grid[n][0] // 16
        bands[r][:, :, :, x : x + lat.shape[3]] = lat
        filled[r] = filled.get(r, 0) + 1
        while done < len(rows) and ready(done) and (done + 1 == len(rows) or ready(done + 1)):
            yield from synthesize_row(done)
            bands.pop(done - 1, None)
            done += 1
