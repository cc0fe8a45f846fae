"""Training: a few real steps, resume, export to safetensors, DDP with two CPU processes; registry/manifest."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from aecodec import codec, registry
from aecodec.models.image import GainedMeanScaleHyperprior
from aecodec.testing import train_log_steps
from aecodec.train.export import export_checkpoint, manifest
from aecodec.train.image import ImageTrainConfig, train_image


@pytest.fixture
def image_folder(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)).save(d / f"{i}.png")
    return d


def test_train_resume_export(image_folder, tmp_path):
    run = tmp_path / "run"
    cfg = ImageTrainConfig(data=image_folder, out=run, steps=3, batch_size=2, crop=64, N=16, M=24, log_every=1,
                           checkpoint_every=1)
    ckpt = train_image(cfg)
    assert ckpt.exists() and train_log_steps(run) == [1, 2, 3]
    cfg.steps = 5
    train_image(cfg)  # resumes at step 3
    assert train_log_steps(run) == [1, 2, 3, 4, 5]
    assert torch.load(ckpt, weights_only=True)["step"] == 5

    out = export_checkpoint(ckpt, tmp_path / "w.safetensors")
    state = load_file(str(out))
    assert "entropy_bottleneck._quantized_cdf" in state and "gaussian_conditional._quantized_cdf" in state
    net = GainedMeanScaleHyperprior(N=16, M=24)
    net.load_state_dict(state)
    model = registry.from_network(net)
    image = Image.open(image_folder / "0.png")
    # a new run can start from the exported weights
    cfg2 = ImageTrainConfig(data=image_folder, out=tmp_path / "run2", steps=1, batch_size=2, crop=64, N=16, M=24,
                            init=out)
    train_image(cfg2)
    first = torch.load(tmp_path / "run2" / "checkpoint.pt", weights_only=True)["model"]
    assert torch.allclose(first["g_s.0.weight"], state["g_s.0.weight"], atol=1e-2)
    assert codec.decompress_image(codec.compress_image(image, 5, model=model), model=model).size == image.size


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_precision(image_folder, tmp_path, precision):
    """bf16 runs the conv transforms under autocast (their activations are bf16) while the
    likelihoods stay fp32; a bf16 run trains and logs finite losses."""
    from aecodec.train.common import set_training_precision

    net = GainedMeanScaleHyperprior(N=16, M=24)
    set_training_precision(net, precision)
    seen = []
    net.g_s[0].register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    out = net.train()(torch.rand(2, 3, 64, 64), torch.tensor([0, 9]))
    assert seen == [torch.bfloat16 if precision == "bf16" else torch.float32]
    assert out["x_hat"].dtype == torch.float32
    assert all(lk.dtype == torch.float32 for lk in out["likelihoods"].values())
    net.eval()(torch.rand(1, 3, 64, 64), torch.tensor([3]))
    assert seen[-1] == torch.float32  # evaluation is always full precision

    run = tmp_path / "run"
    train_image(ImageTrainConfig(data=image_folder, out=run, steps=2, batch_size=2, crop=64, N=16, M=24,
                                 log_every=1, precision=precision))
    losses = [json.loads(line)["loss"] for line in (run / "train.log").read_text().splitlines() if "loss" in line]
    assert len(losses) == 2 and all(np.isfinite(losses))


def test_compile_keeps_state_dict_keys():
    """In-place compilation must not rename parameters (checkpoints and exports stay loadable)."""
    from aecodec.train.common import compile_transforms

    net = GainedMeanScaleHyperprior(N=16, M=24)
    keys = list(net.state_dict())
    compile_transforms(net)
    assert list(net.state_dict()) == keys


@pytest.mark.slow
def test_compiled_training_matches_eager(image_folder, tmp_path):
    """A compiled run (Inductor; needs a C++ compiler) trains like an eager one, with the same
    checkpoint keys, and exports loadable weights."""
    states, losses = {}, {}
    for compiled in (False, True):
        run = tmp_path / f"run-{compiled}"
        cfg = ImageTrainConfig(data=image_folder, out=run, steps=2, batch_size=2, crop=64, N=16, M=24, log_every=1,
                               compile=compiled)
        ckpt = train_image(cfg)
        states[compiled] = torch.load(ckpt, weights_only=True)["model"]
        lines = [json.loads(line) for line in (run / "train.log").read_text().splitlines()]
        assert lines[0]["compile"] is compiled
        losses[compiled] = [line["loss"] for line in lines if "loss" in line]
    assert list(states[True]) == list(states[False])
    # same seed, same crops and noise: the losses agree up to float reassociation
    assert np.allclose(losses[True], losses[False], rtol=1e-3), losses
    state = load_file(str(export_checkpoint(tmp_path / "run-True" / "checkpoint.pt", tmp_path / "w.safetensors")))
    GainedMeanScaleHyperprior(N=16, M=24).load_state_dict(state)


def test_unknown_precision_is_refused(image_folder, tmp_path):
    with pytest.raises(ValueError, match="precision"):
        train_image(ImageTrainConfig(data=image_folder, out=tmp_path / "run", steps=1, precision="fp8"))


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        train_image(ImageTrainConfig(data=tmp_path, out=tmp_path / "run", steps=1))


def test_ddp_two_cpu_processes(image_folder, tmp_path):
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "aecodec.cli",
           "train", "image", "--data", str(image_folder), "--out", str(run), "--steps", "2", "--batch-size", "2",
           "--crop", "64", "--N", "16", "--M", "24", "--device", "cpu"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [json.loads(line) for line in (run / "train.log").read_text().splitlines()]
    assert lines[0]["world_size"] == 2 and lines[-1]["step"] == 2
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2


def test_registry_and_manifest_agree():
    shipped = json.loads(registry.weights_path(registry.VARIANTS[0]).with_name("manifest.json").read_text())
    assert shipped == manifest()
    for v in registry.VARIANTS:
        assert registry.sha256_file(registry.weights_path(v)) == v.sha256
        assert len(v.sha256) == 64 and 0 <= v.id <= 65535


def test_tampered_weights_are_refused(tmp_path, monkeypatch):
    v = registry.VARIANTS[0]
    bad = tmp_path / v.weights
    data = bytearray(registry.weights_path(v).read_bytes())
    data[-1] ^= 1
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(registry, "weights_path", lambda _v: bad)
    monkeypatch.setattr(registry, "_cache", {})
    with pytest.raises(registry.ModelError, match="sha256"):
        registry.load(v.name)
