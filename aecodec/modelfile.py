"""Model files: a model trained on your own data, as one safetensors file that says what it is.

    aecodec train image --data normal/ --out runs/x --export model.safetensors
    aecodec score --model model.safetensors new/*.png

A model file is a safetensors file (tensors + a string-to-string metadata map; no
pickle anywhere) whose metadata carries::

    format          "aecodec-model"
    format_version  "1"            (a reader refuses a newer major version)
    architecture    class name of the network, e.g. "GainedMeanScaleHyperprior"
    modality        "image" or "audio"
    kwargs          JSON object of the constructor's arguments, e.g. {"N": 96, "M": 160, "levels": 10}

Loading reads and checks the safetensors header first (size bounds, JSON, metadata),
builds the architecture on torch's "meta" device (no memory) and checks that every
tensor it needs is in the file with the right shape -- so a forged file cannot make
it allocate more than the file holds -- then loads the weights the way the registry
loads shipped ones (``registry.load_weights``) and validates the coding tables. The
model's identity is the file's sha256. Every failure is a ``ModelFileError``.

Files exported before this format (architecture, N, M / family only) still load.
"""

from __future__ import annotations

import json
import struct
import threading
from pathlib import Path

from aecodec import registry
from aecodec.errors import ModelError
from aecodec.models.audio_families import AUDIO_FAMILIES

FORMAT = "aecodec-model"
FORMAT_VERSION = 1
MAX_HEADER_BYTES = 16 << 20  # safetensors' own limit is 100 MB; ours: a model header is a few kB
USER_MODEL_ID = 65535  # not a shipped model (same as registry.from_network)


def _context_hyperprior(**kwargs):
    """The channel-group + checkerboard context model (``aecodec.models.context``), for inference."""
    try:
        from aecodec.models.context import ContextHyperprior
    except ImportError:
        raise ModelError("this aecodec has no ContextHyperprior architecture") from None
    return ContextHyperprior(**kwargs, inference=True)


# Architecture name (the network's class) -> (modality, inference builder: the registry's where it has one).
# A new architecture that should be loadable from model files adds its line here.
ARCHITECTURES = {
    "GainedMeanScaleHyperprior": ("image", registry._image_hyperprior),
    "ContextHyperprior": ("image", _context_hyperprior),
    "AudioHyperprior": ("audio", registry._audio_hyperprior),
}

__all__ = ["ModelFileError", "load_model_file", "read_metadata", "file_metadata", "is_model_file", "FORMAT",
           "FORMAT_VERSION", "ARCHITECTURES"]


class ModelFileError(ModelError):
    """A model file that is not a readable aecodec model (not safetensors, bad metadata, weights
    that do not fit the architecture, invalid coding tables)."""


def _architecture_kwargs(net, family: str | None) -> dict:
    config = getattr(net, "config", None)
    if isinstance(config, dict):  # a network that records its own constructor arguments
        return dict(config)
    if family is not None:
        return dict(AUDIO_FAMILIES[family])
    kwargs = {"N": int(net.N), "M": int(net.M), "levels": int(net.levels),
              "precision": int(net.entropy_bottleneck.entropy_coder_precision)}
    if getattr(net, "groups", None) is not None:  # channel groups of a context model
        kwargs["groups"] = [int(g) for g in net.groups]
    return kwargs


def file_metadata(net, family: str | None = None) -> dict[str, str]:
    """The metadata that makes an exported state dict a model file (export adds it)."""
    arch = type(net).__name__
    if arch not in ARCHITECTURES:
        raise ModelError(f"architecture {arch!r} cannot be written as a model file (known: {', '.join(ARCHITECTURES)})")
    kwargs = _architecture_kwargs(net, family)
    return {"format": FORMAT, "format_version": str(FORMAT_VERSION), "architecture": arch,
            "modality": ARCHITECTURES[arch][0], "kwargs": json.dumps(kwargs, sort_keys=True)}


