"""Bad-input matrix for the image CLI: every input gives a correct round trip or one line
"aecodec: ..." on stderr with exit status 1 or 2 — never a traceback, never a partial or clobbered
output file (writes are atomic, no overwrite without -f, an interrupted encode leaves nothing)."""

import io
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aecodec import cli, codec, container
from aecodec import image as image_api
from aecodec.io import files as io_files

pytestmark = pytest.mark.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]


def pattern(w, h, seed=0, channels=3):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([(np.sin(xx / 6 + c) + 1) * 100 + yy % 50 for c in range(channels)], -1)
    arr = arr + rng.normal(0, 3, (h, w, channels))
    return np.clip(arr, 0, 255).astype(np.uint8)


def png_claiming(width, height):
    """A tiny valid PNG whose IHDR claims width × height (a decompression bomb's header)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "PNG")
    data = buf.getvalue()
    ihdr = struct.pack(">II", width, height) + data[24:29]
    return data[:16] + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + data[33:]


def gif_claiming(width, height):
    buf = io.BytesIO()
    Image.new("P", (8, 8)).save(buf, "GIF")
    data = bytearray(buf.getvalue())
    data[6:10] = struct.pack("<HH", width, height)
    return bytes(data)


def save(im, path, **kw):
    im.save(path, **kw)
    return path


@pytest.fixture(scope="module")
def shipped_aec():
    """A small .aec of the shipped model (what forged headers start from)."""
    return codec.compress_image(pattern(48, 40), 4)


def forge(data, edit=None, chunks_edit=None):
    header, chunks = container.unpack(data)
    if edit:
        edit(header)
    if chunks_edit:
        chunks = chunks_edit(chunks)
    return container.pack(header, chunks)


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def no_leftovers(directory):
    return not [p.name for p in Path(directory).iterdir() if p.name.endswith(".part")]


def assert_one_line_error(code, err, codes=(1,)):
    assert code in codes, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aecodec: "), err
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# encode: input file -> expected outcome ("ok", size, mode) or ("error", code, text in the message)


def enc_empty(d):
    return (d / "empty.png").write_bytes(b"") or d / "empty.png", ("error", 1, "cannot read image")


def enc_text(d):
    (d / "notes.png").write_text("hello, I am a text file\n")
    return d / "notes.png", ("error", 1, "cannot read image")


def enc_truncated_png(d):
    good = io.BytesIO()
    Image.fromarray(pattern(64, 48)).save(good, "PNG")
    (d / "trunc.png").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    return d / "trunc.png", ("error", 1, "cannot read image")


def enc_truncated_jpeg(d):
    good = io.BytesIO()
    Image.fromarray(pattern(64, 48)).save(good, "JPEG")
    (d / "trunc.jpg").write_bytes(good.getvalue()[:300])
    return d / "trunc.jpg", ("error", 1, "cannot read image")


def enc_1x1(d):
    return save(Image.fromarray(pattern(1, 1)), d / "one.png"), ("ok", (1, 1), "RGB")


def enc_65535x1(d):
    return save(Image.fromarray(pattern(65535, 1)), d / "wide.png"), ("ok", (65535, 1), "RGB")


def enc_cmyk_jpeg(d):
    return save(Image.fromarray(pattern(40, 30)).convert("CMYK"), d / "cmyk.jpg"), ("ok", (40, 30), "RGB")


def enc_palette_transparency(d):
    im = Image.fromarray(pattern(40, 30)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return save(im, d / "pal.png", transparency=3), ("ok", (40, 30), "RGBA")


def enc_16bit_png(d):
    arr = (pattern(40, 30, channels=1)[:, :, 0].astype(np.uint16) * 257 + 7)
    return save(Image.fromarray(arr), d / "deep.png"), ("ok", (40, 30), "I;16")


def enc_animated_gif(d):
    frames = [Image.fromarray(pattern(40, 30, seed=i)).convert("P") for i in range(3)]
    frames[1] = Image.fromarray(255 - pattern(40, 30, seed=1)).convert("P")
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:], duration=40, loop=0)
    return d / "anim.gif", ("ok", (40, 30), "RGB")


def enc_bomb_png(d):
    (d / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    return d / "bomb.png", ("error", 1, "too large")


def enc_bomb_png_200mp(d):
    (d / "bomb2.png").write_bytes(png_claiming(20_000, 10_000))
    return d / "bomb2.png", ("error", 1, "too large")


def enc_bomb_gif(d):
    (d / "bomb.gif").write_bytes(gif_claiming(65535, 65535))
    return d / "bomb.gif", ("error", 1, "too large")


def enc_rgba_png(d):
    arr = np.concatenate([pattern(33, 17), pattern(33, 17, seed=4, channels=1)], 2)
    return save(Image.fromarray(arr, "RGBA"), d / "rgba.png"), ("ok", (33, 17), "RGBA")


def enc_la_png(d):
    gray, alpha = Image.fromarray(pattern(20, 20)).convert("L"), Image.fromarray(pattern(20, 20, 5, 1)[:, :, 0])
    im = Image.merge("LA", (gray, alpha))
    return save(im, d / "la.png"), ("ok", (20, 20), "LA")


def enc_lab_tiff(d):
    return save(Image.fromarray(pattern(30, 20)).convert("LAB"), d / "lab.tif"), ("ok", (30, 20), "RGB")


def enc_missing(d):
    return d / "does-not-exist.png", ("error", 1, "does-not-exist.png")


def enc_directory_without_images(d):
    (d / "empty-dir").mkdir()
    return d / "empty-dir", ("error", 2, "no input files")


ENCODE_CASES = {f.__name__[4:]: f for f in [
    enc_empty, enc_text, enc_truncated_png, enc_truncated_jpeg, enc_1x1, enc_65535x1, enc_cmyk_jpeg,
    enc_palette_transparency, enc_16bit_png, enc_animated_gif, enc_bomb_png, enc_bomb_png_200mp, enc_bomb_gif,
    enc_rgba_png, enc_la_png, enc_lab_tiff, enc_missing, enc_directory_without_images,
]}


@pytest.mark.parametrize("case", list(ENCODE_CASES))
def test_encode_matrix(tmp_path, capsys, case):
    src, expected = ENCODE_CASES[case](tmp_path)
    out = tmp_path / "out" / "x.aec"
    t0 = time.perf_counter()
    code, _, err = run(["encode", src, "-o", out], capsys)
    if expected[0] == "error":
        _, want_code, text = expected
        assert_one_line_error(code, err, (want_code,))
        assert text in err
        assert not out.exists()
        assert time.perf_counter() - t0 < 30  # a bomb is refused from its header, not decoded
        return
    _, size, mode = expected
    assert code == 0, err
    lines = err.strip().splitlines()
    if case == "animated_gif":  # cut to its first frame, with a word (issue 17)
        assert len(lines) == 2 and lines[0].startswith("aecodec: warning:") and "first frame" in lines[0]
        lines = lines[1:]
    assert len(lines) == 1 and "Traceback" not in err  # the stats line
    back = tmp_path / "back.png"
    code, _, err = run(["decode", out, "-o", back], capsys)
    assert code == 0, err
    decoded = Image.open(back)
    assert decoded.size == size and decoded.mode == mode
    assert no_leftovers(out.parent) and no_leftovers(tmp_path)
    original = Image.open(src)
    if case == "palette_transparency":  # alpha is lossless
        want = np.asarray(original.convert("RGBA").getchannel("A"))
        assert np.array_equal(np.asarray(decoded.getchannel("A")), want)
    if case == "16bit_png":
        assert np.all(np.asarray(decoded).astype(np.int64) % 257 == 0)  # 8-bit coded, restored as v × 257
    if case == "animated_gif":  # the first frame is coded
        got = np.asarray(decoded.convert("RGB"), np.float64)
        errors = []
        for k in range(2):
            original.seek(k)
            errors.append(np.abs(got - np.asarray(original.convert("RGB"), np.float64)).mean())
        assert errors[0] < errors[1]


# ---------------------------------------------------------------------------------------------
# decode: .aec inputs


def dec_empty(d, aec):
    return b"", "x.png", ("error", 1, "too short")


def dec_text(d, aec):
    return b"hello, I am text\n", "x.png", ("error", 1, "not an aec file")


def dec_png_renamed(d, aec):
    buf = io.BytesIO()
    Image.fromarray(pattern(8, 8)).save(buf, "PNG")
    return buf.getvalue(), "x.png", ("error", 1, "not an aec file")


def dec_truncated(d, aec):
    return aec[: len(aec) * 2 // 3], "x.png", ("error", 1, "")


def dec_bit_flip(d, aec):
    data = bytearray(aec)
    data[len(data) // 2] ^= 4
    return bytes(data), "x.png", ("error", 1, "CRC")


def dec_modality_audio(d, aec):
    return forge(aec, lambda h: h.update(modality="audio")), "x.png", ("error", 1, "")


def dec_modality_audio_to_wav(d, aec):
    return forge(aec, lambda h: h.update(modality="audio")), "x.wav", ("error", 1, "")


def dec_modality_test_vector(d, aec):
    return (ROOT / "bitstream/vectors/container-basic.aec").read_bytes(), "x.png", ("error", 1, "not an image file")


def dec_unknown_model_id(d, aec):
    forged = forge(aec, lambda h: h["model"].update(id=4242, name="from-the-future"))
    return forged, "x.png", ("error", 1, "model id 4242")


def dec_retired_model_id(d, aec):
    forged = forge(aec, lambda h: h["model"].update(id=4, name="image-hyperprior-gain-v2"))
    return forged, "x.png", ("error", 1, "model is retired")


def dec_wrong_weights_hash(d, aec):
    forged = forge(aec, lambda h: h["model"].update(weights="0123456789abcdef"))
    return forged, "x.png", ("error", 1, "0123456789abcdef")


def dec_huge_declared_size(d, aec):
    def edit(h):
        h["image"].update(width=65535, height=65535)
    return forge(aec, edit), "x.png", ("error", 1, "exceeds")


def dec_huge_integer_in_header(d, aec):
    data = forge(aec)
    header, chunks = container.unpack(data)
    body = container.canonical_json(header).replace(b'"tile":1024', b'"tile":' + b"9" * 5000)
    from aecodec.fuzz import pack_raw

    return pack_raw(body, chunks), "x.png", ("error", 1, "header")


def dec_garbage_exif_to_tiff(d, aec):  # Pillow's TIFF writer parses EXIF: struct.error / SyntaxError before the fix
    return forge(aec, chunks_edit=lambda c: c + [("EXIF", b"garbage, not EXIF")]), "x.tif", ("error", 1, "cannot write")


def dec_truncated_exif_to_tiff(d, aec):
    forged = forge(aec, chunks_edit=lambda c: c + [("EXIF", b"Exif\x00\x00II*\x00")])
    return forged, "x.tif", ("error", 1, "cannot write")


def dec_garbage_exif_to_png(d, aec):
    return forge(aec, chunks_edit=lambda c: c + [("EXIF", b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff")]), "x.png", \
        ("ok", (48, 40), "RGB")


def dec_unknown_suffix(d, aec):
    return aec, "x.xyz", ("error", 2, "output format")  # a usage mistake (issue 17)


def dec_jpeg_of_rgba(d, aec):
    arr = np.concatenate([pattern(16, 16), pattern(16, 16, 2, 1)], 2)
    return codec.compress_image(arr, 4), "x.jpg", ("error", 1, "JPEG cannot hold")


def dec_too_wide_for_webp(d, aec):
    return codec.compress_image(pattern(16400, 1), 1), "x.webp", ("error", 1, "WebP")


def dec_good(d, aec):
    return aec, "x.png", ("ok", (48, 40), "RGB")


DECODE_CASES = {f.__name__[4:]: f for f in [
    dec_empty, dec_text, dec_png_renamed, dec_truncated, dec_bit_flip, dec_modality_audio, dec_modality_audio_to_wav,
    dec_modality_test_vector, dec_unknown_model_id, dec_retired_model_id, dec_wrong_weights_hash, dec_huge_declared_size,
    dec_huge_integer_in_header, dec_garbage_exif_to_tiff, dec_truncated_exif_to_tiff, dec_garbage_exif_to_png,
    dec_unknown_suffix, dec_jpeg_of_rgba, dec_too_wide_for_webp, dec_good,
]}


@pytest.mark.parametrize("case", list(DECODE_CASES))
def test_decode_matrix(tmp_path, capsys, shipped_aec, case):
    data, out_name, expected = DECODE_CASES[case](tmp_path, shipped_aec)
    src = tmp_path / "in.aec"
    src.write_bytes(data)
    out = tmp_path / "out" / out_name
    code, _, err = run(["decode", src, "-o", out], capsys)
    if expected[0] == "error":
        _, want_code, text = expected
        assert_one_line_error(code, err, (want_code,))
        assert text in err
        assert not out.exists() and (not out.parent.exists() or no_leftovers(out.parent))
        code, _, err = run(["info", src], capsys)  # info never tracebacks either
        assert code == 0 or (code == 1 and err.startswith("aecodec: ") and "Traceback" not in err)
        return
    _, size, mode = expected
    assert code == 0, err
    im = Image.open(out)
    assert im.size == size and im.mode == mode


# ---------------------------------------------------------------------------------------------
# outputs: never clobbered, never partial


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_existing_output_is_kept_without_force(tmp_path, capsys, shipped_aec, command):
    if command == "encode":
        src = save(Image.fromarray(pattern(32, 32)), tmp_path / "a.png")
        dst = tmp_path / "a.aec"
    else:
        src = tmp_path / "a.aec"
        src.write_bytes(shipped_aec)
        dst = tmp_path / "a.png"
    dst.write_bytes(b"precious")
    code, _, err = run([command, src, "-o", dst], capsys)
    assert_one_line_error(code, err)
    assert "-f" in err and dst.read_bytes() == b"precious" and no_leftovers(tmp_path)
    code, _, err = run([command, src, "-o", dst, "-f"], capsys)
    assert code == 0, err
    assert dst.read_bytes() != b"precious" and no_leftovers(tmp_path)


def test_interrupted_encode_leaves_nothing(tmp_path, capsys, monkeypatch):
    src = save(Image.fromarray(pattern(32, 32)), tmp_path / "a.png")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(image_api, "compress_image", interrupted)  # the API the CLI calls
    code, _, err = run(["encode", src, "-o", tmp_path / "a.aec"], capsys)
    assert code == 130 and err.strip() == "aecodec: interrupted"
    assert not (tmp_path / "a.aec").exists() and no_leftovers(tmp_path)


@pytest.mark.parametrize("existing", [False, True])
def test_interrupted_write_leaves_nothing_and_keeps_the_old_file(tmp_path, capsys, monkeypatch, existing):
    """Ctrl-C after the bytes went to the temporary file, before the rename."""
    src = save(Image.fromarray(pattern(32, 32)), tmp_path / "a.png")
    dst = tmp_path / "a.aec"
    if existing:
        dst.write_bytes(b"old")

    def fsync(fd):
        assert [p for p in tmp_path.iterdir() if p.name.endswith(".part")]  # mid-write indeed
        raise KeyboardInterrupt

    monkeypatch.setattr(io_files.os, "fsync", fsync)  # os.fsync, as write_atomically calls it
    code, _, err = run(["encode", src, "-o", dst] + (["-f"] if existing else []), capsys)
    assert code == 130 and "Traceback" not in err
    assert no_leftovers(tmp_path)
    assert dst.read_bytes() == b"old" if existing else not dst.exists()


SIGTERM_SCRIPT = """
import os, signal, sys
from aecodec import cli
from aecodec.io import files
real_fsync = os.fsync
def fsync(fd):  # the bytes are in the temporary file: terminate now, as `kill` would
    os.kill(os.getpid(), signal.SIGTERM)
    real_fsync(fd)
