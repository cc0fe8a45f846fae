"""The one table of model variants: name, stable id, architecture, weights file and sha256.

Bitstreams name their model by ``id`` (u16, never reused) and by the first 16
hex digits of the weights' sha256; a decoder refuses a file whose model it
does not have. ``aecodec/weights/manifest.json`` is written from this table by
the export tool and checked against it by the tests.

Weights load only through safetensors and only after their sha256 matches.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable

from aecodec.errors import ModelError
from aecodec.models.audio_families import AUDIO_FAMILIES

WEIGHTS_PACKAGE = "aecodec.weights"


def _image_hyperprior(**kwargs):
    """Built for inference only: no CompressAI import (see models.image.InferenceGDN)."""
    from aecodec.models.image import GainedMeanScaleHyperprior

    return GainedMeanScaleHyperprior(**kwargs, inference=True)


def _audio_hyperprior(**kwargs):
    """Audio models are built for inference only: no CompressAI import (see hyperprior.CodingTables)."""
    from aecodec.models.audio import AudioHyperprior

    return AudioHyperprior(**kwargs, inference=True)


def _audio_kwargs(family: str) -> dict:
    return dict(AUDIO_FAMILIES[family])


@dataclass(frozen=True)
class ModelVariant:
    name: str
    id: int
    modality: str
    build: Callable
    kwargs: dict
    weights: str  # file name inside aecodec/weights/
    sha256: str
    qualities: tuple[float, float]  # lowest and highest quality accepted
    default_quality: float = 0.0  # used when the user names no quality or rate
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def weights_prefix(self) -> str:
        return self.sha256[:16]


VARIANTS: tuple[ModelVariant, ...] = (
    ModelVariant(
        name="image-hyperprior-gain-v6",
        id=8,
        modality="image",
        build=_image_hyperprior,
        kwargs={"N": 96, "M": 160},
        weights="image-hyperprior-gain-v6.safetensors",
        sha256="01e2dbea7efc5543ce2f401794a30f1cc977c1c67de3d59ac210154dd6dec44f",
        qualities=(1.0, 10.0),
        default_quality=6.0,  # λ = 0.013, about 0.7 bpp on Kodak
        description="Variable-rate mean-scale hyperprior (gain units), N=96, M=160, 10 levels, MSE-trained",
    ),
    ModelVariant(
        name="audio-speech-v1",
        id=2,
        modality="audio",
        build=_audio_hyperprior,
        kwargs=_audio_kwargs("speech"),
        weights="audio-speech-v1.safetensors",
        sha256="6dc59776d215a8feaabe390cd424f52cfe67008ae6b346fa3f2210e2a9f69754",
        qualities=(1.0, 3.0),
        default_quality=2.0,
        description="16 kHz mono waveform autoencoder + gained hyperprior, levels ≈ 3 / 6 / 12 kbps",
    ),
    ModelVariant(
        name="audio-music-v1",
        id=3,
        modality="audio",
        build=_audio_hyperprior,
        kwargs=_audio_kwargs("music"),
        weights="audio-music-v1.safetensors",
        sha256="75a5b44daf7c904041c103957d518b24b520a3685bb68875a64c2868359c4b78",
        qualities=(1.0, 3.0),
        default_quality=2.0,
        description="48 kHz waveform autoencoder + gained hyperprior (stereo as mid/side), levels ≈ 12 / 24 / 48 kbps per channel",
    ),
)

BY_NAME = {v.name: v for v in VARIANTS}
BY_ID = {v.id: v for v in VARIANTS}
DEFAULT_IMAGE_MODEL = "image-hyperprior-gain-v6"
# Models whose weights are no longer shipped; their ids are never reused.
RETIRED = {1: "image-hyperprior-gain-v1", 4: "image-hyperprior-gain-v2", 5: "image-hyperprior-gain-v3",
           6: "image-hyperprior-gain-v4", 7: "image-hyperprior-gain-v5"}

assert len(BY_NAME) == len(VARIANTS) and len(BY_ID) == len(VARIANTS), "registry names and ids must be unique"
assert not RETIRED.keys() & BY_ID.keys() and not set(RETIRED.values()) & BY_NAME.keys(), "retired ids are never reused"


def variant(name_or_id: str | int) -> ModelVariant:
    table = BY_ID if isinstance(name_or_id, int) else BY_NAME
    try:
        return table[name_or_id]
    except KeyError:
        known = ", ".join(f"{v.name} (id {v.id})" for v in VARIANTS)
        raise ModelError(f"unknown model {name_or_id!r}{retired_hint(name_or_id)}; known: {known}") from None


def retired_hint(name_or_id) -> str:
    """'' for a model that was never shipped; for a retired one, what to do with its files."""
    for i, name in RETIRED.items():
        if name_or_id in (i, name):
            return (f"; that model is retired ({name}, id {i}, no longer shipped): "
                    "decode with the aecodec release that wrote the file")
    return ""


def weights_path(v: ModelVariant) -> Path:
    return Path(str(resources.files(WEIGHTS_PACKAGE).joinpath(v.weights)))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class LoadedModel:
    """A model ready to code, with the identity written into bitstreams."""

    variant: ModelVariant
    net: object  # torch.nn.Module
    weights_sha256: str

    @property
    def header(self) -> dict:
        return {"name": self.variant.name, "id": self.variant.id, "weights": self.weights_sha256[:16]}


_cache: dict[str, LoadedModel] = {}
_lock = threading.Lock()


def load(name: str) -> LoadedModel:
    """Build the variant and load its shipped weights (sha256-checked, safetensors). Cached."""
    with _lock:
        if name in _cache:
            return _cache[name]
        v = variant(name)
        path = weights_path(v)
        if not path.is_file():
            raise ModelError(f"weights of {v.name} are missing ({path}); reinstall aecodec")
        digest = sha256_file(path)
        if digest != v.sha256:
            raise ModelError(f"weights of {v.name} fail their sha256 check (got {digest[:16]}…, expected {v.sha256[:16]}…)")
        loaded = LoadedModel(v, load_weights(v, path), digest)
        _cache[name] = loaded
        return loaded


def load_weights(v: ModelVariant, path: Path):
    from safetensors.torch import load_file

    net = v.build(**v.kwargs)
    state = load_file(str(path))
    net.load_state_dict(state)
    return net.prepare_inference()


def from_network(net, name: str = "test-random", model_id: int = 65535) -> LoadedModel:
    """Wrap an in-memory network (tests, freshly trained runs) as a LoadedModel; its
    'weights hash' is the sha256 of its state dict so files still name what made them."""
    h = hashlib.sha256()
    for key, value in sorted(net.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    modality = "audio" if getattr(net, "spatial_dims", 2) == 1 else "image"
    v = ModelVariant(name=name, id=model_id, modality=modality, build=type(net), kwargs={}, weights="",
                     sha256=h.hexdigest(), qualities=(1.0, float(net.levels)))
    net.prepare_inference()
    return LoadedModel(v, net, v.sha256)
