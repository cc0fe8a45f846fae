"""--effort: encode-time latent refinement with the model frozen; same format, same decoder."""

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aecodec import cli, codec, effort, registry
from aecodec.errors import InputError
from aecodec.testing import smooth_image, tiny_context_model

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "kodim23.png"
PHOTO = np.asarray(Image.open(SAMPLE).convert("RGB"))[160:288, 256:384]  # 128 × 128


def rd_cost(image: np.ndarray, data: bytes, quality: float, model=None) -> float:
    """What the refinement minimises, measured on the real file: bpp + λ·MSE (8-bit scale)."""
    decoded = np.asarray(codec.decompress_image(data, model=model), np.float64)
    mse = float(np.mean((decoded - image) ** 2))
    loaded = model or registry.load(registry.DEFAULT_IMAGE_MODEL)
    return 8 * len(data) / (image.shape[0] * image.shape[1]) + effort.rd_lambda(loaded.net.lambdas, quality - 1) * mse


def test_effort_zero_is_the_plain_encoder():
    assert codec.compress_image(PHOTO, 5, effort=0) == codec.compress_image(PHOTO, 5)


@pytest.mark.parametrize("quality", [2, 5.5, 8])
def test_refinement_lowers_the_rate_distortion_cost_of_the_real_file(quality):
    plain = codec.compress_image(PHOTO, quality)
    refined = codec.compress_image(PHOTO, quality, effort=4)
    assert refined != plain
    assert rd_cost(PHOTO, refined, quality) < 0.995 * rd_cost(PHOTO, plain, quality)


def test_refined_files_decode_with_the_unchanged_decoder_deterministically():
    a = codec.compress_image(PHOTO, 4, effort=2)
    assert codec.compress_image(PHOTO, 4, effort=2) == a
    info = codec.read_info(a)
    assert info.quality == 4 and info.header["model"]["name"] == registry.DEFAULT_IMAGE_MODEL
    assert np.asarray(codec.decompress_image(a)).shape == PHOTO.shape


def test_effort_works_tile_by_tile_and_with_a_target_rate():
    image = smooth_image(128, 128, seed=4)
    data = codec.compress_image(image, 3, tile=64, effort=1)
    assert np.asarray(codec.decompress_image(data)).shape == image.shape
    target = codec.compress_image_to_target(image, 0.4, tile=64, effort=1, steps=3)
    assert target.bpp <= 0.4 and target.warning is None


def test_effort_works_with_a_context_model():
    model = tiny_context_model()
    image = smooth_image(64, 64, seed=2)
    data = codec.compress_image(image, 2.5, model=model, effort=2)
    assert np.asarray(codec.decompress_image(data, model=model)).shape == image.shape


@pytest.mark.parametrize("bad", [-1, 10, 2.5, True, "3"])
def test_bad_effort_is_refused(bad):
    with pytest.raises(InputError):
        codec.compress_image(PHOTO, 4, effort=bad)


def test_refinement_stops_when_cancelled():
    net = registry.load(registry.DEFAULT_IMAGE_MODEL).net
    x = torch.from_numpy(PHOTO.copy()).permute(2, 0, 1)[None].float() / 255
    y_q, z = net.scaled_latent(net.analyze_latent(x), 3.0)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(effort.Cancelled):
        effort.refine_latent(net, x, y_q, z, 3.0, 5, cancel=cancel)


def test_cli_effort(tmp_path, capsys):
    src = tmp_path / "in.png"
    Image.fromarray(PHOTO).save(src)
    assert cli.main(["encode", str(src), "-o", str(tmp_path / "x.aec"), "--effort", "12"]) == 2
    assert "--effort" in capsys.readouterr().err and not (tmp_path / "x.aec").exists()
    assert cli.main(["encode", str(src), "-o", str(tmp_path / "y.aec"), "--effort", "1", "-q", "3", "--quiet"]) == 0
    assert (tmp_path / "y.aec").read_bytes() == codec.compress_image(PHOTO, 3, effort=1)
    assert cli.main(["encode", "--help"]) == 0
    assert "--effort" in capsys.readouterr().out


def test_audio_effort_spends_fewer_bits_at_the_same_quality():
    """Speech (the shipped speech model): refined segments cost fewer bytes, decode with the
    unchanged decoder to a log-mel distance no worse, and encode deterministically."""
    from aecodec import audio
    from aecodec.dsp import log_mel_distance
    from aecodec.testing import speech_like

    x = speech_like(2.0, 16000, seed=3)
    plain = audio.compress(x, 16000, quality=2, model="audio-speech-v1", envelope_on=False)
    refined = audio.compress(x, 16000, quality=2, model="audio-speech-v1", envelope_on=False, effort=3)
    assert audio.compress(x, 16000, quality=2, model="audio-speech-v1", envelope_on=False, effort=3) == refined
    assert len(refined) < 0.97 * len(plain)
    distance = [log_mel_distance(x, audio.decompress(blob)[0].reshape(-1), 16000) for blob in (plain, refined)]
    assert distance[1] <= distance[0] + 0.01, distance
    with pytest.raises(InputError):
        audio.compress(x, 16000, quality=2, model="audio-speech-v1", effort=10)
