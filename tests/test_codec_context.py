"""The context model (image v7): coding order, stream decoding, determinism, desync detection,
sub-pixel upsampling and function-preserving growth from the plain hyperprior, training."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from aecodec import codec, entropy, registry
from aecodec.errors import CorruptStreamError
from aecodec.models.context import (
    ContextHyperprior,
    anchor_mask,
    group_bounds,
    grow_from_hyperprior,
    subpixel_from_deconv,
)
from aecodec.models.image import GainedMeanScaleHyperprior
from aecodec.testing import smooth_image, tiny_context_model, with_threads
from aecodec.train.export import export_checkpoint
from aecodec.train.image import ImageTrainConfig, train_image


@pytest.fixture(scope="module")
def model():
    return tiny_context_model()


@pytest.mark.parametrize("size,tile", [((1, 1), 1024), ((130, 70), 1024), ((200, 140), 128), ((64, 300), 64)])
def test_round_trip(model, size, tile):
    w, h = size
    data = codec.compress_image(smooth_image(w, h), 3, model=model, tile=tile)
    out = codec.decompress_image(data, model=model)
    assert out.size == (w, h) and out.mode == "RGB"


def test_the_context_changes_the_parameters(model):
    """Each pass's scale indexes depend on what was decoded before: coding with the context nets
    switched off gives other indexes (so the tests below exercise a real context)."""
    net = model.net
    x = torch.from_numpy(smooth_image(128, 128)).permute(2, 0, 1)[None].float() / 255
    z, y, idx = net.analyze(x, 2.0)
    silent = tiny_context_model()
    with torch.no_grad():
        for ctx in silent.net.context:
            ctx.aggregate[-1].weight.zero_()
            ctx.aggregate[-1].bias.zero_()
    silent.net.__dict__.pop("_context64", None)
    z2, y2, idx2 = silent.net.analyze(x, 2.0)
    assert (z == z2).all() and not (idx == idx2).all()


def test_coding_order_is_a_permutation_by_group_then_pass(model):
    net = model.net
    order = net.y_order((net.M, 5, 6))
    assert sorted(order.tolist()) == list(range(net.M * 30))
    mask = anchor_mask(5, 6)
    s, e = group_bounds(net.groups)[0]
    n_anchor = (e - s) * mask.sum()
    first = np.unravel_index(order[:n_anchor], (net.M, 5, 6))
    assert (first[0] < e).all() and mask[first[1], first[2]].all()


@pytest.mark.parametrize("torch_threads,coding_threads", [(2, 1), (1, 2), (2, 4)])
def test_bitstream_and_pixels_do_not_depend_on_threads(model, torch_threads, coding_threads):
    image = smooth_image(200, 140, seed=3)
    ref = with_threads(1, 1, lambda: codec.compress_image(image, 2.5, model=model, tile=64))
    ref_pixels = np.asarray(with_threads(1, 1, lambda: codec.decompress_image(ref, model=model)))
    data = with_threads(torch_threads, coding_threads, lambda: codec.compress_image(image, 2.5, model=model, tile=64))
    assert data == ref
    pixels = with_threads(torch_threads, coding_threads, lambda: codec.decompress_image(data, model=model))
    assert np.asarray(pixels).tobytes() == ref_pixels.tobytes()


def test_another_process_decodes_the_same_pixels(model, tmp_path):
    data = codec.compress_image(smooth_image(150, 100, seed=5), 3, model=model, tile=64)
    (tmp_path / "a.aec").write_bytes(data)
    here = np.asarray(codec.decompress_image(data, model=model))
    code = ("import sys, numpy as np; from aecodec import codec; from aecodec.testing import tiny_context_model; "
            "m = tiny_context_model(); d = open(sys.argv[1], 'rb').read(); "
            "sys.stdout.buffer.write(np.asarray(codec.decompress_image(d, model=m)).tobytes())")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.aec")], capture_output=True, check=True)
    assert out.stdout == here.tobytes()


def test_a_desynchronised_decoder_says_so(model):
    """A decoder whose context networks differ in the last bits computes other indexes for some
    pass: the stream no longer decodes to the encoder's symbols, and the CRC (or the coder) says so."""
    image = smooth_image(128, 128, seed=7)
    data = codec.compress_image(image, 3, model=model)
    other = tiny_context_model()
    with torch.no_grad():
        other.net.context[2].aggregate[-1].bias.add_(0.05)
    other.net.__dict__.pop("_context64", None)
    payload = next(p for tag, p in codec.container.ContainerReader(data).chunks() if tag == "TILE")
    with pytest.raises(CorruptStreamError):
        codec.decode_tile(other, payload, 128, 128, 2.0, 16, 0)


