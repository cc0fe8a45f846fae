"""Audio training: real steps on generated clips, resume, rate controller state, export, DDP with two CPU processes."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from aecodec import audio, registry
from aecodec.models.audio import build_family
from aecodec.train.audio import AudioTrainConfig, SpectralDistortion, train_audio
from aecodec.train.export import export_checkpoint
from aecodec.testing import gliding_tone, train_log_steps


@pytest.fixture
def audio_folder(tmp_path):
    d = tmp_path / "clips"
    (d / "sub").mkdir(parents=True)
    sf.write(str(d / "a.wav"), gliding_tone(1.0, 16000, seed=1), 16000)
    sf.write(str(d / "sub" / "b.flac"), gliding_tone(1.0, 22050, channels=2, seed=2), 22050)  # resampled, 2 signals
    return d


def test_train_resume_export_and_code(audio_folder, tmp_path):
    run = tmp_path / "run"
    cfg = AudioTrainConfig(data=[audio_folder], out=run, family="speech", steps=2, batch_size=2, seconds=0.2,
                           log_every=1, checkpoint_every=1, threads=1)
    ckpt = train_audio(cfg)
    assert train_log_steps(run) == [1, 2]
    cfg.steps = 3
    train_audio(cfg)
    assert train_log_steps(run) == [1, 2, 3]
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 3 and len(state["extra"]["log_beta"]) == 3 and state["extra"]["family"] == "speech"
    last = json.loads((run / "train.log").read_text().splitlines()[-1])
    assert len(last["kbps"]) == 3 and all(k is None or k > 0 for k in last["kbps"])
    assert len(last["distortion_per_level"]) == 3 and all(d is None or d > 0 for d in last["distortion_per_level"])

    out = export_checkpoint(ckpt, tmp_path / "speech.safetensors")
    weights = load_file(str(out))
    assert "gaussian_conditional._quantized_cdf" in weights
    net = build_family("speech", inference=True)  # the compressai-free inference build loads the export
    net.load_state_dict(weights)
    model = registry.from_network(net, "test-speech", 65533)
    x = gliding_tone(0.5, 16000)
    y, rate = audio.decompress(audio.compress(x, 16000, 6, model=model), model=model)
    assert rate == 16000 and y.shape == (len(x), 1)


def test_spectral_distortion_is_zero_for_identical_and_grows_with_noise():
    loss = SpectralDistortion(16000, (256, 512, 1024), 64, 5.0)
    x = torch.from_numpy(gliding_tone(0.5, 16000))[None, None]
    rng = torch.Generator().manual_seed(0)
    small = x + 0.001 * torch.randn(x.shape, generator=rng)
    big = x + 0.05 * torch.randn(x.shape, generator=rng)
    assert loss(x, x).item() < 1e-4 < loss(small, x).item() < loss(big, x).item()
    per_excerpt = loss(torch.cat([x, small, big]), torch.cat([x, x, x]))  # one value per excerpt
    assert per_excerpt.shape == (3,) and per_excerpt[0] < per_excerpt[1] < per_excerpt[2]


def test_ddp_two_cpu_processes(audio_folder, tmp_path):
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "aecodec.cli",
           "train", "audio", "--family", "speech", "--data", str(audio_folder), "--out", str(run), "--steps", "2",
           "--batch-size", "2", "--seconds", "0.2", "--device", "cpu"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [json.loads(line) for line in (run / "train.log").read_text().splitlines()]
    assert lines[0]["world_size"] == 2 and lines[-1]["step"] == 2
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2


def test_missing_audio_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        train_audio(AudioTrainConfig(data=[tmp_path], out=tmp_path / "run", steps=1))


def test_distortion_terms_sum_to_the_v1_loss():
    """terms() are the v1 loss' pieces: their v1-weighted sum is forward() (the v1 path is unchanged)."""
    loss = SpectralDistortion(16000, (256, 512, 1024), 64, 5.0, mel_windows=(128, 2048))
    x = torch.from_numpy(gliding_tone(0.5, 16000))[None, None]
    x_hat = x + 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    t = loss.terms(x_hat, x)
    assert set(t) == {"sc", "logmag", "mel", "waveform", "multimel"}
    torch.testing.assert_close(t["sc"] + t["logmag"] + t["mel"] + 5.0 * t["waveform"], loss(x_hat, x))
    assert float(t["multimel"]) > 0 and float(loss.terms(x, x)["multimel"]) == 0


def test_balancer_gives_each_term_its_weighted_share_of_the_gradient():
    """EnCodec's balancer: whatever the terms' natural scales (here 1 and 1000), each term's
    contribution to the gradient on x̂ has norm norm·w_i/Σw on the first step."""
    from aecodec.train.audio import Balancer
    from aecodec.train.common import Distributed

    leaf = torch.randn(2, 1, 64, requires_grad=True)
    target = torch.randn(2, 1, 64)
    terms = {"a": (leaf - target).abs().mean(), "b": 1000.0 * (leaf - target).pow(2).mean()}
    bal = Balancer({"a": 1.0, "b": 3.0}, norm=8.0)
    g = bal.gradient(terms, leaf, Distributed())
    ga = torch.autograd.grad((leaf - target).abs().mean(), leaf)[0]
    gb = torch.autograd.grad((leaf - target).pow(2).mean(), leaf)[0]
    expected = 8.0 * (0.25 * ga / ga.norm() + 0.75 * gb / gb.norm())
    torch.testing.assert_close(g, expected)
    assert Balancer({"a": 1.0, "b": 0.0}, 1.0).weights == {"a": 1.0}  # zero weights drop the term


def test_balanced_run_with_multiscale_mel_trains_and_resumes(audio_folder, tmp_path):
    run = tmp_path / "run"
    cfg = AudioTrainConfig(data=[audio_folder], out=run, family="speech", steps=4, batch_size=2, seconds=0.2,
                           log_every=1, checkpoint_every=1, threads=1, straight_through_from=0.0,
                           balance={"sc": 1, "logmag": 1, "mel": 1, "waveform": 0.1, "multimel": 2},
                           mel_windows=(128, 512), init_log_beta=(-3.0, -7.0, -9.0), log_beta_min=-12.0, stop_at=2)
    train_audio(cfg)
    assert train_log_steps(run) == [1, 2]  # stop_at pauses the run with a checkpoint
    first = json.loads((run / "train.log").read_text().splitlines()[1])
    assert first["beta"][2] < math.exp(-8.0)  # init_log_beta used, below v1's clamp floor
    cfg.stop_at = None
    train_audio(cfg)
    assert train_log_steps(run) == [1, 2, 3, 4]
    start = json.loads((run / "train.log").read_text().splitlines()[0])
    assert start["balance"]["multimel"] == 2 and start["mel_windows"] == [128, 512]
