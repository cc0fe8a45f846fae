"""The coding core both modalities share: latents <-> payloads, symbol CRCs, threads.

    encode_latents(net, z, y, idx)  z symbols ─entropy.encode─> z data
                                    y symbols in the model's coding order (net.y_coding_order)
                                    ─entropy.encode─> y data
                                    -> LATENT_HEAD <z len, y len, crc32(key, symbols)> | z | y
    decode_latents(net, payload)    the mirror: the model decodes its y symbols from one stream
                                    (net.decode_y_symbols), the CRC catches a desync

One coded unit is an image tile (``aecodec.image``) or one channel of an audio segment
(``aecodec.audio``). The model declares how its y is ordered and decoded; this module knows no
model class. Also here: the one-torch-thread discipline (``single_threaded_torch``), the thread
pool that codes units side by side (``parallel_map``), the header fields every modality shares
(``parse_coding_fields``, ``int_field``) and the model a file needs (``model_for``).

The API's quality is 1-based (1 .. the model's levels, fractional allowed); models take the
0-based ``level`` = quality − 1 (``level_for``).
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

from aecodec import entropy, registry
from aecodec.errors import CorruptStreamError, FormatError, HeaderError, ModelError

LATENT_HEAD = struct.Struct("<III")  # z bytes, y bytes, crc32 of the decoded symbols

# Threads that code tiles / segments in parallel (None: one per CPU): the process default that
# ``threads=`` options override. Results are identical for every value.
CODING_THREADS: int | None = None


def level_for(quality: float) -> float:
    """The API's 1-based quality -> the models' 0-based level."""
    return float(quality) - 1.0


def quality_text(quality: float) -> str:
    """A quality (or another header number) as the header writes it: at most 3 decimals."""
    return f"{float(quality):.3f}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------------------------------------
# threads


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


def coding_workers(workers: int | None = None) -> int:
    """Threads for coding units side by side: ``workers``, else CODING_THREADS, else one per CPU."""
    return workers or CODING_THREADS or (os.cpu_count() or 1)


@contextmanager
def coding_threads(n: int | None):
    """CODING_THREADS = ``n`` inside the block (restored after)."""
    global CODING_THREADS
    before, CODING_THREADS = CODING_THREADS, n
    try:
        yield
    finally:
        CODING_THREADS = before


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


# ---------------------------------------------------------------------------------------------
# latents <-> payload


def symbols_crc(key: int, *arrays: np.ndarray) -> int:
    """CRC-32 of the unit's key (u32 LE: a tile's raster index, an audio segment/channel key) and
    its symbols (int32 LE): catches a desynchronised decoder and units moved to another place."""
    crc = zlib.crc32(struct.pack("<I", key))
    for a in arrays:
        crc = zlib.crc32(np.ascontiguousarray(a, dtype="<i4").tobytes(), crc)
    return crc


def encode_latents(net, z_sym: np.ndarray, y_sym: np.ndarray, y_idx: np.ndarray, precision: int, key: int) -> bytes:
    """Symbols of one coded unit (an image tile, an audio segment channel) -> payload
    ``<III z bytes, y bytes, crc32(key, symbols)> | z data | y data``; y in the model's coding
    order (raster for a hyperprior, pass by pass for a context model, SPEC §6.1)."""
    z_data = entropy.encode(z_sym, net.z_indexes(z_sym.shape), net.z_tables(), precision=precision)
    order = net.y_coding_order(y_sym.shape)
    y_data = entropy.encode(y_sym.reshape(-1)[order], y_idx.reshape(-1)[order], net.y_tables(), precision=precision)
    return LATENT_HEAD.pack(len(z_data), len(y_data), symbols_crc(key, z_sym, y_sym)) + z_data + y_data


def _latent_parts(payload: bytes, what: str) -> tuple[bytes, bytes, int]:
    """A unit's payload -> (z data, y data, symbol crc), the sizes checked."""
    if len(payload) < LATENT_HEAD.size:
        raise FormatError(f"{what} payload shorter than its header")
    z_len, y_len, crc = LATENT_HEAD.unpack_from(payload)
    if LATENT_HEAD.size + z_len + y_len != len(payload):
        raise FormatError(f"{what} payload sizes do not add up")
    return payload[LATENT_HEAD.size : LATENT_HEAD.size + z_len], payload[LATENT_HEAD.size + z_len :], crc


def decode_z(net, payload: bytes, z_shape: tuple[int, ...], precision: int, what: str = "tile") -> np.ndarray:
    """A unit's z symbols alone (tiles that share ẑ need every tile's before any y, SPEC §6.3)."""
    z_data, _, _ = _latent_parts(payload, what)
    try:
        return entropy.decode(z_data, net.z_indexes(z_shape), net.z_tables(), precision=precision)
    except FormatError as exc:
        raise CorruptStreamError(f"{what} does not decode (corrupt data or encoder/decoder desynchronised): {exc}") from None


def decode_latents(net, payload: bytes, z_shape: tuple[int, ...], precision: int, key: int, what: str = "tile",
                   level: float | None = None, hyper=None):
    """The mirror of encode_latents -> (y symbols, the model's decoding state: what its synthesis
    reads besides the symbols, see ``net.decode_y_symbols``; ``level`` is the 0-based quality
    level, needed by models whose y parameters depend on it); a desync raises CorruptStreamError.
    ``hyper``: the y codec's hyper input (a ``ZWindow`` when tiles share ẑ), else the unit's own z."""
    z_data, y_data, crc = _latent_parts(payload, what)
    # The chunk CRC has already vouched for the bytes: a failure to decode them
    # means the decoder's model disagrees with the encoder's (or a forged file).
    try:
        z_sym = entropy.decode(z_data, net.z_indexes(z_shape), net.z_tables(), precision=precision)
        stream = entropy.StreamDecoder(y_data, net.y_tables(), precision=precision)
        with single_threaded_torch():
            y_sym, state = net.decode_y_symbols(z_sym if hyper is None else hyper, level, stream.decode)
        stream.finish()
    except FormatError as exc:
        raise CorruptStreamError(f"{what} does not decode (corrupt data or encoder/decoder desynchronised): {exc}") from None
    if symbols_crc(key, z_sym, y_sym) != crc:
        raise CorruptStreamError("decoded symbols do not match the encoder's checksum (encoder/decoder desynchronised)")
    return y_sym, state


# ---------------------------------------------------------------------------------------------
# header fields and models


def int_field(obj: dict, key: str, lo: int, hi: int) -> int:
    """``obj[key]``, which must be an integer (not a bool) in [lo, hi], else HeaderError."""
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
    int_field(coder, "precision", 1, 16)
    try:
        quality = float(str(header.get("quality")))
    except ValueError:
        raise HeaderError(f"bad quality {header.get('quality')!r}") from None
    if not np.isfinite(quality):
        raise HeaderError("quality is not finite")
    return quality, registry.BY_ID.get(int_field(model, "id", 0, 65535))


def resolve_model(model, default: str = registry.DEFAULT_IMAGE_MODEL) -> registry.LoadedModel:
    """None (the ``default`` variant), a registry name or a LoadedModel -> LoadedModel."""
    if model is None:
        return registry.load(default)
    if isinstance(model, str):
        return registry.load(model)
    return model


def model_for(info, model=None) -> registry.LoadedModel:
    """The model a file needs (``info``: a parsed header with ``header``, ``model`` and
    ``quality``): the one passed, checked against the file's id and weights, else the
    registry's; its quality range must hold the file's quality."""
    wanted = info.header["model"]
    if model is not None:
        loaded = resolve_model(model)
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
