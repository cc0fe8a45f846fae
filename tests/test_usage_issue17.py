"""Everyday use (issue 17): one regression test per bug, then the friction items.

Real codec paths with the shipped models on tiny inputs; nothing of the codec is mocked.
"""

import io
import json
import os
import stat
import struct
import subprocess
import sys
import warnings
import zlib

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from aecodec import audio, batch, cli, codec, registry
from aecodec.testing import gliding_tone, write_png

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def wav(path, seconds=0.5, rate=16000, channels=1, subtype="PCM_16", data=None, fmt=None):
    x = gliding_tone(seconds, rate, channels) if data is None else data
    sf.write(str(path), x, rate, subtype=subtype, format=fmt)
    return path


def image(w=64, h=48, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([(np.sin(xx / 5 + c) + 1) * 90 + yy for c in range(3)], -1) + rng.normal(0, 6, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


# ---------------------------------------------------------------------------------------------
# 1. --target-bpp: the model's whole quality range, in the API, with a warning when unreachable


@pytest.fixture(scope="module")
def rates():
    im = image(64, 64)
    lo, hi = registry.BY_NAME[registry.DEFAULT_IMAGE_MODEL].qualities
    return im, {q: 8 * len(codec.compress_image(im, q)) / 64**2 for q in (lo, 8.0, 9.0, hi)}


def test_target_bpp_reaches_qualities_above_8(rates):
    im, r = rates
    target = (r[9.0] + r[10.0]) / 2  # between quality 9's and 10's rates: only reachable above 8
    with warnings.catch_warnings():
        warnings.simplefilter("error", codec.TargetBppWarning)
        data = codec.compress_image(im, target_bpp=target)
    q = codec.read_info(data).quality
    assert 9.0 <= q < 10.0 and 8 * len(data) / 64**2 <= target
    result = codec.compress_image_to_target(im, target)
    assert result.data == data and result.quality == q and result.warning is None


@pytest.mark.parametrize("target,side", [(0.005, "below"), (50.0, "above")])
def test_unreachable_target_bpp_warns(tmp_path, capsys, rates, target, side):
    im, r = rates
    with pytest.warns(codec.TargetBppWarning, match=side):
        data = codec.compress_image(im, target_bpp=target)
    assert codec.read_info(data).quality == (1.0 if side == "below" else 10.0)
    im.save(tmp_path / "a.png")
    code, _, err = run(["encode", tmp_path / "a.png", "-o", tmp_path / "a.aec", "--target-bpp", target], capsys)
    assert code == 0 and "warning" in err and side in err
    assert codec.read_info((tmp_path / "a.aec").read_bytes()).quality == (1.0 if side == "below" else 10.0)


def test_target_bpp_must_be_positive():
    with pytest.raises(codec.InputError):
        codec.compress_image(image(8, 8), target_bpp=0)


# ---------------------------------------------------------------------------------------------
# 2, 3. MP3 sources: decodable to PCM formats; estimated lengths tolerated


def mp3(path, seconds=1.0, rate=44100, truncate=None):
    x = gliding_tone(seconds, rate, 1)
    sf.write(str(path), x, rate, format="MP3")
    if truncate:
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * truncate)])
    return path


@pytest.mark.parametrize("out_suffix,subtype", [(".wav", "PCM_16"), (".flac", "PCM_16"), (".aiff", "PCM_16"),
                                                (".ogg", "VORBIS")])
def test_file_from_mp3_decodes_to_every_format(tmp_path, capsys, out_suffix, subtype):
    src = mp3(tmp_path / "m.mp3", 0.5)
    code, _, err = run(["encode", src, "-o", tmp_path / "m.aec", "-b", "6"], capsys)
    assert code == 0, err
    assert audio.read_info((tmp_path / "m.aec").read_bytes()).subtype == "MPEG_LAYER_III"
    code, _, err = run(["decode", tmp_path / "m.aec", "-o", tmp_path / f"out{out_suffix}"], capsys)
    assert code == 0 and "Traceback" not in err, err
    assert sf.info(str(tmp_path / f"out{out_suffix}")).subtype == subtype


