"""Image reading for the codec: any Pillow input -> RGB uint8 + what must come back on decode.

    file / PIL image / ndarray ─> ImagePlanes(rgb HxWx3 uint8, alpha HxW uint8 | None,
                                              mode, bit_depth, icc, exif)

Handling, documented in the README:
- L, LA, P, PA, CMYK, YCbCr, I;16, I, F: converted to RGB(A) for coding.
- Grayscale is coded as RGB and converted back to L on decode.
- 16-bit inputs are coded at 8 bits (the top byte) and restored as 16-bit (v × 257).
- Alpha is kept losslessly (PNG in an ALPH chunk).
- ICC profile and EXIF bytes are carried as chunks.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from aecodec.errors import AecError, InputError, LimitError

# Pillow's decompression-bomb threshold (2 × Image.MAX_IMAGE_PIXELS by default).
MAX_PIXELS = 2 * 89_478_485


@dataclass
class ImagePlanes:
    rgb: np.ndarray  # H x W x 3 uint8
    alpha: np.ndarray | None  # H x W uint8
    mode: str  # mode restored on decode: RGB, RGBA, L, LA
    bit_depth: int = 8
    icc: bytes | None = None
    exif: bytes | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]


def open_image(source) -> Image.Image:
    """Open a path / file object / bytes with Pillow, turning its errors into InputError."""
    try:
        if isinstance(source, (bytes, bytearray)):
            source = io.BytesIO(source)
        im = Image.open(source)
        im.load()
        return im
    except Image.DecompressionBombError as exc:
        raise LimitError(f"image too large: {exc}") from None
    except MemoryError:
        raise LimitError("image too large: out of memory while reading it") from None
    except OSError as exc:
        if exc.errno is not None:
            raise  # the file itself cannot be read (missing, permissions): an I/O error
        raise InputError(f"cannot read image: {_describe(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise many types (struct.error, EOFError, ...)
        raise InputError(f"cannot read image: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())  # one line
    return text if isinstance(exc, (OSError, ValueError)) and text else f"{type(exc).__name__}: {text}"


def to_planes(image: Image.Image | np.ndarray) -> ImagePlanes:
    try:
        return _to_planes(image)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        if isinstance(exc, AecError):
            raise
        raise InputError(f"cannot convert the {getattr(image, 'mode', '?')} image: {_describe(exc)}") from None


def _to_planes(image: Image.Image | np.ndarray) -> ImagePlanes:
    if isinstance(image, np.ndarray):
        image = array_to_image(image)
    w, h = image.size
    if w < 1 or h < 1:
        raise InputError(f"image has no pixels ({w}×{h})")
    if w * h > MAX_PIXELS:
        raise LimitError(f"image of {w}×{h} pixels exceeds the limit of {MAX_PIXELS} pixels")
    icc = image.info.get("icc_profile") or None
    exif = image.info.get("exif") or None
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)  # animated inputs: the first frame (the README says so)
    mode = image.mode
    bit_depth = 16 if mode in ("I;16", "I;16B", "I;16L", "I") else 8
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if bit_depth == 16 else 1.0 if mode == "F" else 255.0
        gray = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        return ImagePlanes(np.repeat(gray[:, :, None], 3, 2), None, "L", bit_depth, icc, exif)
    if mode == "1":
        image, mode = image.convert("L"), "L"
    if mode == "P" or mode == "PA":
        has_alpha = "transparency" in image.info or mode == "PA"
        image = image.convert("RGBA" if has_alpha else "RGB")
        mode = image.mode
    if mode in ("L", "LA"):
        gray = np.asarray(image.convert("L"))
        alpha = np.asarray(image.getchannel("A")).copy() if mode == "LA" else None
        return ImagePlanes(np.repeat(gray[:, :, None], 3, 2), alpha, mode, 8, icc, exif)
    if mode in ("RGBA", "RGBa", "La") or ("A" in image.getbands() and mode != "LAB"):  # LAB's A is a colour
        rgba = np.asarray(image.convert("RGBA"))
        return ImagePlanes(rgba[:, :, :3].copy(), rgba[:, :, 3].copy(), "RGBA", 8, icc, exif)
    return ImagePlanes(np.asarray(image.convert("RGB")).copy(), None, "RGB", 8, icc, exif)


GPS_IFD = 0x8825  # EXIF tag of the GPS block (location)


def apply_metadata_policy(image: Image.Image, policy: str) -> str | None:
    """Metadata the encoder carries, changed in ``image.info`` in place. ``"all"``: everything as it
    is; ``"none"``: no EXIF, no ICC profile (cwebp's ``-metadata none``); ``"default"``: the ICC
    profile and the EXIF without its GPS block (the location is the part people do not mean to
    share). Returns what was removed, for a note to the user, or None."""
    if policy == "all":
        return None
    if policy == "none":
        removed = [k for k in ("exif", "icc_profile") if image.info.pop(k, None)]
        return None if not removed else " and ".join("EXIF" if k == "exif" else "ICC profile" for k in removed)
    data = image.info.get("exif")
    if not data:
        return None
    exif = Image.Exif()
    try:
        exif.load(data)
        if GPS_IFD not in exif:
            return None
        del exif[GPS_IFD]
        image.info["exif"] = exif.tobytes()
    except Exception:  # noqa: BLE001 - EXIF Pillow cannot parse: not carried rather than carried with a location
        image.info.pop("exif", None)
        return "unreadable EXIF"
    return "GPS location in EXIF"


def array_to_image(arr: np.ndarray) -> Image.Image:
    if arr.dtype != np.uint8:
        raise InputError(f"arrays must be uint8 (H×W, H×W×3 or H×W×4), got {arr.dtype}")
    if arr.ndim == 2:
        return Image.fromarray(arr, "L")
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(arr), "RGB" if arr.shape[2] == 3 else "RGBA")
    raise InputError(f"arrays must be H×W, H×W×3 or H×W×4, got shape {arr.shape}")


def from_planes(rgb: np.ndarray, alpha: np.ndarray | None, mode: str, bit_depth: int,
                icc: bytes | None, exif: bytes | None) -> Image.Image:
    """Decoded RGB (+ alpha) back to the input's mode, with metadata in ``info``."""
    image = Image.fromarray(rgb, "RGB")
    if mode in ("L", "LA"):
        image = image.convert("L")
        if bit_depth == 16 and mode == "L":
            image = Image.fromarray(np.asarray(image).astype(np.uint16) * 257)
    if alpha is not None:
        if mode == "LA":
            image = Image.merge("LA", (image, Image.fromarray(alpha, "L")))
        else:
            image = Image.merge("RGBA", (*image.split(), Image.fromarray(alpha, "L")))
    if icc:
        image.info["icc_profile"] = icc
    if exif:
        image.info["exif"] = exif
    return image


def alpha_to_png(alpha: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(alpha, "L").save(buf, "PNG", optimize=True)
    return buf.getvalue()


def alpha_from_png(data: bytes, size: tuple[int, int]) -> np.ndarray:
    from aecodec.errors import FormatError

    try:
        im = Image.open(io.BytesIO(data), formats=["PNG"])  # only PNG: no other Pillow parser sees file bytes
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise FormatError(f"alpha plane is not a valid PNG: {_describe(exc)}") from None
    if im.size != size or im.mode != "L":
        raise FormatError(f"alpha plane is {im.mode} {im.size}, expected L {size}")
    try:
        im.load()
        # one copy out of Pillow (np.asarray(im).copy() makes two: up to 3 × MAX_PIXELS bytes at once)
        return np.frombuffer(im.tobytes(), np.uint8).reshape(size[1], size[0])
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a truncated or corrupt PNG stream
        raise FormatError(f"alpha plane is not a valid PNG: {_describe(exc)}") from None


def save_image(image: Image.Image, fileobj, fmt: str) -> None:
    """Write with metadata restored where the format carries it."""
    kwargs = {}
    if image.info.get("icc_profile") and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        kwargs["icc_profile"] = image.info["icc_profile"]
    if image.info.get("exif") and fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        kwargs["exif"] = image.info["exif"]
    if fmt == "JPEG" and image.mode in ("RGBA", "LA", "I;16"):
        raise InputError(f"JPEG cannot hold mode {image.mode}; write PNG, WebP or TIFF")
    try:
        image.save(fileobj, fmt, **kwargs)
    except OSError as exc:
        if exc.errno is not None:
            raise  # a real I/O error (disk full, permissions): the CLI reports it as such
        raise InputError(f"cannot write {image.size[0]}×{image.size[1]} {image.mode} as {fmt}: "
                         f"{_describe(exc)}") from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. WebP's 16383-pixel limit, EXIF bytes TIFF cannot parse
        what = f"{image.size[0]}×{image.size[1]} {image.mode}" + (" with its metadata" if kwargs else "")
        raise InputError(f"cannot write {what} as {fmt}: {_describe(exc)}") from None
