"""Python API for images: images <-> aec bytes (the same verbs as ``aecodec.audio``).

    compress(image, quality) / compress_image   PIL/ndarray ─io─> RGB planes ─pad 64─> tiles
        tile (+ margin) ─model.analyze_latent─> y ─scaled_latent, [effort: refine], quantize─>
        z, y symbols + indexes ─coding.encode_latents─> TILE chunk
        header + TILE* + ALPH/ICCP|ICCN/EXIF ─container─> bytes
    decompress(data) / decompress_image         the mirror; the symbols' CRC catches a desync
    write(file, image, quality) / read(file)    the same on files; read_info(data): the header

Each tile is a chunk (memory stays bounded for large photos); several tiles share the whole
image's ẑ (SPEC §6.3) and are synthesised through overlapping windows of the whole latent (§6.2). Models come from the registry unless
``model=`` passes a LoadedModel. The coding core (latents <-> payloads, threads) is
``aecodec.coding``.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from aecodec import container, effort as effort_mod, entropy, registry
from aecodec.coding import (
    coding_workers,
    decode_latents,
    decode_z,
    encode_latents,
    int_field,
    level_for,
    model_for,
    _one_torch_thread,
    parallel_map,
    parse_coding_fields,
    quality_text,
    resolve_model,
    single_threaded_torch,
    torch_threads,
)
from aecodec.errors import FormatError, HeaderError, InputError, LimitError
from aecodec.io import icc as image_icc
from aecodec.io import image as image_io
from aecodec.models.windows import ZWindow

DEFAULT_TILE = 1024
# Largest tile: decoding one tile needs ~10 activations of N × tile²/4 floats, about
# 0.5 GB at 1024²; larger tiles would let a small forged file demand gigabytes.
MAX_TILE = 1024
IMAGE_ALIGN = 64
DEFAULT_QUALITY = registry.BY_NAME[registry.DEFAULT_IMAGE_MODEL].default_quality

__all__ = ["compress", "decompress", "read", "write", "read_info", "compress_image", "compress_image_to_target",
           "TargetResult", "TargetBppWarning", "decompress_image", "write_image", "ImageInfo", "DEFAULT_TILE",
           "DEFAULT_QUALITY"]


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


# Overlapped tiles are analysed and synthesised in parts of at most this many pixel rows (SPEC
# §6.2): half the activation memory of a whole 1024-px tile for about 6 % more computation.
SYNTHESIS_ROWS = 512


def _window(lo: int, hi: int, margin: int, limit: int) -> tuple[int, int]:
    """[lo, hi) widened by ``margin`` on both sides, clipped to [0, limit)."""
    return max(0, lo - margin), min(limit, hi + margin)


def _pixels(a: np.ndarray):
    """uint8 [h, w, 3] -> float [1, 3, h, w] in [0, 1]."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float().div_(255.0)