@pytest.mark.parametrize("fmt,wanted,expected", [
    ("WAV", "MPEG_LAYER_III", "PCM_16"), ("WAV", "FLOAT", "FLOAT"), ("WAV", "PCM_24", "PCM_24"),
    ("FLAC", "FLOAT", "PCM_24"), ("FLAC", "DOUBLE", "PCM_24"), ("FLAC", "VORBIS", "PCM_16"),
    ("AIFF", "OPUS", "PCM_16"), ("OGG", "PCM_16", "VORBIS"), ("WAV", "IMA_ADPCM", "PCM_16"),
    ("WAV", "PCM_S8", "PCM_U8"),
])
def test_output_subtype_is_one_the_format_holds(fmt, wanted, expected):
    from aecodec.io.audio import output_subtype

    got = output_subtype(fmt, wanted)
    assert got == expected and sf.check_format(fmt, got)


def test_batch_goes_on_after_any_failure(tmp_path, capsys):
    """One file failing with an error that is not an AecError/OSError does not abort the batch."""
    jobs = [batch.Job("a", "a.out"), batch.Job("b", "b.out"), batch.Job("c", "c.out")]

    def work(job):
        if job.src == "b":
            raise RuntimeError("libsndfile says no")
        return {"line": f"{job.src} done"}

    code = batch.run_jobs(jobs, work, 1, False, False)
    _, err = capsys.readouterr()
    assert code == 1 and "a done" in err and "c done" in err and "b: " in err and "libsndfile says no" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("truncate", [None, 0.7])
def test_mp3_with_estimated_length_is_coded(tmp_path, capsys, truncate):
    src = mp3(tmp_path / "m.mp3", 1.0, truncate=truncate)
    with sf.SoundFile(str(src)) as f:
        real = len(f.read(dtype="float32"))
    code, out, err = run(["encode", src, "-o", tmp_path / "m.aec", "--json"], capsys)
    assert code == 0, err
    assert audio.read_info((tmp_path / "m.aec").read_bytes()).frames == real
    if truncate:
        assert sf.info(str(src)).frames > real  # the case of the bug: libsndfile's estimate is too long


# ---------------------------------------------------------------------------------------------
# 4. batch outputs that would collide are refused before anything is coded


@pytest.mark.parametrize("with_output", [True, False])
def test_batch_collisions_are_refused_before_coding(tmp_path, capsys, with_output):
    d = tmp_path / "in"
    d.mkdir()
    wav(d / "a.wav", 0.3)
    image().save(d / "a.png")
    image(seed=1).save(d / "b.png")
    argv = ["encode", d] + (["-o", tmp_path / "out/"] if with_output else []) + ["-f"]
    code, _, err = run(argv, capsys)
    assert code == 2 and "a.aec" in err and "a.png" in err and "a.wav" in err
    assert not (tmp_path / "out").exists() and not list(d.glob("*.aec"))


# ---------------------------------------------------------------------------------------------
# 5. --json never mixes with a coded file on stdout


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_json_with_stdout_output_goes_to_stderr(tmp_path, command):
    src = write_png(tmp_path / "a.png")
    if command == "decode":
        assert cli.main(["encode", str(src), "-o", str(tmp_path / "a.aec"), "--quiet"]) == 0
        src = tmp_path / "a.aec"
    proc = subprocess.run([sys.executable, "-m", "aecodec", command, "-", "-o", "-", "--json"],
                          input=src.read_bytes(), capture_output=True)
    assert proc.returncode == 0, proc.stderr
    if command == "encode":
        assert proc.stdout[:4] == b"\x89AEC" and codec.read_info(proc.stdout).width == 64
        codec.decompress_image(proc.stdout)  # the whole stream is the file: nothing appended
    else:
        assert Image.open(io.BytesIO(proc.stdout)).size == (64, 48) and proc.stdout.endswith(b"IEND\xaeB`\x82")
    doc = json.loads(proc.stderr)
    assert doc["ok"] and doc["output"] == "-"


