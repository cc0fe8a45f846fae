"""Image codec API with a seeded tiny random model: shapes, modes, metadata, tiles, determinism, desync."""

import io
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from aecodec import codec, container, registry
from aecodec.errors import CorruptStreamError, FormatError, HeaderError, InputError, ModelError
from aecodec.testing import smooth_image, tiny_model

@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.mark.parametrize("size", [(1, 1), (17, 33), (64, 64), (130, 70), (300, 5)])
def test_round_trip_sizes(model, size):
    w, h = size
    arr = smooth_image(w, h)
    data = codec.compress_image(arr, 5, model=model)
    out = codec.decompress_image(data, model=model)
    assert out.size == (w, h) and out.mode == "RGB"
    info = codec.read_info(data)
    assert (info.width, info.height, info.quality) == (w, h, 5.0)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "P", "PA-transparency", "I;16", "CMYK", "1"])
def test_modes(model, mode):
    rgb = Image.fromarray(smooth_image(40, 30))
    alpha = Image.fromarray(smooth_image(40, 30, seed=3, channels=1)[:, :, 0])
    if mode == "RGBA":
        im = rgb.copy()
        im.putalpha(alpha)
    elif mode == "LA":
        im = Image.merge("LA", (rgb.convert("L"), alpha))
    elif mode == "P":
        im = rgb.convert("P")
    elif mode == "PA-transparency":
        im = rgb.convert("P")
        im.info["transparency"] = 0
    elif mode == "I;16":
        im = Image.fromarray(np.asarray(rgb.convert("L")).astype(np.uint16) * 257)
    else:
        im = rgb.convert(mode)
    out = codec.decompress_image(codec.compress_image(im, 8, model=model), model=model)
    expected = {"P": "RGB", "PA-transparency": "RGBA", "CMYK": "RGB", "1": "L"}.get(mode, mode)
    assert out.mode == expected and out.size == im.size
    if expected in ("RGBA", "LA"):
        # alpha is lossless
        src_alpha = np.asarray(im.convert("RGBA").getchannel("A"))
        assert np.array_equal(np.asarray(out.getchannel("A")), src_alpha)


def test_icc_and_exif_are_carried(model):
    im = Image.fromarray(smooth_image(32, 32))
    exif = Image.Exif()
    exif[0x010F] = "aecodec test camera"
    im.info["icc_profile"] = b"fake icc profile bytes" * 3
    buf = io.BytesIO()
    im.save(buf, "PNG", icc_profile=im.info["icc_profile"], exif=exif.tobytes())
    src = Image.open(io.BytesIO(buf.getvalue()))
    out = codec.decompress_image(codec.compress_image(src, 3, model=model), model=model)
    assert out.info["icc_profile"] == im.info["icc_profile"]
    assert out.info["exif"] == src.info["exif"]  # carried byte for byte
    carried = Image.Exif()
    carried.load(out.info["exif"])
    assert carried[0x010F] == "aecodec test camera"
    assert out.getexif()[0x010F] == "aecodec test camera"


def test_tiles_are_chunks_and_cover_the_image(model):
    arr = smooth_image(200, 150)
    data = codec.compress_image(arr, 6, model=model, tile=64)
    header, chunks = container.unpack(data)
    assert header["image"]["tile"] == 64
    assert [t for t, _ in chunks].count("TILE") == 4 * 3
    out = np.asarray(codec.decompress_image(data, model=model))
    assert out.shape == arr.shape


def test_decode_is_deterministic_across_threads(model):
    data = codec.compress_image(smooth_image(96, 80), 7, model=model)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = np.asarray(codec.decompress_image(data, model=model))
        torch.set_num_threads(2)
        two = np.asarray(codec.decompress_image(data, model=model))
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(one, two)
    assert codec.compress_image(smooth_image(96, 80), 7, model=model) == data