files.os.fsync = fsync
sys.exit(cli.main(sys.argv[1:]))
"""


def test_sigterm_during_write_leaves_no_partial_file(tmp_path):
    src = save(Image.fromarray(pattern(64, 64)), tmp_path / "a.png")
    dst = tmp_path / "a.aec"
    proc = subprocess.run([sys.executable, "-c", SIGTERM_SCRIPT, "encode", str(src), "-o", str(dst)],
                          capture_output=True, env=dict(os.environ, OMP_NUM_THREADS="1"), cwd=ROOT, timeout=300)
    assert proc.returncode == 130 and proc.stderr.strip() == b"aecodec: interrupted", proc.stderr.decode()
    assert not dst.exists() and no_leftovers(tmp_path)


def test_output_under_a_file_is_an_error(tmp_path, capsys):
    src = save(Image.fromarray(pattern(16, 16)), tmp_path / "a.png")
    (tmp_path / "blocker").write_text("a file, not a directory")
    code, _, err = run(["encode", src, "-o", tmp_path / "blocker" / "a.aec"], capsys)
    assert_one_line_error(code, err)
    assert (tmp_path / "blocker").read_text() == "a file, not a directory"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores directory permissions")
def test_unwritable_output_directory(tmp_path, capsys):
    src = save(Image.fromarray(pattern(16, 16)), tmp_path / "a.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, _, err = run(["encode", src, "-o", locked / "a.aec"], capsys)
        assert_one_line_error(code, err)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_unwritable_output_directory_via_readonly_fd(tmp_path, capsys, monkeypatch):
    """Root ignores permissions, so make the temporary file creation fail as a read-only disk would."""
    src = save(Image.fromarray(pattern(16, 16)), tmp_path / "a.png")

    def mkstemp(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(io_files.tempfile, "mkstemp", mkstemp)
    code, _, err = run(["encode", src, "-o", tmp_path / "a.aec"], capsys)
    assert_one_line_error(code, err)
    assert "Permission denied" in err and not (tmp_path / "a.aec").exists()
