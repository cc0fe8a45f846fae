"""Model files: `train image --export` writes one, `score --model FILE` loads it; bad files are typed errors."""

import json
import struct

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from aecodec import analysis, cli, modelfile, registry
from aecodec.errors import ModelError
from aecodec.modelfile import ModelFileError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny image model trained for 2 steps on generated images, exported by the CLI."""
    d = tmp_path_factory.mktemp("mf")
    (d / "imgs").mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)).save(d / "imgs" / f"{i}.png")
    out = d / "model.safetensors"
    argv = ["train", "image", "--data", str(d / "imgs"), "--out", str(d / "run"), "--steps", "2",
            "--batch-size", "2", "--crop", "64", "--N", "16", "--M", "24", "--threads", "1", "--export", str(out)]
    rc = cli.main(argv + ["--arch", "hyperprior"])
    if rc == 2:  # a CLI without --arch (one image architecture)
        rc = cli.main(argv)
    assert rc == 0 and out.is_file()
    return out


def rewrite(src, dst, *, metadata=None, tensors=None, drop=()):
    state = {k: v for k, v in load_file(str(src)).items() if k not in drop}
    meta = modelfile.read_metadata(src)["metadata"]
    if metadata is not None:
        meta = {k: v for k, v in {**meta, **metadata}.items() if v is not None}
    if tensors is not None:
        state.update(tensors)
    save_file(state, str(dst), metadata=meta)
    return dst


def test_export_writes_architecture_kwargs_and_version(trained):
    info = modelfile.read_metadata(trained)
    meta = info["metadata"]
    assert meta["format"] == "aecodec-model" and meta["format_version"] == "1"
    assert info["architecture"] == "GainedMeanScaleHyperprior" and info["modality"] == "image"
    assert json.loads(meta["kwargs"]) == {"N": 16, "M": 24, "levels": 10, "precision": 16}


def test_model_file_loads_and_scores_like_the_same_network(trained):
    loaded = modelfile.load_model_file(trained)
    assert loaded.weights_sha256 == registry.sha256_file(trained)
    assert loaded.variant.id == modelfile.USER_MODEL_ID and loaded.variant.name == "model"
    assert loaded.variant.qualities == (1.0, 10.0) and loaded.variant.default_quality == 6.0
    assert modelfile.load_model_file(trained) is loaded  # cached
    from aecodec.models.image import GainedMeanScaleHyperprior

    net = GainedMeanScaleHyperprior(N=16, M=24)
    net.load_state_dict(load_file(str(trained)))
    same = registry.from_network(net)
    img = np.random.default_rng(1).integers(0, 255, (70, 90, 3), dtype=np.uint8)
    a = analysis.score_image(img, 3, model=str(trained))
    b = analysis.score_image(img, 3, model=same)
    assert a.bits == pytest.approx(b.bits, rel=1e-9) and a.model == "model"
    assert analysis.image_features(img, model=trained).shape == (48,)


def test_cli_score_with_model_file(trained, tmp_path, capsys):
    img = tmp_path / "a.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(img)
    assert cli.main(["score", str(img), "--model", str(trained), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == "model" and doc["bits_per_pixel"] > 0


def test_audio_model_file_round_trip(tmp_path):
    from aecodec.models.audio import build_family

    torch.manual_seed(0)
    net = build_family("speech")
    net.update_tables()
    path = tmp_path / "speech.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path),
              metadata=modelfile.file_metadata(net, family="speech"))
    loaded = modelfile.load_model_file(path)
    assert loaded.variant.modality == "audio" and loaded.net.sample_rate == 16000
    s = analysis.score_audio(np.zeros(16000, np.float32), 16000, model=str(path))
    assert s.frame_rate == 50.0
    with pytest.raises(ModelError, match="audio model"):
        analysis.score_image(np.zeros((64, 64, 3), np.uint8), model=str(path))


def test_legacy_export_without_kwargs_loads(trained, tmp_path):
    old = rewrite(trained, tmp_path / "old.safetensors",
                  metadata={"format": None, "format_version": None, "kwargs": None, "modality": None})
    assert set(modelfile.read_metadata(old)["metadata"]) == {"architecture", "N", "M", "step"}
    assert modelfile.load_model_file(old).net.M == 24


def bad_files(trained, tmp_path):
    good = trained.read_bytes()
    (n,) = struct.unpack("<Q", good[:8])
    state = load_file(str(trained))
    cdf = state["gaussian_conditional._quantized_cdf"].clone()
    cdf[0, 1] = cdf[0, 2] + 5  # not increasing
    yield "missing", tmp_path / "nope.safetensors", "does not exist"
    for name, data, match in [
        ("text", b"hello, I am not a model", "not a safetensors"),
        ("short", b"\x01\x02", "shorter than 8 bytes"),
        ("huge-header", struct.pack("<Q", 1 << 40) + b"{}", "does not fit"),
        ("truncated", good[: 8 + n + 100], "do not load"),
        ("header-not-json", good[:8] + b"\xff" * n + good[8 + n :], "not JSON"),
    ]:
        p = tmp_path / f"{name}.safetensors"
        p.write_bytes(data)
        yield name, p, match
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(3)}, str(plain))
    yield "no-metadata", plain, "no aecodec metadata"
    for name, kw, match in [
        ("newer-version", {"format_version": "2"}, "format 2"),
        ("other-format", {"format": "something-else"}, "not an aecodec model"),
        ("unknown-arch", {"architecture": "Pickle"}, "unknown architecture"),
        ("kwargs-not-json", {"kwargs": "{"}, "not JSON"),
        ("kwargs-wrong-size", {"kwargs": json.dumps({"N": 16, "M": 32})}, "do not fit"),
        ("kwargs-bomb", {"kwargs": json.dumps({"N": 100000, "M": 100000})}, "do not fit|not allowed"),
        ("kwargs-unknown", {"kwargs": json.dumps({"N": 16, "M": 24, "colour": 3})}, "cannot build"),
        ("kwargs-inference", {"kwargs": json.dumps({"N": 16, "M": 24, "inference": False})}, "not allowed"),
    ]:
        yield name, rewrite(trained, tmp_path / f"{name}.safetensors", metadata=kw), match
    yield "nan", rewrite(trained, tmp_path / "nan.safetensors",
                         tensors={"g_a.0.weight": torch.full_like(state["g_a.0.weight"], float("nan"))}), "not finite"
    yield "bad-table", rewrite(trained, tmp_path / "table.safetensors",
                               tensors={"gaussian_conditional._quantized_cdf": cdf}), "coding tables"
    yield "missing-tensor", rewrite(trained, tmp_path / "short.safetensors", drop={"g_s.0.bias"}), "g_s.0.bias missing"
    yield "copy", rewrite(trained, tmp_path / "copy.safetensors"), None  # control: a faithful copy loads


def test_bad_model_files_are_typed_errors(trained, tmp_path, capsys):
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(img)
    for name, path, match in bad_files(trained, tmp_path):
        if match is None:
            modelfile.load_model_file(path)
            continue
        with pytest.raises(ModelFileError, match=match):
            modelfile.load_model_file(path)
        assert cli.main(["score", str(img), "--model", str(path)]) == 1, name
        err = capsys.readouterr().err
        assert err.startswith("aecodec: error: ") and "Traceback" not in err and len(err.splitlines()) == 1, (name, err)


def test_context_model_file_round_trip(tmp_path):
    """The channel-group context model (where this tree has it) writes and loads as a model file too."""
    context = pytest.importorskip("aecodec.models.context")
    torch.manual_seed(0)
    net = context.ContextHyperprior(N=16, M=24, groups=(8, 8, 8))
    net.update_tables()
    meta = modelfile.file_metadata(net)
    assert json.loads(meta["kwargs"])["groups"] == [8, 8, 8] and meta["architecture"] == "ContextHyperprior"
    path = tmp_path / "context.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path), metadata=meta)
    loaded = modelfile.load_model_file(path)
    img = np.random.default_rng(2).integers(0, 255, (64, 128, 3), dtype=np.uint8)
    same = registry.from_network(net)
    assert analysis.score_image(img, 2, model=loaded).bits == pytest.approx(
        analysis.score_image(img, 2, model=same).bits, rel=1e-9)
