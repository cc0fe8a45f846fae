"""Latent features (aecodec.image_features / audio_features / image_latents) with tiny random models."""

import io

import numpy as np
import pytest
from PIL import Image

import aecodec
from aecodec import analysis
from aecodec.testing import soft_image, tiny_score_audio_model, tiny_score_image_model


@pytest.fixture(scope="module")
def model():
    return tiny_score_image_model()


def jpeg(img, quality):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def test_features_fixed_length_unit_norm_deterministic(model):
    a = analysis.image_features(soft_image(200, 120), model=model)
    assert a.shape == (2 * 24,) and a.dtype == np.float32
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-6)
    assert np.array_equal(a, analysis.image_features(soft_image(200, 120), model=model))
    assert analysis.image_features(soft_image(70, 300), model=model).shape == a.shape  # any size, same length


def test_jpeg_copy_is_nearer_than_another_image(model):
    for seed in range(3):
        img = soft_image(192, 128, seed)
        other = soft_image(192, 128, seed + 5)
        f = analysis.image_features(img, model=model)
        near = analysis.image_features(jpeg(img, 75), model=model)
        far = analysis.image_features(other, model=model)
        assert f @ near > f @ far


def test_latents_shape_and_tiles(model):
    img = soft_image(300, 140)
    y = analysis.image_latents(img, model=model)
    assert y.shape == (24, 9, 19) and y.dtype == np.float32
    tiled = analysis.image_latents(img, model=model, tile=128)  # windows with 64 px of context
    np.testing.assert_allclose(tiled, y, atol=1e-4 * np.abs(y).max())
    np.testing.assert_allclose(analysis.image_features(img, model=model, tile=128),
                               analysis.image_features(img, model=model), atol=1e-5)


def test_top_level_names():
    for name in ("score_image", "score_audio", "image_features", "audio_features", "image_latents"):
        assert getattr(aecodec, name) is getattr(analysis, name)


def test_audio_features():
    m = tiny_score_audio_model()
    rate = 16000
    t = np.arange(rate * 2) / rate
    tone = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    noise = np.random.default_rng(0).normal(0, 0.3, len(t)).astype(np.float32)
    a = analysis.audio_features(tone, rate, model=m)
    assert a.shape == (2 * 8,) and np.linalg.norm(a) == pytest.approx(1.0, abs=1e-6)
    louder = analysis.audio_features(tone * 0.9 + 0.001 * noise, rate, model=m)
    assert a @ louder > a @ analysis.audio_features(noise, rate, model=m)
    # stereo: the mid signal's features
    stereo = analysis.audio_features(np.stack([tone, tone], 1), rate, model=m)
    np.testing.assert_allclose(stereo, a, atol=1e-6)