def test_stream_decoder_in_runs_equals_one_decode():
    rng = np.random.default_rng(0)
    cdfs = np.array([[0, 1000, 40000, 65000, 65536, 0], [0, 30000, 60000, 65536, 0, 0]], np.int32)
    lengths, offsets = np.array([5, 4], np.int32), np.array([-1, 0], np.int32)
    idx = rng.integers(0, 2, 5000).astype(np.int32)
    sym = rng.integers(-40, 40, 5000).astype(np.int32)  # escapes included
    data = entropy.encode(sym, idx, cdfs, lengths, offsets)
    stream = entropy.StreamDecoder(data, cdfs, lengths, offsets)
    cuts = [0, 1, 1, 777, 4000, 5000]
    parts = [stream.decode(idx[a:b]) for a, b in zip(cuts, cuts[1:])]
    stream.finish()
    assert (np.concatenate(parts) == sym).all()
    extra = entropy.StreamDecoder(data + b"\x00", cdfs, lengths, offsets)
    extra.decode(idx)
    with pytest.raises(CorruptStreamError):
        extra.finish()
    short = entropy.StreamDecoder(data[:-3], cdfs, lengths, offsets)
    with pytest.raises(entropy.TruncatedError if hasattr(entropy, "TruncatedError") else Exception):
        short.decode(idx)


def test_subpixel_equals_transposed_convolution():
    torch.manual_seed(0)
    deconv = torch.nn.ConvTranspose2d(6, 5, 5, stride=2, padding=2, output_padding=1)
    weight, bias = subpixel_from_deconv(deconv.weight.detach(), deconv.bias.detach())
    x = torch.randn(2, 6, 7, 9)
    sub = torch.nn.functional.pixel_shuffle(torch.nn.functional.conv2d(x, weight, bias, padding=1), 2)
    assert torch.allclose(sub, deconv(x), atol=1e-5)


def test_growth_from_the_hyperprior_preserves_the_function():
    """v6 -> v7 growth: the same reconstruction and the same bits for the old latent channels;
    the new channels cost almost nothing."""
    torch.manual_seed(3)
    old = GainedMeanScaleHyperprior(N=16, M=24, levels=3).eval()
    for p in old.parameters():  # away from the init, so a wrong slice shows
        p.data.add_(torch.randn_like(p) * 0.01)
    old.gain.data *= 30.0  # latents that cost bits
    new = ContextHyperprior(N=24, M=32, levels=4, groups=(4, 4, 8, 8, 8))
    order = np.random.default_rng(0).permutation(24)
    new.load_state_dict(grow_from_hyperprior(old.state_dict(), new.state_dict(), order))
    new.eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a, b = old(x, torch.tensor([1.0])), new(x, torch.tensor([1.0]))
    assert torch.allclose(a["x_hat"], b["x_hat"], atol=1e-4)
    bits = lambda lk: float(-torch.log2(lk).sum())  # noqa: E731
    assert abs(bits(a["likelihoods"]["z"]) - bits(b["likelihoods"]["z"][:, :16])) < 1e-3
    old_bits = bits(a["likelihoods"]["y"])
    assert abs(bits(b["likelihoods"]["y"][:, :24]) - old_bits) < 1e-3 * old_bits
    assert bits(b["likelihoods"]["y"][:, 24:]) < 0.02 * old_bits


