"""Compatibility names: this module was the image API and the shared coding core until both
moved apart. Use ``aecodec.image`` (compress/decompress, read/write, read_info, tiles) and
``aecodec.coding`` (latents <-> payloads, symbol CRCs, threads, header fields) instead.

``codec.CODING_THREADS`` reads and sets ``aecodec.coding.CODING_THREADS`` (the process default of
the ``threads=`` options).
"""

from __future__ import annotations

import sys
import types

from aecodec import coding, container, entropy, image, registry  # noqa: F401 - container etc. as before
from aecodec import effort as effort_mod  # noqa: F401
from aecodec.io import icc as image_icc  # noqa: F401
from aecodec.io import image as image_io  # noqa: F401
from aecodec.coding import (  # noqa: F401 - re-exported
    LATENT_HEAD,
    _one_torch_thread,
    coding_workers,
    decode_latents,
    encode_latents,
    parallel_map,
    parse_coding_fields,
    single_threaded_torch,
    torch_threads,
)
from aecodec.errors import (  # noqa: F401 - re-exported
    CorruptStreamError,
    FormatError,
    HeaderError,
    InputError,
    LimitError,
    ModelError,
)
from aecodec.image import (  # noqa: F401 - re-exported
    DEFAULT_QUALITY,
    DEFAULT_TILE,
    IMAGE_ALIGN,
    MAX_OVERLAP,
    MAX_TILE,
    ImageInfo,
    TargetBppWarning,
    TargetResult,
    _decode_independent,
    _decode_overlapped,
    _pad,
    _PlanesImage,
    _synthesize,
    _window,
    compress_image,
    compress_image_to_target,
    decode_tile,
    decode_tile_latent,
    decompress_image,
    encode_tile,
    parse_image_header,
    read_info,
    tile_grid,
    write_image,
)

TILE_HEAD = LATENT_HEAD
_int_field = coding.int_field
_model_for = coding.model_for
_quality_text = coding.quality_text
_resolve = coding.resolve_model
_symbols_crc = coding.symbols_crc

__all__ = image.__all__


class _Module(types.ModuleType):
    @property
    def CODING_THREADS(self):  # noqa: N802 - the old module global
        return coding.CODING_THREADS

    @CODING_THREADS.setter
    def CODING_THREADS(self, value):  # noqa: N802
        coding.CODING_THREADS = value


sys.modules[__name__].__class__ = _Module