def _header(path: Path) -> dict:
    """The safetensors JSON header, checked: u64 LE length, then that many bytes of JSON."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            size = path.stat().st_size
            if len(head) < 8:
                raise ModelFileError(f"{path} is not a safetensors model file (shorter than 8 bytes)")
            (n,) = struct.unpack("<Q", head)
            if n < 2 or n > MAX_HEADER_BYTES or 8 + n > size:
                raise ModelFileError(f"{path} is not a safetensors model file (header length {n} does not fit "
                                     f"a file of {size} bytes)")
            raw = f.read(n)
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"{path} is not a safetensors model file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path} is not a safetensors model file (its header is not a JSON object)")
    return header


def read_metadata(path) -> dict:
    """Architecture, modality and kwargs of a model file (reads only its header)."""
    path = Path(path)
    header = _header(path)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ModelFileError(f"{path} has no aecodec metadata (export it with `aecodec train ... --export` "
                             "or `python -m aecodec.train.export`)")
    if "format" in meta and meta["format"] != FORMAT:
        raise ModelFileError(f"{path} is a {meta['format']!r} file, not an aecodec model")
    version = meta.get("format_version", "1")
    try:
        major = int(version.split(".")[0])
    except ValueError:
        raise ModelFileError(f"{path}: bad format_version {version!r}") from None
    if major > FORMAT_VERSION:
        raise ModelFileError(f"{path} is model-file format {version}; this aecodec reads up to {FORMAT_VERSION}")
    arch = meta.get("architecture")
    if arch not in ARCHITECTURES:
        raise ModelFileError(f"{path}: unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)})")
    modality = ARCHITECTURES[arch][0]
    if "kwargs" in meta:
        try:
            kwargs = json.loads(meta["kwargs"])
        except json.JSONDecodeError:
            raise ModelFileError(f"{path}: kwargs are not JSON") from None
    elif "family" in meta:  # exports written before format 1
        kwargs = dict(AUDIO_FAMILIES.get(meta["family"], {}))
        if not kwargs:
            raise ModelFileError(f"{path}: unknown audio family {meta['family']!r}")
    else:
        try:
            kwargs = {"N": int(meta["N"]), "M": int(meta["M"])}
        except (KeyError, ValueError):
            raise ModelFileError(f"{path}: metadata lacks kwargs (or N and M)") from None
    _check_kwargs(path, kwargs)
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    return {"architecture": arch, "modality": modality, "kwargs": kwargs, "metadata": meta, "tensors": tensors}


def _check_kwargs(path: Path, kwargs) -> None:
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise ModelFileError(f"{path}: kwargs must be a JSON object")

    def ok(v) -> bool:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return True
        if isinstance(v, (int, float)):
            return abs(v) <= 1e7
        if isinstance(v, list):
            return len(v) <= 64 and all(ok(x) and not isinstance(x, list) for x in v)
        return False

    bad = [k for k, v in kwargs.items() if not ok(v) or k == "inference"]
    if bad:
        raise ModelFileError(f"{path}: kwargs {bad} are not allowed values")


def _fits(path: Path, info: dict) -> None:
    """Build the architecture without memory (meta device) and compare its state dict with the file's
    tensors: every key present with the same shape. Bounds the real build by the file's size."""
    import torch

    _, build = ARCHITECTURES[info["architecture"]]
    try:
        with torch.device("meta"):
            net = build(**info["kwargs"])
    except ModelError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except (TypeError, ValueError, RuntimeError, KeyError, ZeroDivisionError) as exc:
        raise ModelFileError(f"{path}: cannot build {info['architecture']} from {info['kwargs']}: {exc}") from None
    tensors = info["tensors"]
    for key, value in net.state_dict().items():
        entry = tensors.get(key)
        if not isinstance(entry, dict):
            raise ModelFileError(f"{path}: weights do not fit {info['architecture']}{info['kwargs']}: {key} missing")
        if list(entry.get("shape", [])) != list(value.shape):
            raise ModelFileError(f"{path}: weights do not fit {info['architecture']}{info['kwargs']}: {key} has shape "
                                 f"{entry.get('shape')}, the architecture needs {list(value.shape)}")


_cache: dict[tuple[str, str], registry.LoadedModel] = {}
_lock = threading.Lock()


def load_model_file(path) -> registry.LoadedModel:
    """A model file -> LoadedModel (identity: the file's sha256; id 65535, not a shipped model). Cached."""
    import torch

    from aecodec.errors import InvalidTableError

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    info = read_metadata(path)
    try:
        digest = registry.sha256_file(path)
    except OSError as exc:
        raise ModelFileError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    with _lock:
        key = (str(path.resolve()), digest)
        if key in _cache:
            return _cache[key]
    _fits(path, info)
    _, build = ARCHITECTURES[info["architecture"]]
    kwargs = info["kwargs"]
    levels = int(kwargs.get("levels", 10 if info["modality"] == "image" else 3))
    default = registry.BY_NAME[registry.DEFAULT_IMAGE_MODEL].default_quality if info["modality"] == "image" else 2.0
    variant = registry.ModelVariant(
        name=info["metadata"].get("name") or path.stem, id=USER_MODEL_ID, modality=info["modality"], build=build,
        kwargs=kwargs, weights=str(path), sha256=digest, qualities=(1.0, float(levels)),
        default_quality=min(float(levels), default), description=f"model file {path.name}")
    try:
        net = registry.load_weights(variant, path)  # builds (validates) the coding tables too
    except InvalidTableError as exc:
        raise ModelFileError(f"{path}: coding tables are invalid: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - safetensors, torch and the builder raise many types
        raise ModelFileError(f"{path}: weights do not load: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
    for name, tensor in net.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelFileError(f"{path}: tensor {name} is not finite")
    try:
        net.z_tables(), net.y_tables()
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - InvalidTableError, or tables missing altogether
        raise ModelFileError(f"{path}: coding tables are invalid: {exc}") from None
    loaded = registry.LoadedModel(variant, net, digest)
    with _lock:
        _cache[key] = loaded
    return loaded


def is_model_file(spec: str) -> bool:
    """Does a --model argument name a file (rather than a registry name)?"""
    return spec.endswith(".safetensors") or "/" in spec or Path(spec).is_file()