@pytest.mark.parametrize("tile", [1024, 64])  # one tile; 2 × 2 tiles sharing ẑ (SPEC §6.3)
def test_decode_is_deterministic_across_processes(model, tmp_path, tile):
    data = codec.compress_image(smooth_image(70, 90), 2, model=model, tile=tile)
    src = tmp_path / "x.aec"
    src.write_bytes(data)
    script = textwrap.dedent(f"""
        import sys, numpy as np, torch
        from aecodec import codec
        from aecodec.testing import tiny_model
        torch.set_num_threads(1)
        out = codec.decompress_image(open({str(src)!r}, 'rb').read(), model=tiny_model())
        sys.stdout.buffer.write(np.asarray(out).tobytes())
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    here = np.asarray(codec.decompress_image(data, model=model))
    assert res.stdout == here.tobytes()


def test_desync_is_detected(model):
    """A decoder whose hyper-synthesis differs from the encoder's must fail, not draw garbage."""
    data = codec.compress_image(smooth_image(64, 64), 8, model=model)
    other = tiny_model()
    with torch.no_grad():
        other.net.h_s[-1].bias.add_(1.5)  # scales shift -> different table indexes
    other.net.__dict__.pop("_h_s64", None)
    other.weights_sha256 = model.weights_sha256  # pretend it is the same model
    with pytest.raises(CorruptStreamError):
        codec.decompress_image(data, model=other)


def test_wrong_model_is_refused(model):
    data = codec.compress_image(smooth_image(8, 8), 4, model=model)
    header, chunks = container.unpack(data)
    header["model"]["weights"] = "0123456789abcdef"
    with pytest.raises(ModelError):
        codec.decompress_image(container.pack(header, chunks), model=model)
    header["model"]["id"] = 4242
    with pytest.raises(ModelError):
        codec.decompress_image(container.pack(header, chunks))


@pytest.mark.parametrize(
    "edit",
    [
        lambda h: h["image"].update(width=0),
        lambda h: h["image"].update(width=70000),
        lambda h: h["image"].update(width=65535, height=65535),
        lambda h: h["image"].update(tile=100),
        lambda h: h["image"].update(mode="CMYK"),
        lambda h: h["image"].update(height="8"),
        lambda h: h.update(modality="audio"),
        lambda h: h.update(quality="nan"),
        lambda h: h.update(quality="99"),
        lambda h: h["coder"].update(name="other-coder"),
        lambda h: h.pop("image"),
    ],
)
def test_bad_headers_are_refused(model, edit):
    data = codec.compress_image(smooth_image(8, 8), 4, model=model)
    header, chunks = container.unpack(data)
    edit(header)
    with pytest.raises((HeaderError, FormatError)):
        codec.decompress_image(container.pack(header, chunks), model=model)


def test_missing_and_extra_tiles(model):
    data = codec.compress_image(smooth_image(130, 64), 4, model=model, tile=64)
    header, chunks = container.unpack(data)
    with pytest.raises(FormatError):
        codec.decompress_image(container.pack(header, chunks[:-1]), model=model)
    with pytest.raises(FormatError):
        codec.decompress_image(container.pack(header, chunks + chunks[:1]), model=model)


@pytest.mark.parametrize("quality", [0, 10.5, -1, float("nan")])
def test_bad_quality(model, quality):
    with pytest.raises(InputError):
        codec.compress_image(smooth_image(8, 8), quality, model=model)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4), np.float32), np.zeros((0, 4, 3), np.uint8)])
def test_bad_arrays(model, bad):
    with pytest.raises(InputError):
        codec.compress_image(bad, 4, model=model)


def test_from_network_identity_is_stable():
    assert tiny_model().weights_sha256 == tiny_model().weights_sha256
    assert registry.variant(8).name == registry.DEFAULT_IMAGE_MODEL
    with pytest.raises(ModelError, match="unknown model"):
        registry.variant("no-such-model")


@pytest.mark.parametrize("retired", [1, 4, 5, 6, 7, "image-hyperprior-gain-v2", "image-hyperprior-gain-v5"])
def test_retired_models_are_refused_by_name(retired):
    with pytest.raises(ModelError, match="retired"):
        registry.variant(retired)


def test_threads_option_and_the_file_verbs(model, tmp_path):
    """threads= changes nothing in the bytes; aecodec.image's write/read are compress/decompress on files."""
    from aecodec import image

    arr = smooth_image(150, 100)
    one = image.compress(arr, 4, model=model, tile=64, threads=1)
    assert image.compress(arr, 4, model=model, tile=64, threads=2) == one == codec.compress_image(arr, 4, model=model,
                                                                                                 tile=64)
    image.write(tmp_path / "a.aec", arr, 4, model=model, tile=64)
    assert (tmp_path / "a.aec").read_bytes() == one
    out = image.read(tmp_path / "a.aec", model=model, threads=1)
    assert np.array_equal(np.asarray(out), np.asarray(image.decompress(one, model=model, threads=2)))


def test_models_validate_their_coding_tables_once_at_load():
    from aecodec import entropy

    net = registry.load(registry.DEFAULT_IMAGE_MODEL).net
    z, y = net.z_tables(), net.y_tables()
    assert isinstance(z, entropy.Tables) and isinstance(y, entropy.Tables)
    assert net.z_tables() is z and net.y_tables() is y  # built at load, not per tile
    assert y.precision == net.gaussian_conditional.entropy_coder_precision
    fresh = tiny_model().net
    before = fresh.y_tables()
    fresh.load_state_dict(fresh.state_dict())  # new weights: the tables are rebuilt from them
    assert fresh.y_tables() is not before
    assert all(np.array_equal(a, b) for a, b in zip(fresh.y_tables(), before))