@pytest.fixture
def image_folder(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(3):
        Image.fromarray(smooth_image(96, 80, seed=i)).save(d / f"{i}.png")
    return d


@pytest.mark.parametrize("context_only", [False, True])
def test_training_grows_from_hyperprior_weights_and_exports(image_folder, tmp_path, context_only):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    v6 = GainedMeanScaleHyperprior(N=16, M=24, levels=3)
    v6.update_tables()
    save_file({k: v.contiguous() for k, v in v6.state_dict().items()}, str(tmp_path / "v6.safetensors"))
    run = tmp_path / "run"
    cfg = ImageTrainConfig(data=[image_folder], out=run, steps=2, batch_size=2, crop=64, N=16, M=24, log_every=1,
                           arch="context", context_only=context_only, init=tmp_path / "v6.safetensors")
    ckpt = train_image(cfg)
    lines = [json.loads(line) for line in (run / "train.log").read_text().splitlines()]
    assert lines[0]["arch"] == "context" and [line["step"] for line in lines if "loss" in line] == [1, 2]
    assert all(np.isfinite(line["loss"]) for line in lines if "loss" in line)
    state = torch.load(ckpt, weights_only=True)["model"]
    grown_last, _ = subpixel_from_deconv(v6.g_s[6].weight.detach(), v6.g_s[6].bias.detach())
    moved = not torch.allclose(state["g_s.6.0.weight"][:12, :16], grown_last)
    assert moved != context_only  # an context-only run keeps the transforms as grown
    assert (run / "latents.npy").exists() == context_only
    exported = export_checkpoint(ckpt, tmp_path / "v7.safetensors")
    net = ContextHyperprior(N=16, M=24, inference=True)
    from safetensors.torch import load_file

    net.load_state_dict(load_file(str(exported)))
    loaded = registry.from_network(net)
    data = codec.compress_image(smooth_image(70, 50), 12, model=loaded)
    assert codec.decompress_image(data, model=loaded).size == (70, 50)


@pytest.mark.slow
def test_device_run_trains_v7_from_v6_and_unpacks(tmp_path, monkeypatch):
    """The one-command GPU run, on CPU for two steps: v6 grown, trained, written as shards that
    unpack into weights a new run can start from."""
    from safetensors.torch import load_file

    from aecodec.train import device

    monkeypatch.chdir(tmp_path)
    crops = tmp_path / ".gpu" / "crops"
    crops.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(smooth_image(256, 256, seed=i)).save(crops / f"{i}.jpg", quality=95)
    out = device.run(minutes=5, out=tmp_path / "out", steps=2, batch_size=1, device="cpu")
    assert sorted(p.name for p in out.glob("model-*.safetensors")) and (out / "train.log").exists()
    assert all(p.stat().st_size <= device.SHARD_BYTES + (1 << 20) for p in out.glob("model-*.safetensors"))
    init = device.unpack(out, tmp_path / "unpacked")
    net = ContextHyperprior()
    net.load_state_dict(load_file(str(init)))


def test_context_snapshot_rebuilds_the_run_from_v6(tmp_path):
    """A context-only run's snapshot (context nets + latent order, a few MB) rebuilds the same
    model from the shipped v6 weights under the run's seed."""
    from safetensors.torch import load_file

    from aecodec.train.image import _from_snapshot, write_context_snapshot

    v6 = load_file(str(registry.weights_path(registry.variant("image-hyperprior-gain-v6"))))
    torch.manual_seed(0)
    net = ContextHyperprior()
    order = np.random.default_rng(1).permutation(160)
    state = grow_from_hyperprior(v6, net.state_dict(), order)
    for key in state:
        if key.startswith("context.") and state[key].is_floating_point():
            state[key] = state[key] + 0.01 * torch.randn_like(state[key])
    torch.save({"model": state, "step": 7}, tmp_path / "checkpoint.pt")
    snapshot = write_context_snapshot(tmp_path / "checkpoint.pt", tmp_path / "snap.safetensors")
    assert snapshot.stat().st_size < 4 << 20
    torch.manual_seed(0)
    rebuilt = _from_snapshot(load_file(str(snapshot)), ContextHyperprior())
    for key, value in state.items():
        if key.startswith("context."):
            assert torch.allclose(rebuilt[key], value, atol=1e-3, rtol=1e-3), key
        else:
            assert torch.equal(rebuilt[key], value), key


def test_the_y_coding_is_the_models_y_codec(model):
    """The entropy model is composed: the hyperprior (z) holds a y codec; the context model's
    codec owns the context nets (weights' context.*), the plain model's is parameter-free."""
    from aecodec.models.latent_codecs import ChannelGroupCheckerboardY, MeanScaleY

    net = model.net
    assert isinstance(net.y_codec, ChannelGroupCheckerboardY) and net.bitstream_minor == 3
    codec_keys = {"context." + k for k in net.y_codec.state_dict()}
    assert codec_keys == {k for k in net.state_dict() if k.startswith("context.")} and codec_keys
    plain = registry.load(registry.DEFAULT_IMAGE_MODEL).net
    assert isinstance(plain.y_codec, MeanScaleY) and plain.bitstream_minor == 0
    assert not any(k.startswith(("y_codec", "context")) for k in plain.state_dict())
    y = plain.analyze_latent(torch.from_numpy(smooth_image(64, 64)).permute(2, 0, 1)[None].float() / 255)
    y_q, z = plain.scaled_latent(y, 4.0)
    _, y_sym, idx = plain.quantize(y_q, z, 4.0)
    want_idx, means = plain.hyper_decode(z)
    assert np.array_equal(y_sym, torch.round(y_q.double() - means).to(torch.int32)[0].numpy())
    assert np.array_equal(idx, want_idx)
