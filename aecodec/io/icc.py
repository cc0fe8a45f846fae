"""Well-known ICC profiles stored as a short name instead of their bytes (bitstream SPEC §3.1).

An image's ICC profile is carried verbatim in an ``ICCP`` chunk, unless it is byte for byte one
of the profiles below: then an ``ICCN`` chunk holds only its name (and, for a profile whose
creation date varies, those 12 bytes), and the decoder gives back the identical bytes from the
copy shipped in ``aecodec/io/icc_profiles/`` (provenance and licences in its README.md).

    chunk_for(icc)      -> ("ICCN", b"openicc-srgb") or ("ICCP", icc)
    from_chunks(chunks) -> the profile bytes of a file's ICCP or ICCN chunk, or None
    identify(icc)       -> the ICCN payload for known bytes, else None

Recognition is exact (sha256 of the bytes; for a dated profile, of the bytes with the date
field zeroed), so an unknown or edited profile is always stored verbatim.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from aecodec.errors import FormatError

PROFILE_DIR = Path(__file__).with_name("icc_profiles")
DATE = slice(24, 36)  # ICC header: dateTimeNumber, six big-endian u16 (year … second)
MINOR = 3  # bitstream minor version that added ICCN (SPEC §3.1)
_PAYLOAD = re.compile(rb"([a-z0-9][a-z0-9.-]{0,31})(?::([0-9a-f]{24}))?")


@dataclass(frozen=True)
class KnownProfile:
    name: str  # the ICCN identifier; never reused for other bytes
    file: str  # in icc_profiles/ (a dated profile is stored with its date bytes zeroed)
    size: int
    sha256: str  # of the bytes (dated: with the date zeroed)
    dated: bool = False  # the creation date varies from copy to copy and travels in the chunk


# Normative list: SPEC §3.1 repeats it. Add entries (new names), never change one.
KNOWN = (
    KnownProfile("openicc-srgb", "openicc-srgb.icc", 6922,
                 "2a92d4bae450b76d8b0aa42193df974d75f62738ecebf74f01c5e75b12a95796"),
    KnownProfile("lcms-srgb-4.4", "lcms-srgb-4.4.icc", 588,
                 "f05e871ae8d9f56127c6d4c5af6e77b7a2980e1fce8c2155188a813b71e323df", dated=True),
)
_BY_NAME = {p.name: p for p in KNOWN}
_BY_KEY = {(p.size, p.sha256): p for p in KNOWN}


class UnknownProfileWarning(UserWarning):
    """A file names an ICC profile this decoder does not ship; the image is returned without one."""


@lru_cache(maxsize=None)
def _template(name: str) -> bytes:
    p = _BY_NAME[name]
    data = (PROFILE_DIR / p.file).read_bytes()
    if len(data) != p.size or hashlib.sha256(data).hexdigest() != p.sha256:
        raise FormatError(f"the shipped ICC profile {p.file} is damaged (size or sha256 differs)")
    return data


def identify(icc: bytes) -> bytes | None:
    """The ICCN payload for a known profile's exact bytes, else None."""
    if not icc or len(icc) < DATE.stop:
        return None
    for dated in (False, True):
        key = icc[: DATE.start] + bytes(12) + icc[DATE.stop :] if dated else icc
        p = _BY_KEY.get((len(icc), hashlib.sha256(key).hexdigest()))
        if p is not None and p.dated == dated:
            return p.name.encode() + (b":" + icc[DATE].hex().encode() if dated else b"")
    return None


def chunk_for(icc: bytes) -> tuple[str, bytes]:
    """(tag, payload) of the chunk that carries this profile: ICCN for a known one, else ICCP."""
    name = identify(icc)
    return ("ICCN", name) if name is not None else ("ICCP", bytes(icc))


def minor_for(icc: bytes | None) -> int:
    """The bitstream minor version the profile's chunk needs (3 for ICCN, else 0)."""
    return MINOR if icc and identify(icc) is not None else 0


def restore(payload: bytes) -> bytes | None:
    """The profile bytes an ICCN payload names; None (with a warning) for a name not shipped here."""
    m = _PAYLOAD.fullmatch(payload)
    if m is None:
        raise FormatError("ICCN chunk: not a profile name (a-z, 0-9, '.', '-') with an optional ':date'")
    name, date = m.group(1).decode(), m.group(2)
    p = _BY_NAME.get(name)
    if p is None:
        warnings.warn(f"the file names ICC profile {name!r}, which this decoder does not have: "
                      "the image is returned without a profile", UnknownProfileWarning, stacklevel=3)
        return None
    if (date is not None) != p.dated:
        raise FormatError(f"ICCN chunk: profile {name!r} " + ("needs" if p.dated else "takes no") + " a date")
    data = _template(name)
    return data[: DATE.start] + bytes.fromhex(date.decode()) + data[DATE.stop :] if p.dated else data


def from_chunks(chunks: dict) -> bytes | None:
    """The ICC profile of a file from its ICCP or ICCN chunk payload (by tag), or None."""
    if "ICCP" in chunks and "ICCN" in chunks:
        raise FormatError("a file carries an ICCP or an ICCN chunk, not both")
    if "ICCN" in chunks:
        return restore(chunks["ICCN"])
    return chunks.get("ICCP")
