"""aecodec.ray on a local Ray cluster: the same bytes as the local API and CLI, error rows for bad
inputs, outputs whole or absent, and `aecodec encode|decode|score --ray`.

Ray is an optional extra (`pip install 'aecodec[ray]'`): without it this module is skipped;
`make test-ray` (run by .ci/run) installs it and runs these tests."""

import json
import os

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

ray = pytest.importorskip("ray")

from aecodec import cli, codec, testing  # noqa: E402
from aecodec import ray as aec_ray  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.filterwarnings("ignore")]


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def png(path, w=96, h=64, seed=0):
    Image.fromarray(testing.smooth_image(w, h, seed)).save(path)
    return str(path)


def wav(path, seconds=0.5, rate=16000, seed=0):
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
    x += np.random.default_rng(seed).normal(0, 0.01, len(t))
    sf.write(str(path), x.astype(np.float32), rate, subtype="PCM_16")
    return str(path)


def corpus(folder):
    folder.mkdir()
    return [png(folder / "a.png"), png(folder / "b.png", 130, 70, seed=1), wav(folder / "c.wav")]


def by_path(ds) -> dict:
    return {os.path.basename(r["path"]): r for r in ds.take_all()}


def cli_encode(files, out, *extra):
    assert cli.main(["encode", *files, "-o", f"{out}/", *extra]) == 0


@pytest.mark.parametrize("rows,options,flags", [
    ("path", {}, []),
    ("bytes", {"quality": 2.5}, ["-q", "2.5"]),
    ("read_binary_files", {"metadata": "none"}, ["--strip"]),
    ("item", {"tile": 128, "flags": ["--independent-tiles"]}, ["--tile", "128", "--independent-tiles"]),
])
def test_encode_returns_the_bytes_the_cli_writes(tmp_path, rows, options, flags):
    files = corpus(tmp_path / "in")
    cli_encode(files, tmp_path / "local", *flags)
    workers = 2
    if rows == "path":
        ds = ray.data.from_items([{"path": f} for f in files])
    elif rows == "bytes":
        ds = ray.data.from_items([{"path": f, "bytes": open(f, "rb").read()} for f in files])
    elif rows == "read_binary_files":  # its read tasks need a CPU that the workers leave free
        ds, workers = ray.data.read_binary_files(files, include_paths=True), 1
    else:
        ds = ray.data.from_items(files)  # one column "item" of paths
    got = {os.path.basename(r.get("path") or r["item"]): r for r in
           aec_ray.encode_dataset(ds, workers=workers, **options).take_all()}
    assert sorted(got) == ["a.png", "b.png", "c.wav"]
    for name, row in got.items():
        assert row["error"] is None and row["output"] is None
        local = (tmp_path / "local" / name).with_suffix(".aec").read_bytes()
        assert row["data"] == local
        info = json.loads(row["info"])
        assert info["bytes"] == len(local) and info["modality"] == ("audio" if name.endswith(".wav") else "image")
    if not options:  # and the API's bytes for an image
        assert got["a.png"]["data"] == codec.compress_image(Image.open(files[0]))


def test_encode_and_decode_write_what_the_cli_writes(tmp_path):
    files = corpus(tmp_path / "in")
    cli_encode(files, tmp_path / "local")
    assert cli.main(["decode", str(tmp_path / "local"), "-o", f"{tmp_path}/local_dec/"]) == 0
    out = aec_ray.encode_dataset(ray.data.from_items([{"path": f} for f in files]), tmp_path / "enc", workers=2)
    rows = by_path(out)
    for name in ("a", "b", "c"):
        assert rows[[k for k in rows if k.startswith(name)][0]]["data"] is None
        assert (tmp_path / "enc" / f"{name}.aec").read_bytes() == (tmp_path / "local" / f"{name}.aec").read_bytes()
    aecs = sorted(str(p) for p in (tmp_path / "enc").iterdir())
    dec = by_path(aec_ray.decode_dataset(ray.data.from_items([{"path": f} for f in aecs]), tmp_path / "dec"))
    assert {os.path.basename(r["output"]) for r in dec.values()} == {"a.png", "b.png", "c.wav"}
    for name in ("a.png", "b.png", "c.wav"):
        assert (tmp_path / "dec" / name).read_bytes() == (tmp_path / "local_dec" / name).read_bytes()
    assert not list(tmp_path.rglob("*.part"))


def test_score_matches_cli_json(tmp_path, capsys):
    files = corpus(tmp_path / "in")
    assert cli.main(["score", *files, "--json"]) == 0
    local = {os.path.basename(d["file"]): d for d in map(json.loads, capsys.readouterr().out.splitlines())}
    rows = by_path(aec_ray.score_dataset(ray.data.from_items([{"path": f} for f in files]), workers=2))
    for name, row in rows.items():
        doc = json.loads(row["info"])
        doc.pop("seconds")
        assert doc == local[name]
        assert row["score"] == pytest.approx(local[name].get("bits_per_pixel", local[name].get("bits_per_second")),
                                             abs=1e-3)


