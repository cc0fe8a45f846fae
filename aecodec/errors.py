"""The one family of typed errors raised by aecodec (no torch, no NumPy).

    AecError
    ├── FormatError            the bytes are not a valid aec stream (ValueError)
    │   ├── BadMagicError
    │   ├── UnsupportedVersionError
    │   ├── TruncatedError
    │   ├── ChecksumError
    │   ├── LimitError         a declared size is over a bound (header, chunk, dimensions)
    │   ├── HeaderError        the header is valid JSON but not a valid aec header
    │   └── CorruptStreamError the entropy-coded data is inconsistent (includes desync)
    ├── InvalidTableError      entropy-coder tables that are not valid CDFs (ValueError)
    ├── ModelError             unknown model, weights missing or not matching their hash
    └── InputError             an input image or audio file aecodec cannot code (ValueError)

    UsageError                 options that do not fit (each other, or this file): not an AecError

Everything a user can trigger with bad input or a bad file is one of these;
the CLI turns them into a one-line message and exit status 1 (UsageError: exit status 2).
"""


class AecError(Exception):
    """Base class of every error aecodec raises on purpose."""


class FormatError(AecError, ValueError):
    """The input is not a valid aecodec bitstream."""


class BadMagicError(FormatError):
    """The stream does not start with the aec magic bytes."""


class UnsupportedVersionError(FormatError):
    """The stream's major version (or a required feature) is unknown to this reader."""


class TruncatedError(FormatError):
    """The stream ends before a structure it declares."""


class ChecksumError(FormatError):
    """A CRC-32 does not match: the bytes were changed after writing."""


class LimitError(FormatError):
    """A declared size exceeds what this reader accepts (guards against huge allocations)."""


class HeaderError(FormatError):
    """The header is not a valid aec header (bad JSON, missing or ill-typed fields)."""


class CorruptStreamError(FormatError):
    """Entropy-coded data that cannot have come from the encoder, or decoded symbols that do not
    match the stored checksum (an encoder/decoder desynchronisation)."""


class InvalidTableError(AecError, ValueError):
    """Probability tables that are not valid quantized CDFs, or indexes outside them."""


class ModelError(AecError):
    """A model variant that is unknown, or weights that are missing or fail their sha256 check."""


class InputError(AecError, ValueError):
    """An input file or array that aecodec cannot code."""


class UsageError(Exception):
    """Wrong arguments or options (the command line's exit status 2); not the input's fault."""
