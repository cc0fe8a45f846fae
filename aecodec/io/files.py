"""Reading inputs and writing outputs whole: '-' is stdin / stdout; no torch, no NumPy.

    read_input(path)                          bytes of a file, or of stdin for '-'
    write_atomically(path, writer, force)     writer(fileobj) into a temporary file beside path,
                                              fsync'd, then renamed into place: whole or absent
    process_umask()                           the umask, read without changing it where Linux tells it

An output gets the permissions open() would give it (0666 & ~umask, like cwebp or cp); an
overwritten one keeps its mode. An existing file is kept (FileExistsError) unless ``force``.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path


def process_umask() -> int:
    """The process umask, read without changing it where the OS tells it (Linux); else set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: str, data_writer, force: bool) -> None:
    """Call data_writer(fileobj) on a temporary file, then rename it to path ('-' = stdout).

    The file gets 0666 & ~umask (an overwritten file keeps its mode), as open() would give."""
    if path == "-":
        buf = io.BytesIO()
        data_writer(buf)
        sys.stdout.buffer.write(buf.getvalue())
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists (use -f to overwrite)")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = target.stat().st_mode & 0o7777 if target.is_file() else 0o666 & ~process_umask()
    except OSError:
        mode = 0o666 & ~process_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:  # name the output, not the temporary file
        raise OSError(exc.errno, exc.strerror, str(target)) from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            data_writer(f)
            f.flush()
            os.fsync(f.fileno())
        if target.exists() and not force:  # appeared meanwhile
            raise FileExistsError(f"{target} exists (use -f to overwrite)")
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_input(path: str) -> bytes:
    """The bytes of the file ``path``, or of stdin for '-'."""
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()
