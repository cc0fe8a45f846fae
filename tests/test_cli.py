"""CLI over the shipped model: round trips, overwrite rules, stdin/stdout, batch, bad input, exit codes."""

import inspect
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from aecodec import cli, codec
from aecodec.testing import write_png

pytestmark = pytest.mark.filterwarnings("ignore")


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_encode_decode_round_trip(tmp_path, capsys):
    src = write_png(tmp_path / "a.png")
    code, _, err = run(["encode", src, "-o", tmp_path / "a.aec", "--psnr"], capsys)
    assert code == 0 and "bpp" in err and "PSNR" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(["decode", tmp_path / "a.aec", "-o", tmp_path / "b.png"], capsys)
    assert code == 0
    assert Image.open(tmp_path / "b.png").size == (64, 48)
    assert not list(tmp_path.glob(".*.part"))


def test_refuses_to_overwrite_without_force(tmp_path, capsys):
    src = write_png(tmp_path / "a.png")
    dst = tmp_path / "a.aec"
    dst.write_bytes(b"precious")
    code, _, err = run(["encode", src, "-o", dst], capsys)
    assert code == 1 and "-f" in err and dst.read_bytes() == b"precious"
    code, _, _ = run(["encode", src, "-o", dst, "-f"], capsys)
    assert code == 0 and dst.read_bytes()[:4] == b"\x89AEC"


