"""Image benchmark: metrics, Pillow codec adapters, BD-rate sign, runner outputs, reference curves."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from aecodec.bench import bdrate, metrics
from aecodec.bench.codecs import CODEC_NAMES, get_codec
from aecodec.bench.image import load_references, run_image_bench, time_compressai_reference_decode
from aecodec.bench.plot import plot_rd


def smooth_image(seed: int, size=(192, 192)) -> Image.Image:
    """A smooth colour pattern with mild noise: compresses like a photo, not like white noise."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    planes = [128 + 90 * np.sin(2 * np.pi * (k + 1 + seed) * (xx + 0.7 * yy) + k) for k in range(3)]
    array = np.stack(planes, axis=-1) + rng.normal(0, 4, (h, w, 3))
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture
def image_dir(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    for i in range(2):
        smooth_image(i).save(folder / f"img{i}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


# ---------------------------------------------------------------- metrics

def test_bpp_counts_every_byte():
    assert metrics.bpp(1000, 100, 80) == pytest.approx(1.0)
    assert metrics.bpp(1, 8, 1) == pytest.approx(1.0)


def test_psnr_of_identical_images_is_inf():
    a = np.asarray(smooth_image(0))
    assert metrics.psnr_rgb(a, a.copy()) == math.inf


def test_psnr_of_known_mse():
    a = np.full((10, 10, 3), 100, np.uint8)
    b = a.copy()
    b[..., 0] += 6  # error 6 in one channel of three: MSE = 36 / 3 = 12
    assert metrics.psnr_rgb(a, b) == pytest.approx(10 * math.log10(255**2 / 12))
    b = a + np.uint8(5)  # error 5 everywhere: MSE = 25
    assert metrics.psnr_rgb(Image.fromarray(a), Image.fromarray(b)) == pytest.approx(10 * math.log10(255**2 / 25))


def test_psnr_rejects_other_shapes_and_types():
    a = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError):
        metrics.psnr_rgb(a, np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(ValueError):
        metrics.psnr_rgb(a.astype(np.float32), a)


def test_ms_ssim_identical_is_one_and_small_images_give_none():
    a = np.asarray(smooth_image(0))
    assert metrics.ms_ssim_rgb(a, a) == pytest.approx(1.0, abs=1e-5)
    noisy = np.clip(a.astype(int) + np.random.default_rng(1).integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    assert 0 < metrics.ms_ssim_rgb(a, noisy) < 0.999
    small = np.asarray(smooth_image(0, size=(160, 300)))
    assert metrics.ms_ssim_rgb(small, small) is None


def test_ms_ssim_db():
    assert metrics.ms_ssim_db(0.99) == pytest.approx(20.0)
    assert metrics.ms_ssim_db(0.9) == pytest.approx(10.0)
    assert metrics.ms_ssim_db(None) is None
    assert metrics.ms_ssim_db(1.0) == math.inf


# ---------------------------------------------------------------- codec adapters

@pytest.mark.parametrize("name", ["jpeg", "webp", "avif"])
def test_pillow_codec_round_trip_and_rate_grows_with_quality(name):
    codec = get_codec(name)
    image = smooth_image(0)
    low, high = codec.qualities[1], codec.qualities[-2]
    sizes = []
    for quality in (low, high):
        data = codec.encode(image, quality)
        decoded = codec.decode(data)
        assert decoded.mode == "RGB" and decoded.size == image.size
        assert metrics.psnr_rgb(image, decoded) > 20
        sizes.append(len(data))
    assert sizes[0] < sizes[1]
    assert codec.settings["save_options"]


def test_unknown_codec_name_is_refused():
    assert set(CODEC_NAMES) == {"aec", "jpeg", "webp", "avif"}
    with pytest.raises(ValueError, match="unknown image codec"):
        get_codec("bpg")


def test_aec_adapter_round_trip_with_default_model():
    """The default model's weights ship in aecodec/weights: a missing or mismatched file fails here."""
    codec = get_codec("aec")
    image = smooth_image(0)
    data = codec.encode(image, 4)
    decoded = codec.decode(data)
    assert decoded.mode == "RGB" and decoded.size == image.size
    assert len(codec.encode(image, 1)) < len(codec.encode(image, 8))


# ---------------------------------------------------------------- BD-rate

ANCHOR_BPP = [0.25, 0.5, 1.0, 2.0]
ANCHOR_PSNR = [28.0, 31.0, 34.5, 38.0]


def test_bd_rate_sign_on_shifted_curves():
    cheaper = bdrate.bd_rate(ANCHOR_BPP, ANCHOR_PSNR, [r * 0.8 for r in ANCHOR_BPP], ANCHOR_PSNR)
    assert cheaper["bd_rate_percent"] == pytest.approx(-20.0, abs=1e-6)
    dearer = bdrate.bd_rate(ANCHOR_BPP, ANCHOR_PSNR, [r * 1.25 for r in ANCHOR_BPP], ANCHOR_PSNR)
    assert dearer["bd_rate_percent"] == pytest.approx(25.0, abs=1e-6)
    better = bdrate.bd_rate(ANCHOR_BPP, ANCHOR_PSNR, ANCHOR_BPP, [p + 1.0 for p in ANCHOR_PSNR])
    assert better["bd_rate_percent"] < 0


def test_bd_rate_handles_other_point_counts_and_order():
    test_bpp, test_psnr = [1.6, 0.2, 0.8], [38.0, 28.5, 34.5]  # 3 points, unsorted
    result = bdrate.bd_rate(ANCHOR_BPP, ANCHOR_PSNR, test_bpp, test_psnr)
    assert result["bd_rate_percent"] is not None and result["bd_rate_percent"] < 0


def test_bd_rate_without_overlap_is_none_with_reason():
    result = bdrate.bd_rate(ANCHOR_BPP, ANCHOR_PSNR, [0.05, 0.1], [20.0, 22.0])
    assert result["bd_rate_percent"] is None and "do not overlap" in result["reason"]
    result = bdrate.bd_rate(ANCHOR_BPP, ANCHOR_PSNR, [0.5, None], [30.0, None])
    assert result["bd_rate_percent"] is None and "at least 2" in result["reason"]


def test_compare_curves_on_psnr_and_ms_ssim():
    anchor = {"bpp": ANCHOR_BPP, "psnr-rgb": ANCHOR_PSNR, "ms-ssim": [0.93, 0.96, 0.98, 0.99]}
    test = {"bpp": [r * 0.9 for r in ANCHOR_BPP], "psnr-rgb": ANCHOR_PSNR, "ms-ssim": anchor["ms-ssim"]}
    both = bdrate.compare_curves(anchor, test)
    assert both["psnr-rgb"]["bd_rate_percent"] == pytest.approx(-10.0, abs=1e-6)
    assert both["ms-ssim-db"]["bd_rate_percent"] == pytest.approx(-10.0, abs=1e-6)


# ---------------------------------------------------------------- references and plot

def test_reference_curves_are_cited_and_complete():
    references = load_references()
    names = {ref["name"] for ref in references}
    assert names == {"CompressAI bmshj2018-hyperprior (published)", "CompressAI mbt2018-mean (published)"}
    for ref in references:
        assert ref["source"]["repository"] == "https://github.com/InterDigitalInc/CompressAI"
        assert ref["source"]["path"].startswith("results/image/kodak/")
        results = ref["results"]
        assert len(results["bpp"]) == len(results["psnr-rgb"]) == len(results["ms-ssim"]) == 8
        assert results["bpp"] == sorted(results["bpp"]) and results["psnr-rgb"] == sorted(results["psnr-rgb"])


def test_plot_draws_codecs_and_references(tmp_path):
    curve = {"name": "jpeg", "results": {"bpp": [0.3, 0.6], "psnr-rgb": [27.0, 30.0], "ms-ssim": [0.9, 0.95]}}
    path = plot_rd([curve], load_references(), tmp_path / "rd.png", "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- runner

def test_runner_writes_results_summary_and_plot(image_dir, tmp_path):
    out_dir = tmp_path / "out"
    lines = []
    summary = run_image_bench(image_dir, ["jpeg", "webp"], out_dir, qualities={"jpeg": [30, 80], "webp": [30, 80]},
                              log=lines.append)
    for name in ("jpeg", "webp"):
        doc = json.loads((out_dir / f"{name}.json").read_text())
        assert doc["name"] == name and doc["description"]
        results = doc["results"]
        for key in ("bpp", "psnr-rgb", "ms-ssim", "encoding_time", "decoding_time", "quality"):
            assert len(results[key]) == 2, key
        assert results["quality"] == [30, 80]
        assert results["bpp"][0] < results["bpp"][1]
        assert results["psnr-rgb"][0] < results["psnr-rgb"][1]
        assert all(0 < v <= 1 for v in results["ms-ssim"])
        assert doc["machine"]["cpu"] and doc["dataset"] == summary["dataset"]
        assert doc["dataset"]["images"] == 2 and doc["dataset"]["name"] == "tiny"
        assert len(doc["per_image"]) == 4
        record = doc["per_image"][0]
        assert record["bpp"] == pytest.approx(8 * record["bytes"] / (192 * 192))
    saved = json.loads((out_dir / "summary.json").read_text())
    assert saved == summary
    assert summary["bd_rate"]["test"] == "jpeg"
    assert set(summary["bd_rate"]["anchors"]) == {"webp"}
    assert set(summary["bd_rate"]["anchors"]["webp"]) == {"psnr-rgb", "ms-ssim-db"}
    assert "skipped" in summary["bd_rate"]["published_anchors"]
    assert "compressai_reference_decode" not in summary
    assert (out_dir / "rd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("jpeg q=30" in line for line in lines)


def test_runner_limit_and_missing_folder(image_dir, tmp_path):
    summary = run_image_bench(image_dir, ["jpeg"], tmp_path / "out", qualities={"jpeg": [50]}, limit=1,
                              log=lambda *_: None)
    assert summary["dataset"]["images"] == 1
    with pytest.raises(FileNotFoundError):
        run_image_bench(tmp_path / "nowhere", ["jpeg"], tmp_path / "out2", log=lambda *_: None)


def test_compressai_reference_decode_timing_small():
    result = time_compressai_reference_decode(image_size=(60, 100), repeats=1)
    assert result["padded_size"] == [64, 128]
    assert len(result["decode_seconds"]) == 1 and result["decode_seconds_median"] > 0
    assert "random" in result["weights"]