# ---------------------------------------------------------------------------------------------
# 6. outputs get 0666 & ~umask


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_outputs_respect_the_umask(tmp_path, capsys, umask):
    src = write_png(tmp_path / "a.png")
    old = os.umask(umask)
    try:
        assert run(["encode", src, "-o", tmp_path / "a.aec"], capsys)[0] == 0
        assert run(["decode", tmp_path / "a.aec", "-o", tmp_path / "b.png"], capsys)[0] == 0
    finally:
        os.umask(old)
    for name in ("a.aec", "b.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask


def test_overwritten_output_keeps_its_mode(tmp_path, capsys):
    src = write_png(tmp_path / "a.png")
    dst = tmp_path / "a.aec"
    dst.write_bytes(b"old")
    dst.chmod(0o640)
    assert run(["encode", src, "-o", dst, "-f"], capsys)[0] == 0
    assert stat.S_IMODE(dst.stat().st_mode) == 0o640 and dst.read_bytes()[:4] == b"\x89AEC"


# ---------------------------------------------------------------------------------------------
# 7. batch lines as each file finishes, [n/N] on a terminal, a summary


def test_batch_lines_are_printed_as_files_finish(tmp_path, capsys):
    jobs = [batch.Job("first", "x"), batch.Job("second", "y")]

    def work(job):
        if job.src == "second":
            raise KeyboardInterrupt  # Ctrl-C during the second file
        return {"line": "first coded"}

    with pytest.raises(KeyboardInterrupt):
        batch.run_jobs(jobs, work, 1, False, False)
    assert "first coded" in capsys.readouterr().err  # printed before the interrupt


@pytest.mark.parametrize("tty", [True, False])
def test_batch_progress_and_summary(tmp_path, capsys, monkeypatch, tty):
    d = tmp_path / "in"
    d.mkdir()
    for k in range(3):
        write_png(d / f"{k}.png", 16, 16, seed=k)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    code, _, err = run(["encode", d, "-o", tmp_path / "out/"], capsys)
    lines = err.strip().splitlines()
    assert code == 0 and len(lines) == 4
    assert [ln.startswith(f"[{k}/3] ") for k, ln in zip((1, 2, 3), lines)] == [tty] * 3
    assert lines[-1].startswith("aecodec: 3 of 3 files done")


# ---------------------------------------------------------------------------------------------
# 8. info from stdin lists the chunks


def test_info_from_stdin_lists_chunks(tmp_path, capsys, monkeypatch):
    src = write_png(tmp_path / "a.png")
    assert run(["encode", src, "-o", tmp_path / "a.aec"], capsys)[0] == 0
    data = (tmp_path / "a.aec").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, _ = run(["info", "-", "--json"], capsys)
    assert code == 0 and json.loads(out)["chunks"]["TILE"]["count"] == 1
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, _ = run(["info", "-"], capsys)
    assert code == 0 and "chunk   TILE ×1" in out


# ---------------------------------------------------------------------------------------------
# 9. the Pillow plugin saves


@pytest.mark.parametrize("options", [{}, {"quality": 9}, {"quality": 2.5}, {"target_bpp": 2.0}])
def test_pillow_plugin_saves(tmp_path, options):
    import aecodec.pillow  # noqa: F401

    im = image(48, 40)
    im.save(tmp_path / "x.aec", **options)
    data = (tmp_path / "x.aec").read_bytes()
    info = codec.read_info(data)
    assert (info.width, info.height) == (48, 40)
    if "quality" in options:
        assert info.quality == options["quality"]
    if "target_bpp" in options:
        assert 8 * len(data) / (48 * 40) <= 2.0
    back = Image.open(tmp_path / "x.aec")
    back.load()
    assert back.format == "AEC" and np.array_equal(np.asarray(back), np.asarray(codec.decompress_image(data)))


def test_pillow_plugin_save_keeps_mode_and_refuses_bad_quality(tmp_path):
    import aecodec.pillow  # noqa: F401

    im = image(16, 16).convert("RGBA")
    buf = io.BytesIO()
    im.save(buf, "AEC")
    assert Image.open(io.BytesIO(buf.getvalue())).mode == "RGBA"
    with pytest.raises(ValueError, match="quality"):
        im.save(io.BytesIO(), "AEC", quality=90)


# ---------------------------------------------------------------------------------------------
# 11. -b outside the model's range: a warning with the measured rate


@pytest.mark.parametrize("kbps,model,end", [(1.0, "speech", "lowest"), (500.0, "music", "highest")])
def test_bitrate_outside_the_range_warns_with_the_measured_rate(tmp_path, capsys, kbps, model, end):
    src = wav(tmp_path / "in.wav", 0.5, 16000 if model == "speech" else 48000)
    code, _, err = run(["encode", src, "-o", tmp_path / "a.aec", "-b", kbps, "--model", model], capsys)
    assert code == 0 and "warning" in err and end in err
    measured = 8 * (tmp_path / "a.aec").stat().st_size / 1000 / 0.5
    assert f"{measured:.2f} kbps" in err
    x = gliding_tone(0.5, 16000)
    with pytest.warns(audio.RateWarning):
        audio.compress(x, 16000, kbps, model=model)


def test_bitrate_inside_the_range_does_not_warn(tmp_path, capsys):
    src = wav(tmp_path / "in.wav", 1.0)
    code, _, err = run(["encode", src, "-o", tmp_path / "a.aec", "-b", "6"], capsys)
    assert code == 0 and "warning" not in err


# ---------------------------------------------------------------------------------------------
# 12. 16-bit RGB: what the README says


def png16(arr: np.ndarray) -> bytes:
    """A 16-bit RGB PNG (Pillow cannot write one)."""
    h, w, _ = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_16bit_rgb_behaves_as_the_readme_says(tmp_path, capsys):
    arr = (np.asarray(image(32, 24)).astype(np.uint16) * 257 + 77)
    (tmp_path / "a.png").write_bytes(png16(arr))
    assert run(["encode", tmp_path / "a.png", "-o", tmp_path / "a.aec"], capsys)[0] == 0
    code, out, _ = run(["info", tmp_path / "a.aec"], capsys)
    assert code == 0 and "RGB 8-bit" in out
    assert run(["decode", tmp_path / "a.aec", "-o", tmp_path / "b.png"], capsys)[0] == 0
    back = Image.open(tmp_path / "b.png")
    assert back.mode == "RGB"
    assert np.abs(np.asarray(back).astype(float) - (arr >> 8)).mean() < 12  # the top byte, coded
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8").read()
    assert "16-bit RGB comes\nback as 8-bit RGB" in readme


# ---------------------------------------------------------------------------------------------
# 13. float audio keeps its headroom


@pytest.mark.parametrize("peak", [4.0, 1.5])
def test_float_audio_keeps_its_level_above_full_scale(tmp_path, capsys, peak):
    x = gliding_tone(0.6, 16000)
    x = (x / np.abs(x).max() * peak).astype(np.float32)
    blob = audio.compress(x, 16000, 6)
    assert audio.read_info(blob).scale == peak
    y, _ = audio.decompress(blob)
    assert np.abs(y).max() > 0.6 * peak
    src = wav(tmp_path / "loud.wav", data=x, subtype="FLOAT")
    assert run(["encode", src, "-o", tmp_path / "loud.aec"], capsys)[0] == 0
    assert run(["decode", tmp_path / "loud.aec", "-o", tmp_path / "back.wav"], capsys)[0] == 0
    back, _ = sf.read(str(tmp_path / "back.wav"))
    assert sf.info(str(tmp_path / "back.wav")).subtype == "FLOAT" and np.abs(back).max() > 0.6 * peak


def test_audio_within_full_scale_has_no_scale():
    blob = audio.compress(gliding_tone(0.3, 16000) * 0.5, 16000, 6)
    assert audio.read_info(blob).scale == 1.0 and "scale" not in audio.read_info(blob).header["audio"]


@pytest.mark.parametrize("value", ["1", "0.5", "nan", "x", 4, "1e30"])
def test_bad_scale_is_a_header_error(value):
    blob = audio.compress(gliding_tone(0.3, 16000), 16000, 6)
    header = dict(audio.read_info(blob).header)
    header["audio"] = dict(header["audio"], scale=value)
    with pytest.raises(audio.HeaderError):
        audio.parse_audio_header(header)


# ---------------------------------------------------------------------------------------------
# friction


def test_errors_name_no_python_class_or_temp_file(tmp_path, capsys):
    src = write_png(tmp_path / "a.png")
    (tmp_path / "file").write_text("x")
    code, _, err = run(["encode", src, "-o", tmp_path / "file" / "a.aec"], capsys)
    assert code == 1 and "[Errno" not in err and "Error:" not in err and ".part" not in err
    code, _, err = run(["encode", tmp_path / "missing.png", "-o", tmp_path / "m.aec"], capsys)
    assert code == 1 and err.count("missing.png") == 1 and "[Errno" not in err and "FileNotFoundError" not in err


@pytest.mark.parametrize("command", ["encode", "decode", "info"])
def test_mistyped_flag_shows_the_subcommand_usage(tmp_path, capsys, command):
    code, _, err = run([command, tmp_path / "x", "--qualty", "3"], capsys)
    assert code == 2 and f"usage: aecodec {command}" in err and "--qualty" in err


@pytest.mark.parametrize("kind,flag", [("audio", "--psnr"), ("audio", "--tile"), ("image", "--no-envelope")])
def test_options_that_do_not_apply_warn(tmp_path, capsys, kind, flag):
    src = wav(tmp_path / "a.wav", 0.3) if kind == "audio" else write_png(tmp_path / "a.png")
    argv = ["encode", src, "-o", tmp_path / "a.aec", flag] + (["256"] if flag == "--tile" else [])
    code, _, err = run(argv, capsys)
    assert code == 0 and f"warning: {src}: {flag} does not apply" in err


def test_several_inputs_and_a_file_name_output_is_a_usage_error(tmp_path, capsys):
    a, b = write_png(tmp_path / "a.png"), write_png(tmp_path / "b.png", seed=1)
    code, _, err = run(["encode", a, b, "-o", tmp_path / "two.aec"], capsys)
    assert code == 2 and "folder" in err and not (tmp_path / "two.aec").exists()
    code, _, err = run(["encode", a, b, "-o", f"{tmp_path / 'two.aec'}/"], capsys)
    assert code == 0 and (tmp_path / "two.aec" / "a.aec").is_file()


@pytest.mark.parametrize("recursive", [False, True])
def test_batch_recursion_and_dotfiles(tmp_path, capsys, recursive):
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    (d / ".hidden").mkdir()
    write_png(d / "top.png", 16, 16)
    write_png(d / "sub" / "deep.png", 16, 16)
    write_png(d / ".dot.png", 16, 16)
    write_png(d / ".hidden" / "h.png", 16, 16)
    code, _, err = run(["encode", d, "-o", tmp_path / "out/"] + (["-r"] if recursive else []), capsys)
    assert code == 0, err
    made = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.aec"))
    assert made == (["sub/deep.aec", "top.aec"] if recursive else ["top.aec"])


def test_info_several_files_and_verify(tmp_path, capsys):
    src = write_png(tmp_path / "a.png")
    assert run(["encode", src, "-o", tmp_path / "a.aec"], capsys)[0] == 0
    data = bytearray((tmp_path / "a.aec").read_bytes())
    data[60] ^= 0x10  # inside the TILE payload: the chunk CRC no longer matches
    (tmp_path / "bad.aec").write_bytes(bytes(data))
    code, out, err = run(["info", tmp_path / "a.aec", tmp_path / "bad.aec"], capsys)
    assert code == 0 and out.count("chunk   TILE") == 2  # the index alone does not see the flip
    code, out, err = run(["info", "--verify", tmp_path / "a.aec", tmp_path / "bad.aec"], capsys)
    assert code == 1 and "verified" in out and "bad.aec" in err and "CRC" in err
    code, out, _ = run(["info", "--verify", "--json", tmp_path / "a.aec", tmp_path / "bad.aec"], capsys)
    doc = json.loads(out)
    assert code == 1 and doc["failed"] == 1 and doc["files"][0]["verified"] and not doc["files"][1]["ok"]


def jpeg_with_gps(path):
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0)}  # GPS IFD: latitude
    image(32, 32).save(path, "JPEG", exif=exif.tobytes())
    return path


