"""Which file formats aecodec reads and writes: by suffix, by name and by first bytes.

No PIL, no soundfile, no NumPy: the command line imports this at start. The readers and writers
themselves are ``aecodec.io.image`` and ``aecodec.io.audio``.

    is_audio(path, head)             audio by suffix, or (stdin, path "-") by its first bytes
    image_output_format(dst, fmt)    the Pillow format an image is written in (PNG for stdout)
    audio_output_format(dst, fmt)    the soundfile format audio is written in (WAV for stdout)
"""

from __future__ import annotations

from pathlib import Path

from aecodec.errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".ppm", ".pgm", ".avif"}
IMAGE_OUTPUTS = {".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".jpg": "JPEG",
                 ".jpeg": "JPEG"}
IMAGE_FORMATS = {"PNG", "WEBP", "TIFF", "BMP", "JPEG"}

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".w64", ".rf64", ".caf", ".au"}
AUDIO_OUTPUTS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".aif": "AIFF", ".aiff": "AIFF"}
AUDIO_FORMATS = {"WAV", "FLAC", "OGG", "AIFF"}
# first bytes of the audio containers soundfile reads (MPEG frames: a sync word, see is_audio)
AUDIO_MAGICS = (b"RIFF", b"fLaC", b"OggS", b"ID3", b"FORM", b"RF64", b".snd", b"caff")


def is_audio(path: str, head: bytes | None = None) -> bool:
    """Audio by suffix, or (stdin, ``path`` "-") by the first bytes ``head``."""
    if path != "-":
        return Path(path).suffix.lower() in AUDIO_SUFFIXES
    if head is None:
        return False
    if head[:4] == b"RIFF":
        return head[8:12] == b"WAVE"
    return head.startswith(AUDIO_MAGICS) or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def image_output_format(dst: str, fmt: str | None = None) -> str:
    """``fmt`` (any case), else from the suffix of ``dst``; PNG for stdout ("-")."""
    if fmt:
        return fmt.upper()
    if dst == "-":
        return "PNG"
    suffix = Path(dst).suffix.lower()
    if suffix not in IMAGE_OUTPUTS:
        raise InputError(f"cannot tell the image output format from {dst!r}; use .png, .webp, .tif, .bmp or .jpg")
    return IMAGE_OUTPUTS[suffix]


def audio_output_format(dst: str, fmt: str | None = None) -> str:
    """``fmt`` (any case), else from the suffix of ``dst``; WAV for stdout ("-")."""
    if fmt:
        return fmt.upper()
    if dst == "-":
        return "WAV"
    suffix = Path(dst).suffix.lower()
    if suffix not in AUDIO_OUTPUTS:
        raise InputError(f"cannot tell the audio output format from {dst!r}; use .wav or .flac")
    return AUDIO_OUTPUTS[suffix]
