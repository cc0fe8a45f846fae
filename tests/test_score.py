"""Anomaly scores and heatmaps (aecodec.analysis, `aecodec score`) with tiny random models.

The tiny models are random networks with their gains raised (×30), so that their latents do not
all round to zero: like a trained model, they then spend more bits where the signal has more
energy (the audio one ×300), which is what these tests need (exact bits, maps, windows), not a learned prior."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from aecodec import analysis, cli, codec, entropy, registry
from aecodec.errors import InputError, ModelError
from aecodec.testing import soft_image, tiny_score_audio_model, tiny_score_image_model


def with_noise_patch(img, seed, size=64):
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    x, y = int(rng.integers(0, w - size)), int(rng.integers(0, h - size))
    out = img.copy()
    out[y : y + size, x : x + size] = rng.integers(0, 256, (size, size, 3))
    return out, (x, y, size, size)


@pytest.fixture(scope="module")
def model():
    return tiny_score_image_model()


def test_symbol_bits_add_up_to_ideal_bits(model):
    net = model.net
    img = soft_image(128, 64)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    z, y, idx = net.analyze(x, 3.0)
    y = y.copy()
    y[0, 0, 0] = 5000  # an escape (outside every table): counted as the coder codes it
    y[1, 0, 1] = -70000
    p = net.entropy_bottleneck.entropy_coder_precision
    for sym, ind, tables in ((z, net.z_indexes(z.shape), net.z_tables()), (y, idx, net.y_tables())):
        bits = analysis.symbol_bits(sym, ind, *tables, precision=p)
        assert bits.shape == sym.shape and (bits > 0).all()
        assert bits.sum() == pytest.approx(entropy.ideal_bits(sym, ind, *tables, precision=p), rel=1e-12)
        assert abs(8 * len(entropy.encode(sym, ind, *tables, precision=p)) - bits.sum()) < 64


def test_score_is_the_bits_the_codec_spends(model):
    img = soft_image(200, 130)
    s = analysis.score_image(img, 4, model=model)
    file_bits = 8 * len(codec.compress_image(img, 4, model=model))
    assert s.width == 200 and s.height == 130 and s.cell == 16 and s.bits_map.shape == (192 // 16, 256 // 16)
    assert s.bits == pytest.approx(s.bits_map.sum())
    assert s.bits_per_pixel == pytest.approx(s.bits / (200 * 130))
    assert 0 < file_bits - s.bits < 8 * 400  # the file adds its header, chunk framing and the coder's last bytes


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noise_patch_raises_score_and_heatmap_finds_it(model, seed):
    clean = soft_image(256, 192, seed)
    bad, (x, y, w, h) = with_noise_patch(clean, seed)
    a = analysis.score_image(clean, 5, model=model)
    b = analysis.score_image(bad, 5, model=model)
    assert b.bits_per_pixel > a.bits_per_pixel
    wx, wy, ww, wh = b.hottest_window(64)
    assert (ww, wh) == (64, 64)
    assert wx < x + w and x < wx + ww and wy < y + h and y < wy + wh  # the hottest window lies on the patch
    heat = np.asarray(analysis.heatmap_image(b), float)
    assert heat[y : y + h, x : x + w].mean() > heat.mean()


def test_tiles_leave_no_seams(model):
    img, _ = with_noise_patch(soft_image(320, 256, 3), 3)
    whole = analysis.score_image(img, 5, model=model)
    tiled = analysis.score_image(img, 5, model=model, tile=128)  # 3 × 2 windows with 128 px of context
    assert tiled.bits_per_pixel == pytest.approx(whole.bits_per_pixel, rel=0.01)
    diff = np.abs(tiled.bits_map - whole.bits_map)
    assert diff.max() < 0.05 * whole.bits_map.max()
    # without context each tile is coded on its own, as the codec does: its borders show
    seams = analysis.score_image(img, 5, model=model, tile=128, context=0)
    assert np.abs(seams.bits_map - whole.bits_map).max() > diff.max()


def test_heatmap_and_overlay_images(model):
    img = soft_image(150, 90)
    s = analysis.score_image(img, model=model)
    assert s.quality == 8.0  # the model's default (a network without one: its highest level)
    heat = analysis.heatmap_image(s)
    assert heat.mode == "L" and heat.size == (150, 90) and np.asarray(heat).max() == 255
    half = analysis.heatmap_image(s, vmax=2 * float(s.bpp_map().max()))
    assert np.asarray(half).max() in (127, 128)
    over = analysis.overlay_image(img, s)
    assert over.mode == "RGB" and over.size == (150, 90)
    assert analysis.score_image(np.zeros((5, 7, 3), np.uint8), model=model).hottest_window(64) == (0, 0, 16, 16)


def test_inputs_and_errors(model, tmp_path):
    img = soft_image(64, 64)
    Image.fromarray(img).save(tmp_path / "a.png")
    assert analysis.score_image(tmp_path / "a.png", model=model).bits == analysis.score_image(img, model=model).bits
    with pytest.raises(InputError):
        analysis.score_image(img, 9, model=model)  # the tiny model has 8 levels
    with pytest.raises(InputError):
        analysis.score_image(img, model=model, tile=100)
    with pytest.raises(ModelError):
        analysis.score_image(img, model="audio-speech-v1")
    with pytest.raises(ModelError):
        analysis.score_image(img, model="no-such-model")


def test_suggest_threshold():
    scores = np.arange(1, 101) / 100  # 0.01 .. 1.00
    t = analysis.suggest_threshold(scores, 0.05)
    assert np.mean(scores > t) == pytest.approx(0.05)
    assert analysis.suggest_threshold(scores, 0.0) == 1.0
    assert analysis.suggest_threshold([3.0, 1.0], 0.01) == 3.0  # fewer scores than 1/FPR: the largest
    with pytest.raises(InputError):
        analysis.suggest_threshold([], 0.1)


def test_score_audio_over_time():
    m = tiny_score_audio_model()
    rate = 16000
    t = np.arange(int(12.5 * rate)) / rate
    x = 0.05 * np.sin(2 * np.pi * 220 * t)
    burst = slice(int(11 * rate), int(12 * rate))  # in the second 10 s segment
    x[burst] += np.random.default_rng(0).normal(0, 0.5, burst.stop - burst.start)
    s = analysis.score_audio(x.astype(np.float32), rate, model=m)
    assert s.frame_rate == 50.0 and len(s.bits_per_frame) == int(12.5 * 50)
    assert s.bits_per_second == pytest.approx(s.bits / 12.5)
    per_second = s.over_time(1.0)
    assert len(per_second) == 13
    assert np.argmax(per_second) == 11
    stereo = analysis.score_audio(np.stack([x, x], 1).astype(np.float32), rate, model=m)
    silence = analysis.score_audio(np.zeros_like(x, np.float32), rate, model=m)
    assert stereo.bits == pytest.approx(s.bits + silence.bits, rel=1e-6)  # mid = x, side = 0: the channels add
    doc = s.to_dict()
    assert doc["bits_per_second_by_second"][11] == max(doc["bits_per_second_by_second"])
    with pytest.raises(InputError):
        analysis.score_audio(x, None, model=m)


# ------------------------------------------------------------------------------------------------
# the command


def run(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def images(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    clean = soft_image(128, 128, 1)
    Image.fromarray(clean).save(d / "clean.png")
    Image.fromarray(with_noise_patch(clean, 1)[0]).save(d / "noisy.png")
    return d


def test_cli_score_json_sort_heatmap_threshold(images, tmp_path, capsys):
    heat = tmp_path / "heat"
    rc, out, err = run(["score", str(images), "--json", "--sort", "--heatmap", str(heat), "--overlay",
                        "--fpr", "0.5", "--threshold", "0.5"], capsys)
    assert rc == 0, err
    docs = [json.loads(line) for line in out.splitlines()]
    files = [d for d in docs if "file" in d]
    assert [d["file"].rsplit("/", 1)[1] for d in files] == ["noisy.png", "clean.png"]  # highest first
    assert all(d["modality"] == "image" and d["model"] == registry.DEFAULT_IMAGE_MODEL for d in files)
    assert files[0]["bits_per_pixel"] > files[1]["bits_per_pixel"]
    assert files[0]["anomalous"] is True and files[1]["anomalous"] is False
    assert docs[-1]["suggested_threshold"] == files[1]["bits_per_pixel"] and docs[-1]["n"] == 2
    for stem in ("clean", "noisy"):
        with Image.open(heat / f"{stem}.png") as im:
            assert im.mode == "L" and im.size == (128, 128)
        with Image.open(heat / f"{stem}.overlay.png") as im:
            assert im.mode == "RGB" and im.size == (128, 128)
    rc, out, err = run(["score", str(images), "--heatmap", str(heat)], capsys)
    assert rc == 1 and "exists" in err  # heatmaps are not overwritten without -f
    rc, out, _ = run(["score", str(images / "clean.png"), str(images / "noisy.png"), "--fpr", "0.5"], capsys)
    assert rc == 0
    lines = out.splitlines()
    assert lines[0].split()[1] == "bpp" and lines[0].endswith("clean.png")
    assert "suggested threshold at 50 % false positives over 2" in lines[-1]


def test_cli_score_audio(tmp_path, capsys):
    import soundfile as sf

    rate = 16000
    sf.write(tmp_path / "tone.wav", (0.1 * np.sin(np.arange(rate) * 0.1)).astype(np.float32), rate)
    rc, out, err = run(["score", str(tmp_path / "tone.wav"), "--json", "--heatmap", str(tmp_path / "h")], capsys)
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["modality"] == "audio" and doc["bits_per_second"] > 0 and doc["model"] == "audio-speech-v1"
    rows = (tmp_path / "h" / "tone.csv").read_text().splitlines()
    assert rows[0] == "time_s,bits_per_second" and len(rows) == 1 + 50


@pytest.mark.parametrize("argv", [
    ["score"],
    ["score", "x.png", "--fpr", "1.5"],
    ["score", "x.png", "--overlay"],
    ["score", "x.png", "--tile", "100"],
    ["score", "x.png", "-q", "-1"],
    ["score", "-"],
    ["score", "x.png", "--no-such-flag"],
])
def test_cli_score_usage_errors_exit_2(argv, capsys):
    assert cli.main(argv) == 2


def test_cli_score_runtime_errors_exit_1(images, tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    rc, out, err = run(["score", str(tmp_path / "bad.png"), str(images / "clean.png")], capsys)
    assert rc == 1 and "bad.png" in err and out.strip().endswith("clean.png")  # the others are still scored
    rc, _, err = run(["score", str(tmp_path / "missing.png")], capsys)
    assert rc == 1
    rc, _, err = run(["score", str(images / "clean.png"), "-q", "11"], capsys)
    assert rc == 1 and "quality" in err


def test_bench_anomaly_small(model, tmp_path, capsys):
    from aecodec.bench.anomaly import run_anomaly_bench

    sets = []
    for name, seeds in (("a", (0, 1)), ("b", (2, 3))):
        d = tmp_path / name
        d.mkdir()
        for s in seeds:
            Image.fromarray(soft_image(256, 192, s)).save(d / f"img{s}.png")
        sets.append(d)
    out = tmp_path / "out"
    threads = torch.get_num_threads()
    summary = run_anomaly_bench(sets, out, model=model, quality=5, example="img0", distractors=sets[0])
    assert set(summary["defects"]) == {"a", "b", "all"}
    for kind in ("text", "impulse", "foreign", "all"):
        rates = summary["defects"]["all"][kind]
        assert rates["n"] == (12 if kind == "all" else 4) and 0 <= rates["hottest_window_hits"] <= 1
    assert summary["defects"]["all"]["impulse"]["score_rises"] == 1.0
    assert summary["retrieval"]["gallery"] == 4 and summary["retrieval"]["feature_length"] == 48
    assert 0 <= summary["retrieval"]["all"]["recall_at_1"] <= 1 and summary["machine"]["cores"] >= 1
    assert summary["retrieval"]["with_distractors"]["distractors"] == 2
    assert (out / "summary.json").is_file() and len(json.loads((out / "per_image.json").read_text())) == 12
    assert (out / "example_heatmaps.png").is_file()
    assert torch.get_num_threads() == threads and codec.CODING_THREADS is None  # restored
    assert cli.main(["bench", "anomaly", "--data", str(tmp_path / "missing")]) == 2


def test_context_model_scores_through_the_same_contract():
    """The channel-group + checkerboard model: its y is coded in passes, yet the per-position bits add
    up to what its file spends, and a noise patch raises its score."""
    testing = pytest.importorskip("aecodec.testing")
    if not hasattr(testing, "tiny_context_model"):
        pytest.skip("no context model in this tree")
    m = testing.tiny_context_model()
    img = soft_image(192, 128, 4)
    s = analysis.score_image(img, 2, model=m)
    file_bits = 8 * len(codec.compress_image(img, 2, model=m))
    assert 0 < file_bits - s.bits < 8 * 400
    bad, _ = with_noise_patch(img, 4)
    assert analysis.score_image(bad, 2, model=m).bits_per_pixel > s.bits_per_pixel
    assert analysis.image_features(img, model=m).shape == (2 * m.net.M,)
