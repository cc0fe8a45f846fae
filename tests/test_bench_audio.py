"""Audio benchmark: Opus adapter, metrics, comparisons and the runner on tiny generated signals."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from aecodec import registry
from aecodec.bench import audio_metrics
from aecodec.bench.audio import (compare_points, detect_kind, headline, interpolate, list_audio,
                                 run_audio_bench)
from aecodec.bench.audio_codecs import AUDIO_CODEC_NAMES, get_audio_codec
from aecodec.models.audio import AudioHyperprior


def speechlike(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Voiced stretches (harmonics of a gliding f0 under a syllable envelope), noise bursts like
    fricatives and short pauses: float32 (frames,) in [-1, 1]."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = 120 + 60 * np.sin(2 * np.pi * 0.4 * t + seed) + 20 * np.sin(2 * np.pi * 3.1 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12)) * np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 2
    bursts = np.zeros(n)
    for start in rng.uniform(0, max(seconds - 0.15, 0.01), size=max(1, int(seconds * 1.5))):
        i, j = int(start * rate), int((start + 0.1) * rate)
        noise = rng.standard_normal(j - i)
        bursts[i:j] += np.diff(noise, prepend=0.0) * 0.5  # high-passed: hiss, not rumble
    pauses = (np.sin(2 * np.pi * 0.3 * t + 1.0) > -0.8).astype(float)
    x = (0.25 * voiced + 0.08 * bursts) * pauses + 0.002 * rng.standard_normal(n)
    return np.clip(x, -1, 1).astype(np.float32)


def tiny_audio_model() -> registry.LoadedModel:
    torch.manual_seed(0)
    net = AudioHyperprior(sample_rate=16000, strides=(2, 4, 5, 8), channels=(8, 8, 16, 16), M=16, N=8, levels=3)
    net.update_tables()
    return registry.from_network(net, "test-audio", 65534)


@pytest.fixture
def speech_dir(tmp_path):
    """Two subsets of two 2-second files each, plus a file that is not audio."""
    root = tmp_path / "speech"
    for s, subset in enumerate(("set_a", "set_b")):
        (root / subset).mkdir(parents=True)
        for i in range(2):
            sf.write(root / subset / f"utt{i}.flac", speechlike(2.0, 16000, seed=10 * s + i), 16000)
    (root / "set_a" / "notes.txt").write_text("not audio")
    return root


# ---------------------------------------------------------------- Opus adapter

@pytest.mark.parametrize("kbps", [6.0, 12.0, 24.0])
def test_opus_round_trip_speech_length_rate_and_measured_bitrate(kbps):
    codec = get_audio_codec("opus", "speech")
    x = speechlike(4.0, 16000)[:, None]
    data = codec.encode(x, 16000, kbps)
    assert data[:4] == b"OggS"
    decoded = codec.decode(data, 16000, len(x))
    assert decoded.shape == x.shape and decoded.dtype == np.float32
    measured = audio_metrics.kbps(len(data), len(x) / 16000)
    assert measured == pytest.approx(kbps, rel=0.2)
    assert audio_metrics.si_sdr(x, decoded) > 0  # the waveform came back, in place


def test_opus_honours_pre_skip_alignment_is_exact():
    """PyAV's decoder drops Opus' pre-skip and trims the end: same length, cross-correlation lag 0."""
    codec = get_audio_codec("opus", "speech")
    rng = np.random.default_rng(3)
    x = (0.2 * rng.standard_normal((3 * 16000, 1))).astype(np.float32)  # broadband: the lag is unambiguous
    decoded_48k, rate = codec.decode_native(codec.encode(x, 16000, 24.0))
    assert rate == 48000 and len(decoded_48k) == 3 * 48000
    decoded = codec.decode(codec.encode(x, 16000, 24.0), 16000, len(x))
    assert audio_metrics.alignment_lag(x, decoded) == 0


def test_opus_music_stereo_at_44100_is_resampled_and_aligned():
    codec = get_audio_codec("opus", "music")
    noise = np.random.default_rng(2).standard_normal((2 * 44100, 2))  # broadband: the lag is unambiguous
    x = (0.1 * noise @ np.array([[1.0, 0.6], [0.0, 0.4]])).astype(np.float32)
    data = codec.encode(x, 44100, 48.0)
    decoded = codec.decode(data, 44100, len(x))
    assert decoded.shape == x.shape
    assert audio_metrics.kbps(len(data), 2.0) == pytest.approx(48.0, rel=0.25)
    assert audio_metrics.alignment_lag(x, decoded) == 0
    assert codec.settings["options"]["application"] == "audio"


def test_unknown_audio_codec_and_kind_are_refused(tmp_path):
    assert set(AUDIO_CODEC_NAMES) == {"aec", "opus"}
    with pytest.raises(ValueError, match="unknown audio codec"):
        get_audio_codec("mp3")
    with pytest.raises(ValueError, match="kind"):
        get_audio_codec("opus", "podcast")


# ---------------------------------------------------------------- metrics

def test_metrics_identical_signal_is_perfect_and_noise_is_worse():
    rate = 16000
    x = speechlike(3.0, rate)
    noisy = x + np.random.default_rng(5).normal(0, 0.03, len(x)).astype(np.float32)
    assert audio_metrics.stoi(x, x, rate) == pytest.approx(1.0, abs=1e-6)
    assert audio_metrics.si_sdr(x, x) > 100
    assert audio_metrics.log_mel(x, x, rate) == 0.0
    assert audio_metrics.stoi(x, noisy, rate) < 0.99
    assert audio_metrics.si_sdr(x, noisy) < 30
    assert audio_metrics.log_mel(x, noisy, rate) > 0.1
    v_same = audio_metrics.visqol(x, x, rate, "speech")
    v_noisy = audio_metrics.visqol(x, noisy, rate, "speech")
    assert 1.0 <= v_noisy < v_same <= 5.0


def test_metrics_stereo_average_channels_and_refuse_shape_mismatch():
    x = np.stack([speechlike(1.0, 16000), speechlike(1.0, 16000, seed=4)], axis=1)
    assert audio_metrics.log_mel(x, x, 16000) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        audio_metrics.si_sdr(x, x[:-1])
    assert audio_metrics.kbps(750, 1.0) == pytest.approx(6.0)


# ---------------------------------------------------------------- comparisons

OPUS = {"target_kbps": [6, 12, 24], "kbps": [6.5, 12.5, 24.5], "visqol": [2.0, 3.5, 4.0], "stoi": [0.85, 0.93, 0.97],
        "si_sdr": [2.0, 5.0, 7.0], "log_mel": [0.9, 0.5, 0.3]}


def test_interpolation_in_log_rate_and_no_extrapolation():
    mid = interpolate(OPUS, "visqol", math.sqrt(6.5 * 12.5))  # geometric midpoint
    assert mid["value"] == pytest.approx(2.75)
    below = interpolate(OPUS, "visqol", 5.0)
    assert below["value"] is None and "outside" in below["reason"] and below["bound"]["kbps"] == 6.5


def test_speech_headline_verdicts_and_bounds():
    aec = {"target_kbps": [3.0, 6.0, 12.0], "kbps": [3.1, 6.0, 11.0], "visqol": [1.5, 2.5, 3.0],
           "stoi": [0.80, 0.90, 0.92], "si_sdr": [-5.0, -2.0, 0.0], "log_mel": [1.0, 0.8, 0.6]}
    rows = compare_points(aec, OPUS, "speech")
    top = headline(aec, OPUS, "speech", rows)
    assert top["aec_target_kbps"] == 6.0
    # 6.0 kbps is below Opus' lowest measured 6.5: aec beats that point (more bits), so the target is met
    assert top["opus_same_rate"]["visqol"]["value"] is None
    assert top["target_met"] is True
    # at double the rate (12 kbps) Opus is interpolated and better
    assert top["opus_double_rate"]["visqol"]["value"] > 3.0 and top["aim_met"] is False
    assert rows[2]["aec_at_least_opus_same_rate"]["visqol"] is False


def test_list_audio_recurses_into_subsets_with_a_limit_per_subset(speech_dir):
    found = list_audio(speech_dir, limit=1)
    assert [(s, f) for s, f, _ in found] == [("set_a", "set_a/utt0.flac"), ("set_b", "set_b/utt0.flac")]
    assert len(list_audio(speech_dir)) == 4
    with pytest.raises(FileNotFoundError):
        list_audio(speech_dir / "nowhere")
    assert detect_kind([{"channels": 1, "rate": 16000}]) == "speech"
    assert detect_kind([{"channels": 1, "rate": 16000}, {"channels": 2, "rate": 16000}]) == "music"


# ---------------------------------------------------------------- runner

def test_runner_writes_results_summary_and_plot(speech_dir, tmp_path):
    out = tmp_path / "out"
    lines = []
    summary = run_audio_bench(speech_dir, ["aec", "opus"], out, points={"aec": [3.0, 12.0], "opus": [6.0, 12.0]},
                              model=tiny_audio_model(), log=lines.append)
    assert summary["dataset"]["kind"] == "speech" and summary["dataset"]["files"] == 4
    assert set(summary["dataset"]["subsets"]) == {"set_a", "set_b"}
    for name in ("aec", "opus"):
        doc = json.loads((out / f"{name}.json").read_text())
        assert doc["name"] == name and doc["description"]
        results = doc["results"]
        for key in ("target_kbps", "kbps", "visqol", "stoi", "si_sdr", "log_mel", "encode_xrt", "decode_xrt",
                    "encode_cpu_xrt", "decode_cpu_xrt"):
            assert len(results[key]) == 2, key
        assert all(v is not None and v > 0 for v in results["kbps"] + results["encode_xrt"] + results["decode_xrt"])
        assert set(doc["results_by_subset"]) == {"set_a", "set_b"}
        assert len(doc["per_file"]) == 8
        record = doc["per_file"][0]
        assert record["kbps"] == pytest.approx(8 * record["bytes"] / record["seconds"] / 1000)
        assert doc["machine"]["cpu"] and doc["dataset"] == summary["dataset"]
        assert doc["settings"]["metrics"]["visqol"]["mode"] == "speech"
    opus = json.loads((out / "opus.json").read_text())
    assert opus["results"]["kbps"][0] < opus["results"]["kbps"][1]
    assert all(1.0 <= v <= 5.0 for v in opus["results"]["visqol"])
    assert all(isinstance(r["lag_samples"], int) for r in opus["per_file"])
    aec = json.loads((out / "aec.json").read_text())
    assert aec["settings"]["codec"]["model"] == "test-audio" and aec["settings"]["codec"]["torch_threads"] == 1
    saved = json.loads((out / "summary.json").read_text())
    assert saved == summary
    comparison = summary["comparison"]
    assert comparison["test"] == "aec" and comparison["headline"]["aec_target_kbps"] == 3.0
    assert comparison["headline"]["speed"]["target_xrt"] == 20.0
    assert set(comparison["bd_rate"]) == {"visqol", "stoi", "si_sdr", "neg_log_mel"}
    assert set(summary["comparison_by_subset"]) == {"set_a", "set_b"}
    assert (out / "rd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any("opus 6 kbps" in line for line in lines)


def test_runner_opus_only_music_kind(tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    left = speechlike(1.5, 48000, seed=7)
    sf.write(folder / "clip.flac", np.stack([left, 0.5 * left], axis=1), 48000)
    summary = run_audio_bench(folder, ["opus"], tmp_path / "out", points=[24.0], log=lambda *_: None)
    assert summary["dataset"]["kind"] == "music" and summary["comparison"] is None
    assert summary["points"]["opus"]["stoi"] == [None]
    assert summary["points"]["opus"]["log_mel"][0] > 0
    with pytest.raises(ValueError, match="unknown audio codec"):
        run_audio_bench(folder, ["flac"], tmp_path / "out2", log=lambda *_: None)
