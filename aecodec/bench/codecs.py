"""Codec adapters for the image benchmark: one small interface over aecodec and Pillow's codecs.

    adapter = get_codec("webp")
    data = adapter.encode(rgb_image, quality)   PIL RGB image ─> the complete file as bytes
    image = adapter.decode(data)                bytes ─> PIL RGB image of the same size

Every adapter has `name`, `qualities` (the default sweep, lowest rate first), `description`
(one line for results files) and `settings` (the exact encoder options, written into results).
The bytes are the whole file a user would store, headers included, so bpp is the real rate.
"""

from __future__ import annotations

import io

from PIL import Image, features

CODEC_NAMES = ("aec", "jpeg", "webp", "avif")


class PillowCodec:
    """A lossy format Pillow encodes and decodes; `options` are passed to Image.save unchanged."""

    def __init__(self, name: str, pillow_format: str, qualities: list[int], options: dict, description: str):
        self.name = name
        self.pillow_format = pillow_format
        self.qualities = list(qualities)
        self.options = dict(options)
        self.description = description

    @property
    def settings(self) -> dict:
        return {"pillow_format": self.pillow_format, "save_options": self.options, "pillow": Image.__version__}

    def encode(self, image: Image.Image, quality: int) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, self.pillow_format, quality=int(quality), **self.options)
        return buffer.getvalue()

    def decode(self, data: bytes) -> Image.Image:
        with Image.open(io.BytesIO(data)) as decoded:
            decoded.load()
            return decoded.convert("RGB")


def jpeg_codec() -> PillowCodec:
    """Baseline JPEG through Pillow's libjpeg(-turbo): 4:2:0 chroma, standard Huffman tables (no optimize)."""
    return PillowCodec(
        "jpeg",
        "JPEG",
        [5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95],
        {"subsampling": "4:2:0", "optimize": False, "progressive": False},
        f"JPEG (Pillow {Image.__version__}, libjpeg-turbo {features.version('libjpeg_turbo')}), "
        "baseline, 4:2:0, default Huffman tables, quality sweep",
    )


def webp_codec() -> PillowCodec:
    """Lossy WebP through Pillow's libwebp at method=6 (slowest, best compression; always 4:2:0)."""
    return PillowCodec(
        "webp",
        "WEBP",
        [5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95],
        {"lossless": False, "method": 6},
        f"WebP (Pillow {Image.__version__}, libwebp {features.version('webp')}), lossy, method=6, "
        "4:2:0, quality sweep",
    )


def avif_codec() -> PillowCodec:
    """AVIF through Pillow's built-in libavif: speed 6 (Pillow's default), 4:2:0, full range."""
    return PillowCodec(
        "avif",
        "AVIF",
        [10, 20, 30, 40, 50, 60, 70, 80, 90],
        {"speed": 6, "subsampling": "4:2:0", "range": "full", "codec": "auto"},
        f"AVIF (Pillow {Image.__version__}, libavif {features.version('avif')}, encoder chosen by "
        "libavif: aom in Pillow's wheels), speed 6, 4:2:0, full range, quality sweep",
    )


class AecCodec:
    """aecodec's own API; imported lazily so the other codecs work without it. Every integer quality level."""

    name = "aec"

    def __init__(self, model=None, effort: int = 0):
        self.model = model  # None: the registry's default image model
        self.effort = effort
        if effort:
            self.name = f"aec-e{effort}"
        from aecodec import registry

        if model is None or isinstance(model, (str, int)):
            variant = registry.variant(registry.DEFAULT_IMAGE_MODEL if model is None else model)
        else:
            variant = model.variant
        lo, hi = variant.qualities
        self.qualities = list(range(int(lo), int(hi) + 1))

    @property
    def description(self) -> str:
        effort = f", --effort {self.effort}" if self.effort else ""
        return f"aecodec ({self._model_name()}{effort}), quality levels {self.qualities[0]}-{self.qualities[-1]}"

    @property
    def settings(self) -> dict:
        import torch

        return {"model": self._model_name(), "effort": self.effort, "torch": torch.__version__,
                "torch_threads": torch.get_num_threads()}

    def _model_name(self) -> str:
        if self.model is None:
            from aecodec import registry

            return registry.DEFAULT_IMAGE_MODEL
        variant = getattr(self.model, "variant", None)
        return getattr(variant, "name", None) or str(self.model)

    def encode(self, image: Image.Image, quality: int) -> bytes:
        from aecodec.image import compress_image

        return compress_image(image, quality, model=self.model, effort=self.effort)

    def decode(self, data: bytes) -> Image.Image:
        from aecodec.image import decompress_image

        return decompress_image(data, model=self.model).convert("RGB")


def get_codec(name: str):
    """The adapter for a codec name in CODEC_NAMES (aec, jpeg, webp, avif), or aec-eN: aecodec at --effort N."""
    if name.startswith("aec-e") and name[5:].isdigit():
        from aecodec.effort import MAX_EFFORT

        if not 1 <= int(name[5:]) <= MAX_EFFORT:
            raise ValueError(f"{name}: the effort must be 1..{MAX_EFFORT}")
        return AecCodec(effort=int(name[5:]))
    factories = {"aec": AecCodec, "jpeg": jpeg_codec, "webp": webp_codec, "avif": avif_codec}
    if name not in factories:
        raise ValueError(f"unknown image codec {name!r}; choose from {', '.join(CODEC_NAMES)}")
    return factories[name]()