BAD = {
    "not an image": (b"definitely not a picture", "x.png", "InputError"),
    "empty file": (b"", "y.png", "InputError"),
    "truncated aec": (None, "t.aec", "TruncatedError"),
    "bad magic": (b"\x89AEX" + bytes(40), "m.aec", "BadMagicError"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_row_is_an_error_row_and_the_others_are_coded(tmp_path, case):
    data, name, error_type = BAD[case]
    good = png(tmp_path / "good.png")
    if data is None:
        data = codec.compress_image(Image.open(good))[:-9]
    bad = tmp_path / name
    bad.write_bytes(data)
    verb = aec_ray.decode_dataset if name.endswith(".aec") else aec_ray.encode_dataset
    first = str(tmp_path / "good.aec") if name.endswith(".aec") else good
    if name.endswith(".aec"):
        (tmp_path / "good.aec").write_bytes(codec.compress_image(Image.open(good)))
    ds = ray.data.from_items([{"path": first}, {"path": str(bad)}, {"path": str(tmp_path / "gone.png")}])
    rows = by_path(verb(ds, tmp_path / "out"))
    assert rows[os.path.basename(first)]["error"] is None
    assert rows[name]["error_type"] == error_type and rows[name]["error"] and rows[name]["output"] is None
    assert rows["gone.png"]["error_type"] == "FileNotFoundError" and "No such file" in rows["gone.png"]["error"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.aec" if verb is aec_ray.encode_dataset
                                                                    else "good.png"]


@pytest.mark.parametrize("force", [False, True])
def test_existing_outputs_are_kept_without_force_and_nothing_is_half_written(tmp_path, force):
    files = corpus(tmp_path / "in")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.aec").write_bytes(b"precious")
    rows = by_path(aec_ray.encode_dataset(ray.data.from_items([{"path": f} for f in files]), tmp_path / "out",
                                          force=force))
    if force:
        assert rows["a.png"]["error"] is None
        assert (tmp_path / "out" / "a.aec").read_bytes() == codec.compress_image(Image.open(files[0]))
    else:
        assert rows["a.png"]["error_type"] == "FileExistsError" and "force" in rows["a.png"]["error"]
        assert (tmp_path / "out" / "a.aec").read_bytes() == b"precious"
    assert rows["b.png"]["error"] is None and rows["c.wav"]["error"] is None
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.aec", "b.aec", "c.aec"]


@pytest.mark.parametrize("fail_at,force", [("fsync", False), ("fsync", True), ("replace", True)])
def test_write_file_leaves_no_partial_file_when_it_fails(tmp_path, monkeypatch, fail_at, force):
    target = tmp_path / "sub" / "x.aec"

    def boom(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, fail_at, boom)
    with pytest.raises(OSError):
        aec_ray.write_file(target, b"x" * 1000, force=force)
    assert list((tmp_path / "sub").iterdir()) == []


def test_write_file_renames_where_hard_links_are_not_supported(tmp_path, monkeypatch):
    def no_links(*args):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    aec_ray.write_file(tmp_path / "x.aec", b"data")
    assert [p.name for p in tmp_path.iterdir()] == ["x.aec"] and (tmp_path / "x.aec").read_bytes() == b"data"
    with pytest.raises(FileExistsError):
        aec_ray.write_file(tmp_path / "x.aec", b"other")
    assert (tmp_path / "x.aec").read_bytes() == b"data"


def test_write_file_does_not_clobber_a_file_that_appears_meanwhile(tmp_path, monkeypatch):
    target = tmp_path / "x.aec"
    real_link = os.link

    def racing_link(src, dst):
        (tmp_path / "x.aec").write_bytes(b"the other worker's")
        return real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(FileExistsError):
        aec_ray.write_file(target, b"mine")
    assert target.read_bytes() == b"the other worker's" and [p.name for p in tmp_path.iterdir()] == ["x.aec"]


def test_cli_ray_writes_what_the_local_cli_writes(tmp_path, capsys):
    files = corpus(tmp_path / "in")
    (tmp_path / "in" / "bad.png").write_bytes(b"nope")
    assert cli.main(["encode", str(tmp_path / "in"), "-o", f"{tmp_path}/local/", "-j", "2"]) == 1
    capsys.readouterr()
    code = cli.main(["encode", str(tmp_path / "in"), "-o", f"{tmp_path}/ray/", "-j", "2", "--json", "--ray"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert code == 1 and doc["failed"] == 1 and "bad.png" in err
    assert [os.path.basename(f["input"]) for f in doc["files"]] == ["a.png", "b.png", "bad.png", "c.wav"]
    for name in ("a.aec", "b.aec", "c.aec"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == ["a.aec", "b.aec", "c.aec"]
    code = cli.main(["decode", f"{tmp_path}/ray/", "-o", f"{tmp_path}/dec/", "--ray"])
    assert code == 0 and sorted(p.name for p in (tmp_path / "dec").iterdir()) == ["a.png", "b.png", "c.wav"]
    capsys.readouterr()
    assert cli.main(["score", *files, "--sort", "--ray"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


@pytest.mark.parametrize("argv,needle", [
    (["encode", "--ray", "{a}", "{a}"], "cluster address"),
    (["encode", "{a}", "-o", "-", "--ray"], "stdin or stdout"),
    (["encode", "{a}", "-o", "{tmp}/x.aec", "--psnr", "--ray"], "--psnr"),
    (["score", "{a}", "--heatmap", "{tmp}/h", "--ray"], "--heatmap"),
])
def test_cli_ray_usage_mistakes_exit_2(tmp_path, capsys, argv, needle):
    a = png(tmp_path / "a.png")
    code = cli.main([s.format(a=a, tmp=tmp_path) for s in argv])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err