@pytest.mark.parametrize("flag,make,gps", [(None, True, False), ("--keep-metadata", True, True),
                                           ("--strip", False, False)])
def test_metadata_policy(tmp_path, capsys, flag, make, gps):
    src = jpeg_with_gps(tmp_path / "a.jpg")
    argv = ["encode", src, "-o", tmp_path / "a.aec"] + ([flag] if flag else [])
    code, _, err = run(argv, capsys)
    assert code == 0, err
    back = codec.decompress_image((tmp_path / "a.aec").read_bytes())
    exif = Image.Exif()
    if back.info.get("exif"):
        exif.load(back.info["exif"])
    assert (exif.get(0x010F) == "CameraMaker") == make
    assert (0x8825 in exif) == gps
    assert ("GPS" in err) == (flag is None)  # the default says what it removed


def test_compare_images_and_audio(tmp_path, capsys):
    from aecodec.bench.metrics import psnr_rgb

    src = write_png(tmp_path / "a.png")
    assert run(["encode", src, "-o", tmp_path / "a.aec"], capsys)[0] == 0
    assert run(["decode", tmp_path / "a.aec", "-o", tmp_path / "b.png"], capsys)[0] == 0
    code, out, _ = run(["compare", src, tmp_path / "b.png", "--json"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["psnr_rgb"] == round(psnr_rgb(Image.open(src), Image.open(tmp_path / "b.png")), 4)
    w = wav(tmp_path / "a.wav", 1.0)
    assert run(["encode", w, "-o", tmp_path / "w.aec"], capsys)[0] == 0
    assert run(["decode", tmp_path / "w.aec", "-o", tmp_path / "w.wav"], capsys)[0] == 0
    code, out, _ = run(["compare", w, tmp_path / "w.wav"], capsys)
    assert code == 0 and "log-mel" in out and "STOI" in out
    code, out, _ = run(["compare", w, tmp_path / "w.wav", "--json"], capsys)
    code2, out2, _ = run(["compare", w, tmp_path / "w.aec", "--json"], capsys)  # an .aec file is decoded first
    a, b = json.loads(out), json.loads(out2)
    assert code == code2 == 0 and abs(a["log_mel"] - b["log_mel"]) < 0.01 and abs(a["stoi"] - b["stoi"]) < 0.01
    code, out, _ = run(["compare", src, tmp_path / "a.aec", "--json"], capsys)
    assert code == 0 and json.loads(out)["psnr_rgb"] == doc["psnr_rgb"]
    code, _, err = run(["compare", src, w], capsys)
    assert code == 2
    code, _, err = run(["compare", src, write_png(tmp_path / "c.png", 32, 32)], capsys)
    assert code == 1 and "differ in size" in err