def analyze_tile(loaded: registry.LoadedModel, rgb: np.ndarray, box: tuple[int, int, int, int], level: float,
                 overlapped: bool = False):
    """Tile ``box`` = (x, y, w, h) of the padded image ``rgb`` -> (scaled latent y_q, z symbols).

    ``overlapped``: the analysis also sees ``net.analysis_margin`` latent cells of pixels around the
    tile, so the tile's latent is the one a whole-image analysis gives (SPEC §6.2)."""
    import torch

    net = loaded.net
    x, y, tw, th = box
    m = 16 * net.analysis_margin if overlapped else 0
    x0, x1 = _window(x, x + tw, m, rgb.shape[1])
    with torch.no_grad(), single_threaded_torch():
        if overlapped:  # in parts of SYNTHESIS_ROWS rows, each with its margin: bounded memory
            parts = []
            for top in range(y, y + th, SYNTHESIS_ROWS):
                bottom = min(top + SYNTHESIS_ROWS, y + th)
                a0, a1 = _window(top, bottom, m, rgb.shape[0])
                part = net.analyze_latent(_pixels(rgb[a0:a1, x0:x1]))
                parts.append(part[:, :, (top - a0) // 16 : (bottom - a0) // 16, (x - x0) // 16 : (x - x0 + tw) // 16])
            latent = torch.cat(parts, 2).contiguous()
        else:
            latent = net.analyze_latent(_pixels(rgb[y : y + th, x : x + tw]))
        return net.scaled_latent(latent, level)


def code_tile(loaded: registry.LoadedModel, rgb: np.ndarray, box: tuple[int, int, int, int], y_q, z_sym: np.ndarray,
              level: float, precision: int, tile_index: int, hyper: ZWindow | None = None, effort: int = 0,
              refine_threads: int = 1, progress=None, cancel: threading.Event | None = None) -> bytes:
    """The tile's scaled latent and z symbols (analyze_tile) -> TILE payload.

    ``hyper``: the tile's window of the whole image's ẑ when tiles share it (SPEC §6.3), else its
    own z sets μ and σ. ``effort`` > 0 refines y_q for the rate–distortion cost (``aecodec.effort``)
    on ``refine_threads`` torch threads before it is coded."""
    import torch

    net = loaded.net
    hyper_in = z_sym if hyper is None else hyper
    if effort:
        x, y, tw, th = box
        with torch_threads(refine_threads):
            y_q = effort_mod.refine_latent(net, _pixels(rgb[y : y + th, x : x + tw]), y_q, hyper_in, level, effort,
                                           progress=progress, cancel=cancel)
    with torch.no_grad(), single_threaded_torch():
        _, y_sym, y_idx = net.quantize(y_q, hyper_in, level)
    return encode_latents(net, z_sym, y_sym, y_idx, precision, tile_index)


def encode_tile(loaded: registry.LoadedModel, rgb: np.ndarray, box: tuple[int, int, int, int], level: float,
                precision: int, tile_index: int, overlapped: bool = False, effort: int = 0, refine_threads: int = 1,
                progress=None, cancel: threading.Event | None = None) -> bytes:
    """Tile ``box`` of the padded image -> TILE payload, with its own ẑ (analyze_tile, code_tile)."""
    y_q, z_sym = analyze_tile(loaded, rgb, box, level, overlapped)
    return code_tile(loaded, rgb, box, y_q, z_sym, level, precision, tile_index, effort=effort,
                     refine_threads=refine_threads, progress=progress, cancel=cancel)


def whole_latent(loaded: registry.LoadedModel, rgb: np.ndarray, grid: list[tuple[int, int, int, int]], level: float,
                 margin: int, workers: int | None = None, cancel: threading.Event | None = None):
    """The padded image's tiles, analysed with their margins -> the whole image's scaled latent
    y_q [1, M, H/16, W/16] and ẑ symbols [N, H/64, W/64]. Each tile's ẑ is h_a of the window of
    y_q that extends the tile by ``margin`` ẑ cells (h_a's reach is 7 latent cells), so it is the
    ẑ a whole-image analysis gives; memory: y_q, M floats per 16 × 16 pixels (3 MB per 1024² tile)."""
    import torch

    net = loaded.net
    h, w = rgb.shape[:2]
    y_map = None
    # (the pool runs to its end: a consumer that stops early cancels it)
    for i, (y_q, _) in enumerate(parallel_map(lambda b: analyze_tile(loaded, rgb, b, level, overlapped=True), grid,
                                              workers, cancel)):
        if y_map is None:
            y_map = torch.empty(1, y_q.shape[1], h // 16, w // 16)
        x, y, tw, th = grid[i]
        y_map[:, :, y // 16 : (y + th) // 16, x // 16 : (x + tw) // 16] = y_q

    def z_of(box):
        x, y, tw, th = box
        r0, r1, c0, c1 = _z_window_cells(box, margin, h // 64, w // 64)
        with torch.no_grad(), single_threaded_torch():
            z = net.z_symbols(y_map[:, :, 4 * r0 : 4 * r1, 4 * c0 : 4 * c1].contiguous())
        return z[:, y // 64 - r0 : (y + th) // 64 - r0, x // 64 - c0 : (x + tw) // 64 - c0]

    return y_map, z_map(grid, list(parallel_map(z_of, grid, workers, cancel)))


def z_map(grid: list[tuple[int, int, int, int]], z_tiles: list[np.ndarray]) -> np.ndarray:
    """Every tile's z symbols [N, th/64, tw/64] -> the whole image's ẑ symbols [N, H/64, W/64]."""
    x1, y1 = grid[-1][0] + grid[-1][2], grid[-1][1] + grid[-1][3]
    out = np.zeros((z_tiles[0].shape[0], y1 // 64, x1 // 64), np.int32)
    for (x, y, tw, th), z in zip(grid, z_tiles):
        out[:, y // 64 : (y + th) // 64, x // 64 : (x + tw) // 64] = z
    return out


def _z_window_cells(box: tuple[int, int, int, int], margin: int, rows: int, cols: int) -> tuple[int, int, int, int]:
    """Tile ``box``'s ẑ cells widened by ``margin`` and clipped to rows × cols: (r0, r1, c0, c1)."""
    x, y, tw, th = box
    return (*_window(y // 64, (y + th) // 64, margin, rows), *_window(x // 64, (x + tw) // 64, margin, cols))


def z_window(zmap: np.ndarray, box: tuple[int, int, int, int], margin: int) -> ZWindow:
    """Tile ``box``'s hyper input when tiles share ẑ (SPEC §6.3): the window of the whole ẑ that
    extends the tile by ``margin`` z cells (clipped to the image), and the tile's y cells in it."""
    x, y, tw, th = box
    r0, r1, c0, c1 = _z_window_cells(box, margin, *zmap.shape[1:])
    return ZWindow(np.ascontiguousarray(zmap[:, r0:r1, c0:c1]), (4 * (y // 64 - r0), 4 * (x // 64 - c0), th // 16, tw // 16))


def decode_tile_latent(loaded: registry.LoadedModel, payload: bytes, tw: int, th: int, level: float,
                       precision: int, tile_index: int, hyper: ZWindow | None = None):
    """TILE payload -> the tile's synthesis input [1, C, th/16, tw/16] (see the model's synthesis_input);
    ``hyper``: its window of the shared ẑ (SPEC §6.3)."""
    import torch

    net = loaded.net
    y_sym, state = decode_latents(net, payload, (net.N, th // 64, tw // 64), precision, tile_index, "TILE chunk",
                                  level, hyper)
    with torch.no_grad(), single_threaded_torch():
        return net.synthesis_input(y_sym, state, level)


def _synthesize(net, latent, level: float) -> np.ndarray:
    """Synthesis input (a tile or a window) -> RGB uint8 [16h, 16w, 3]."""
    import torch

    with torch.no_grad(), single_threaded_torch():
        x_hat = net.synthesize_input(latent, level)
    return x_hat[0].mul(255.0).round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def decode_tile(loaded: registry.LoadedModel, payload: bytes, tw: int, th: int, level: float,
                precision: int, tile_index: int) -> np.ndarray:
    """TILE payload of an independently synthesised tile (SPEC §6) -> RGB uint8 tile of th × tw."""
    latent = decode_tile_latent(loaded, payload, tw, th, level, precision, tile_index)
    return _synthesize(loaded.net, latent, level)


def compress_image(image, quality: float = DEFAULT_QUALITY, *, model=None, tile: int = DEFAULT_TILE,
                   target_bpp: float | None = None, independent_tiles: bool = False, effort: int = 0,
                   progress=None, threads: int | None = None) -> bytes:
    """PIL image or uint8 array (H×W, H×W×3, H×W×4) -> aec bytes. quality: 1 (smallest) .. 10, fractional allowed.

    ``tile`` bounds memory; images larger than one tile share ẑ and are synthesised through
    overlapping windows, so tiles do not show (bitstream 1.5). ``independent_tiles``: code and synthesise
    each tile alone instead, as releases up to 0.2 did (readable by their decoders; seams can show).

    ``effort`` 0 (default, fastest) … 9: refine each tile's latent for the rate–distortion cost
    before coding it (``aecodec.effort``; same format and decoder, smaller files for the same
    quality, slower encoding). ``progress(n)`` is called as refinement steps finish.

    ``threads``: tiles coded side by side (default ``coding.CODING_THREADS``, else one per CPU);
    the bytes are the same for every value.

    ``target_bpp``: instead of ``quality``, the highest quality whose file has at most that many
    bits per pixel (see compress_image_to_target); a ``TargetBppWarning`` says when the model's
    range of qualities cannot reach it."""
    if target_bpp is not None:
        result = compress_image_to_target(image, target_bpp, model=model, tile=tile,
                                          independent_tiles=independent_tiles, effort=effort, threads=threads)
        if result.warning:
            warnings.warn(result.warning, TargetBppWarning, stacklevel=2)
        return result.data
    buf = io.BytesIO()
    write_image(buf, image, quality, model=model, tile=tile, independent_tiles=independent_tiles, effort=effort,
                progress=progress, threads=threads)
    return buf.getvalue()


def write_image(fileobj: BinaryIO, image, quality: float = DEFAULT_QUALITY, *, model=None, tile: int = DEFAULT_TILE,
                independent_tiles: bool = False, effort: int = 0, progress=None, threads: int | None = None) -> None:
    """Like compress_image, writing chunk by chunk to a binary file object."""
    loaded = resolve_model(model)
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
        "quality": quality_text(quality),
        "image": {"width": width, "height": height, "mode": planes.mode, "bit_depth": planes.bit_depth,
                  "tile": tile, "coded_channels": 3},
    }
    level = level_for(quality)
    rgb = _pad(planes.rgb, IMAGE_ALIGN)
    grid = tile_grid(width, height, tile)
    # several tiles: synthesised through overlapping windows of the whole latent (SPEC §6.2) and
    # sharing ẑ, each tile's μ, σ from a window of the whole image's ẑ (§6.3, 1.5), so neither the
    # picture nor the prediction changes at a tile border; one tile is the plain layout (context
    # models' tiles are §6.1, 1.3)
    overlap = loaded.net.synthesis_margin if len(grid) > 1 and not independent_tiles else 0
    hyper_overlap = loaded.net.hyper_margin if overlap else 0
    if overlap:
        header["image"]["overlap"] = overlap
        header["image"]["hyper_overlap"] = hyper_overlap
    minor = 5 if overlap else loaded.net.bitstream_minor
    flags = container.FLAG_OVERLAPPED_TILES | container.FLAG_SHARED_HYPER if overlap else 0
    workers = coding_workers(threads)
    # refinement of fewer tiles than cores shares the cores out (other coding stays one thread per tile)
    refine_threads = max(1, workers // min(len(grid), workers))
    cancel = threading.Event()
    minor = max(minor, image_icc.minor_for(planes.icc))  # an ICCN chunk is 1.3 (SPEC §3.1)
    with container.ContainerWriter(fileobj, header, minor=minor, flags=flags) as writer:
        if overlap:  # the whole image's y_q and ẑ first, then each tile coded with its ẑ window
            y_map, zmap = whole_latent(loaded, rgb, grid, level, hyper_overlap, workers, cancel)

        def one(item):
            i, box = item
            if not overlap:
                return encode_tile(loaded, rgb, box, level, precision, i, effort=effort,
                                   refine_threads=refine_threads, progress=progress, cancel=cancel)
            x, y, tw, th = box
            y_q = y_map[:, :, y // 16 : (y + th) // 16, x // 16 : (x + tw) // 16].contiguous()
            z_sym = np.ascontiguousarray(zmap[:, y // 64 : (y + th) // 64, x // 64 : (x + tw) // 64])
            return code_tile(loaded, rgb, box, y_q, z_sym, level, precision, i, z_window(zmap, box, hyper_overlap),
                             effort, refine_threads, progress, cancel)

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
                             steps: int = 8, independent_tiles: bool = False, effort: int = 0,
                             threads: int | None = None) -> TargetResult:
    """The highest quality whose file has at most ``target_bpp`` bits per pixel: bisection over
    the model's whole continuous quality range (from the registry), on real file sizes.

    Unreachable targets are not an error: below the lowest quality's rate the lowest quality is
    returned, above the highest quality's rate the highest; ``warning`` then says so."""
    if isinstance(target_bpp, bool) or not isinstance(target_bpp, (int, float)) or not (
            np.isfinite(target_bpp) and target_bpp > 0):
        raise InputError(f"target bits per pixel must be a positive number, got {target_bpp!r}")
    loaded = resolve_model(model)
    planes = image_io.to_planes(image)  # converted once, coded at every step
    pixels = planes.size[0] * planes.size[1]
    lo, hi = (float(q) for q in loaded.variant.qualities)

    def code(q: float) -> tuple[bytes, float]:
        data = compress_image(_PlanesImage(planes), q, model=loaded, tile=tile, independent_tiles=independent_tiles,
                              effort=effort, threads=threads)
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
    hyper_overlap: int = 0  # ẑ cells each tile's h_s window extends it by; 0: tile-local ẑ (SPEC §6.3)


# Largest synthesis overlap a file may ask for: one neighbouring tile row (at least 4 cells tall)
# then holds every latent row a window needs.
MAX_OVERLAP = 4


def parse_image_header(header: dict) -> ImageInfo:
    """Validate every field that sizes work or memory before anything is decoded."""
    if header.get("modality") != "image":
        raise HeaderError(f"not an image file (modality {header.get('modality')!r})")
    img = header.get("image")
    model = header.get("model")
    coder = header.get("coder")
    if not isinstance(img, dict) or not isinstance(model, dict) or not isinstance(coder, dict):
        raise HeaderError("image header lacks its image, model or coder object")
    width = int_field(img, "width", 1, 65535)
    height = int_field(img, "height", 1, 65535)
    if width * height > image_io.MAX_PIXELS:
        raise LimitError(f"{width}×{height} exceeds the limit of {image_io.MAX_PIXELS} pixels")
    tile = int_field(img, "tile", IMAGE_ALIGN, MAX_TILE)
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
    overlap = int_field(img, "overlap", 1, MAX_OVERLAP) if "overlap" in img else 0
    hyper_overlap = int_field(img, "hyper_overlap", 1, MAX_OVERLAP) if "hyper_overlap" in img else 0
    if hyper_overlap and not overlap:
        raise HeaderError("image.hyper_overlap needs image.overlap (shared ẑ is for overlapped tiles)")
    quality, variant = parse_coding_fields(header)
    return ImageInfo(header, width, height, mode, bit_depth, tile, quality, variant, overlap, hyper_overlap)


def read_info(data_or_file) -> ImageInfo:
    """Header of an aec image file, validated; decodes nothing."""
    return parse_image_header(container.ContainerReader(data_or_file).header)


def decompress_image(data_or_file, *, model=None, threads: int | None = None):
    """aec bytes (or a binary file object) -> PIL image in the input's mode, with icc_profile/exif in info.
    ``threads``: tiles decoded side by side (as compress_image's)."""
    reader = container.ContainerReader(data_or_file)
    info = parse_image_header(reader.header)
    loaded = model_for(info, model)
    grid = tile_grid(info.width, info.height, info.tile)
    rgb = np.empty((info.height, info.width, 3), np.uint8)
    alpha = icc = exif = None
    decoded_tiles: set[int] = set()
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
    if bool(reader.flags & container.FLAG_SHARED_HYPER) != bool(info.hyper_overlap):
        raise HeaderError("the shared-ẑ flag and the header's image.hyper_overlap disagree")
    decoded = (_decode_overlapped if info.overlap else _decode_independent)(loaded, info, tiles(), grid,
                                                                             coding_workers(threads))
    for n, (x, y), pixels in decoded:
        h, w = min(pixels.shape[0], info.height - y), min(pixels.shape[1], info.width - x)
        rgb[y : y + h, x : x + w] = pixels[:h, :w]
        decoded_tiles.add(n)
    if "ALPH" in extras:
        alpha = image_io.alpha_from_png(extras["ALPH"], (info.width, info.height))
    icc, exif = image_icc.from_chunks(extras), extras.get("EXIF")
    if len(decoded_tiles) != len(grid):
        raise FormatError(f"file has {len(decoded_tiles)} TILE chunks, the header implies {len(grid)}")
    if (alpha is not None) != (info.mode in ("RGBA", "LA")):
        raise FormatError(f"mode {info.mode} and the presence of an alpha plane disagree")
    return image_io.from_planes(rgb, alpha, info.mode, info.bit_depth, icc, exif)


def _decode_independent(loaded, info: ImageInfo, tiles, grid, workers: int | None = None):
    """Tiles synthesised one by one (SPEC §6) -> (index, (x, y), RGB tile) in order."""
    precision, level = info.header["coder"]["precision"], level_for(info.quality)

    def one(item):
        n, payload = item
        x, y, tw, th = grid[n]
        return n, (x, y), decode_tile(loaded, payload, tw, th, level, precision, n)

    yield from parallel_map(one, tiles, workers)


def _decode_overlapped(loaded, info: ImageInfo, tiles, grid, workers: int | None = None):
    """Overlapped tiles (SPEC §6.2) -> (index, (x, y), RGB tile) in order.

    The tiles' latents are decoded in parallel and kept as bands, one per row of tiles; once the
    row below is complete, each tile of a row is synthesised from the window of the whole latent
    that extends it by ``overlap`` cells (clipped to the image): the pixels a whole-image
    synthesis gives, with memory bounded by three rows of latents."""
    import torch

    precision, level, m = info.header["coder"]["precision"], level_for(info.quality), info.overlap
    net = loaded.net
    row_ys = sorted({y for _, y, _, _ in grid})
    rows = [[n for n, box in enumerate(grid) if box[1] == ry] for ry in row_ys]
    row_of = {n: r for r, ns in enumerate(rows) for n in ns}
    lat_w = (grid[rows[0][-1]][0] + grid[rows[0][-1]][2]) // 16
    lat_h = (row_ys[-1] + grid[rows[-1][0]][3]) // 16
    bands: dict[int, torch.Tensor] = {}  # row of tiles -> its latent band [1, C, h, lat_w]
    filled: dict[int, int] = {}  # row -> tiles decoded
    zmap = None
    if info.hyper_overlap:  # tiles share ẑ (SPEC §6.3): every tile's z before any y (payloads are small)
        tiles = list(tiles)
        if len(tiles) != len(grid):
            raise FormatError(f"file has {len(tiles)} TILE chunks, the header implies {len(grid)}")
        zmap = z_map(grid, list(parallel_map(
            lambda item: decode_z(net, item[1], (net.N, grid[item[0]][3] // 64, grid[item[0]][2] // 64), precision,
                                  "TILE chunk"), tiles, workers)))

    def latent(item):
        n, payload = item
        x, y, tw, th = grid[n]
        hyper = z_window(zmap, grid[n], info.hyper_overlap) if zmap is not None else None
        return n, decode_tile_latent(loaded, payload, tw, th, level, precision, n, hyper)

    def synthesis_jobs(r: int) -> list:
        """Row r's tiles as synthesis jobs, each tile in parts of at most SYNTHESIS_ROWS pixel rows
        (SPEC §6.2), over one strip of rows r−1 … r+1 (a copy, so the band of row r−1 can go)."""
        parts = [r2 for r2 in (r - 1, r, r + 1) if r2 in bands]
        strip = torch.cat([bands[r2] for r2 in parts], 2)
        strip_top = row_ys[parts[0]] // 16
        tile_top, tile_rows = row_ys[r] // 16, grid[rows[r][0]][3] // 16
        step = SYNTHESIS_ROWS // 16

        def one(job):
            n, top = job
            x, y, tw, th = grid[n]
            height = min(step, tile_top + tile_rows - top)
            r0, r1 = _window(top, top + height, m, lat_h)
            c0, c1 = _window(x // 16, (x + tw) // 16, m, lat_w)
            pixels = _synthesize(net, strip[:, :, r0 - strip_top : r1 - strip_top, c0:c1].contiguous(), level)
            oy, ox = 16 * (top - r0), 16 * (x // 16 - c0)
            return n, (x, 16 * top), pixels[oy : oy + 16 * height, ox : ox + tw]

        return [(one, (n, top)) for n in rows[r] for top in range(tile_top, tile_top + tile_rows, step)]

    def ready(r: int) -> bool:
        return filled.get(r, 0) == len(rows[r])

    def place(n: int, lat) -> list:
        """A decoded tile latent into its band -> the synthesis jobs that became possible."""
        r = row_of[n]
        if r not in bands:
            bands[r] = torch.empty(1, lat.shape[1], grid[n][3] // 16, lat_w, dtype=lat.dtype)
        x = grid[n][0] // 16
        bands[r][:, :, :, x : x + lat.shape[3]] = lat
        filled[r] = filled.get(r, 0) + 1
        jobs = []
        while state["done"] < len(rows) and ready(state["done"]) and (
                state["done"] + 1 == len(rows) or ready(state["done"] + 1)):
            jobs += synthesis_jobs(state["done"])
            bands.pop(state["done"] - 1, None)
            state["done"] += 1
        return jobs

    # One pool runs both stages (a second pool's threads would add their own allocator arenas
    # and scratch memory); at most 2·workers jobs are in flight, as in parallel_map.
    state = {"done": 0}
    workers = coding_workers(workers)
    latents, outputs = deque(), deque()
    items = iter(tiles)
    with _pool(workers) as pool:
        try:
            while True:
                while len(latents) + len(outputs) < 2 * workers:
                    item = next(items, None)
                    if item is None:
                        break
                    latents.append(pool.submit(latent, item))
                if outputs and (not latents or outputs[0].done()):
                    yield outputs.popleft().result()
                elif latents:
                    outputs.extend(pool.submit(fn, n) for fn, n in place(*latents.popleft().result()))
                else:
                    break
        except BaseException:
            for future in (*latents, *outputs):
                future.cancel()
            raise


class _InlinePool:
    """An executor that runs each job when submitted (one worker: no threads)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def submit(fn, *args):
        future = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - delivered by result(), as a thread pool would
            future.set_exception(exc)
        return future


def _pool(workers: int):
    return _InlinePool() if workers <= 1 else ThreadPoolExecutor(workers, initializer=_one_torch_thread)


# the verbs aecodec.audio has: compress/decompress on bytes, write/read on files
compress = compress_image
decompress = decompress_image


def write(file, image, quality: float = DEFAULT_QUALITY, **options) -> None:
    """compress_image(image, quality, **options) written to a path or a binary file object
    (a path is written only once the whole file is coded)."""
    data = compress_image(image, quality, **options)
    if hasattr(file, "write"):
        file.write(data)
    else:
        with open(file, "wb") as f:
            f.write(data)


def read(file, *, model=None, threads: int | None = None):
    """decompress_image of a path or a binary file object -> PIL image."""
    if hasattr(file, "read"):
        return decompress_image(file, model=model, threads=threads)
    with open(file, "rb") as f:
        return decompress_image(f.read(), model=model, threads=threads)