def test_json_and_info(tmp_path, capsys):
    src = write_png(tmp_path / "a.png")
    code, out, _ = run(["encode", src, "-o", tmp_path / "a.aec", "--json", "-q", "6"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and doc["bytes"] == (tmp_path / "a.aec").stat().st_size and doc["quality"] == 6
    code, out, _ = run(["info", tmp_path / "a.aec", "--json"], capsys)
    info = json.loads(out)
    assert code == 0 and info["header"]["image"]["width"] == 64 and info["chunks"]["TILE"]["count"] == 1
    code, out, _ = run(["info", tmp_path / "a.aec"], capsys)
    assert code == 0 and "64×48" in out and "tile 1024," in out


@pytest.mark.parametrize("options, layout", [([], "tile 64 (overlapped, shared ẑ)"),
                                             (["--independent-tiles"], "tile 64,")])
def test_info_names_the_tile_layout(tmp_path, capsys, options, layout):
    src = write_png(tmp_path / "a.png", 160, 96)
    assert run(["encode", src, "-o", tmp_path / "a.aec", "--tile", "64", *options], capsys)[0] == 0
    code, out, _ = run(["info", tmp_path / "a.aec"], capsys)
    assert code == 0 and layout in out


def test_stdin_stdout_subprocess(tmp_path):
    src = write_png(tmp_path / "a.png")
    enc = subprocess.run([sys.executable, "-m", "aecodec", "encode", "-", "-o", "-", "--quiet"],
                         input=src.read_bytes(), capture_output=True)
    assert enc.returncode == 0 and enc.stdout[:4] == b"\x89AEC", enc.stderr
    dec = subprocess.run([sys.executable, "-m", "aecodec", "decode", "-", "-o", "-"], input=enc.stdout, capture_output=True)
    assert dec.returncode == 0 and Image.open(io.BytesIO(dec.stdout)).size == (64, 48)
    bad = subprocess.run([sys.executable, "-m", "aecodec", "decode", "-", "-o", "-"], input=b"not an aec file",
                         capture_output=True)
    assert bad.returncode == 1 and b"Traceback" not in bad.stderr and len(bad.stderr.splitlines()) == 1


@pytest.mark.parametrize("command", [["info", "--json"], ["decode", "-o", "-", "--quiet"]])
def test_closed_stdout_is_quiet(tmp_path, command):
    """`aecodec ... | head -c 1`: the reader is gone before we write; no traceback, no error text, exit 1."""
    src = write_png(tmp_path / "a.png")
    assert cli.main(["encode", str(src), "-o", str(tmp_path / "a.aec"), "--quiet"]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "aecodec", command[0], str(tmp_path / "a.aec"), *command[1:]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the child has imported anything: its first write hits a closed pipe
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 1 and err == b"", err


@pytest.mark.parametrize("jobs", [1, 2])
def test_batch_mode_continues_after_a_failure(tmp_path, capsys, jobs):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        write_png(d / f"img{i}.png", seed=i)
    (d / "broken.png").write_text("this is not a png")
    code, _, err = run(["encode", d, "-o", f"{tmp_path / 'out'}/", "-j", jobs], capsys)
    assert code == 1 and "broken.png" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img0.aec", "img1.aec", "img2.aec"]
    code, _, _ = run(["decode", tmp_path / "out", "-o", f"{tmp_path / 'dec'}/", "-j", jobs], capsys)
    assert code == 0 and sorted(p.name for p in (tmp_path / "dec").iterdir()) == ["img0.png", "img1.png", "img2.png"]


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, I am text\n", "truncated-png", "truncated-jpeg"],
)
def test_bad_image_inputs(tmp_path, capsys, content):
    src = tmp_path / "bad.png"
    if content == "truncated-png":
        good = write_png(tmp_path / "g.png").read_bytes()
        content = good[: len(good) // 2]
    elif content == "truncated-jpeg":
        buf = io.BytesIO()
        Image.open(write_png(tmp_path / "g.png")).save(buf, "JPEG")
        content = buf.getvalue()[:200]
        src = tmp_path / "bad.jpg"
    src.write_bytes(content)
    code, _, err = run(["encode", src, "-o", tmp_path / "x.aec"], capsys)
    assert code == 1 and err.startswith("aecodec: error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.aec").exists()


def test_corrupt_aec_gives_error_and_no_output(tmp_path, capsys):
    src = write_png(tmp_path / "a.png")
    run(["encode", src, "-o", tmp_path / "a.aec"], capsys)
    data = bytearray((tmp_path / "a.aec").read_bytes())
    data[len(data) // 2] ^= 0x10
    (tmp_path / "bad.aec").write_bytes(bytes(data))
    code, _, err = run(["decode", tmp_path / "bad.aec", "-o", tmp_path / "bad.png"], capsys)
    assert code == 1 and "CRC" in err
    assert not (tmp_path / "bad.png").exists()


@pytest.mark.parametrize("argv", [["encode"], ["encode", "x.png", "-q", "11"], ["encode", "x.png", "-q", "3", "--target-bpp", "1"],
                                  ["bogus"], ["decode", "x.aec", "-j", "0"]])
def test_usage_errors_exit_2(tmp_path, capsys, argv):
    write_png(tmp_path / "x.png")
    argv = [str(tmp_path / a) if a.startswith("x.") else a for a in argv]
    code, _, _ = run(argv, capsys)
    assert code == 2


def test_target_bpp(tmp_path, capsys):
    src = write_png(tmp_path / "a.png", 128, 128)
    image = Image.open(src)
    low, high = (8 * len(codec.compress_image(image, q)) / 128**2 for q in (1, 10))
    target = (low + high) / 2
    code, out, _ = run(["encode", src, "-o", tmp_path / "a.aec", "--target-bpp", target, "--json"], capsys)
    doc = json.loads(out)
    assert code == 0 and low <= doc["bpp"] <= target and 1 < doc["quality"] < 10


def test_rate_grows_with_quality_on_a_photo():
    photo = Image.open(cli_sample()).crop((0, 0, 256, 256))
    sizes = [len(codec.compress_image(photo, q)) for q in (1, 4, 7, 10)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1] / 3


def cli_sample():
    from aecodec.demo import SAMPLE

    return SAMPLE


def test_pillow_plugin(tmp_path, capsys):
    import aecodec.pillow  # noqa: F401

    src = write_png(tmp_path / "a.png")
    run(["encode", src, "-o", tmp_path / "a.aec"], capsys)
    im = Image.open(tmp_path / "a.aec")
    assert im.format == "AEC" and im.size == (64, 48) and im.mode == "RGB"
    im.load()
    assert np.array_equal(np.asarray(im), np.asarray(codec.decompress_image((tmp_path / "a.aec").read_bytes())))


def test_cli_defaults_match_the_api():
    """Keep CLI and API defaults from drifting apart (as soundfile's test_argspec does)."""
    parser = cli.build_parser()
    enc = parser._subparsers._group_actions[0].choices["encode"]
    defaults = {a.dest: a.default for a in enc._actions}
    sig = inspect.signature(codec.compress_image).parameters
    assert sig["tile"].default == codec.DEFAULT_TILE
    assert sig["quality"].default == codec.DEFAULT_QUALITY
    assert defaults["quality"] is None and defaults["tile"] is None  # None means the API default (and "not given")
