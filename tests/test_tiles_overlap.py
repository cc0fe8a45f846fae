"""Large images without seams (SPEC §6.2, §6.3): tiles bound memory but are analysed and
synthesised through overlapping windows of the whole image's latent and share its ẑ, so the
picture is the one the model gives when it codes the image in one piece."""

import numpy as np
import pytest
import torch

from aecodec import codec, container, image
from aecodec.coding import decode_z
from aecodec.bench.seams import seam_ratios, summarize, whole_image_decode
from aecodec.errors import HeaderError
from aecodec.testing import smooth_image, tiny_context_model

IMAGE = smooth_image(320, 200, seed=7)


def whole_latent_decode(data: bytes, model=None) -> np.ndarray:
    """Every tile's decoded latent assembled into one, synthesised in one piece."""
    reader = container.ContainerReader(data)
    info = codec.parse_image_header(reader.header)
    loaded = codec._model_for(info, model)
    grid = codec.tile_grid(info.width, info.height, info.tile)
    tiles = [p for tag, p in reader.chunks() if tag == "TILE"]
    net = loaded.net
    zmap = image.z_map(grid, [decode_z(net, p, (net.N, th // 64, tw // 64), 16) for p, (_, _, tw, th) in zip(tiles, grid)])
    parts = [codec.decode_tile_latent(loaded, p, tw, th, info.quality - 1, 16, n,
                                      image.z_window(zmap, box, info.hyper_overlap) if info.hyper_overlap else None)
             for n, (p, box) in enumerate(zip(tiles, grid)) for (_, _, tw, th) in [box]]
    x1, y1 = grid[-1][0] + grid[-1][2], grid[-1][1] + grid[-1][3]
    latent = torch.zeros(1, parts[0].shape[1], y1 // 16, x1 // 16)
    for part, (x, y, tw, th) in zip(parts, grid):
        latent[:, :, y // 16 : (y + th) // 16, x // 16 : (x + tw) // 16] = part
    return codec._synthesize(loaded.net, latent, info.quality - 1)[: info.height, : info.width]


@pytest.mark.parametrize("tile", [64, 128, 192])
@pytest.mark.parametrize("quality", [2, 6])
def test_overlapped_tiles_decode_as_the_whole_latent_would(tile, quality):
    data = codec.compress_image(IMAGE, quality, tile=tile)
    reader = container.ContainerReader(data)
    assert reader.flags & container.FLAG_OVERLAPPED_TILES and reader.flags & container.FLAG_SHARED_HYPER
    assert reader.minor == 5
    decoded = np.asarray(codec.decompress_image(data))
    assert np.array_equal(decoded, whole_latent_decode(data))


def test_context_model_tiles_overlap_too():
    model = tiny_context_model()
    data = codec.compress_image(IMAGE[:128, :192], 2.5, model=model, tile=64)
    assert container.ContainerReader(data).header["image"]["overlap"] == model.net.synthesis_margin
    assert np.array_equal(np.asarray(codec.decompress_image(data, model=model)), whole_latent_decode(data, model))


@pytest.mark.parametrize("tile", [64, 128])
@pytest.mark.parametrize("quality", [2, 6])
def test_tiled_decode_is_the_whole_image_coding(tile, quality):
    """For the hyperprior, tiles change nothing but the last bit of float arithmetic: the decode of
    a tiled file is the model's one-piece coding of the image (pixels within 1, nearly all
    identical), where independent tiles (0.2.0) differ at every border. (A context model's
    checkerboard and channel contexts stay inside its tile, SPEC §6.1.)"""
    model = codec.registry.load(codec.registry.DEFAULT_IMAGE_MODEL)
    image = smooth_image(320, 192, seed=3)
    whole = whole_image_decode(model, image, quality).astype(np.int16)
    tiled = np.asarray(codec.decompress_image(codec.compress_image(image, quality, model=model, tile=tile),
                                              model=model), np.int16)
    independent = np.asarray(codec.decompress_image(codec.compress_image(image, quality, model=model, tile=tile,
                                                                         independent_tiles=True), model=model), np.int16)
    assert np.abs(tiled - whole).max() <= 1 and np.mean(tiled == whole) > 0.999
    assert np.mean(independent == whole) < 0.99


@pytest.mark.parametrize("quality", [2, 6])
def test_tile_borders_do_not_show_on_a_smooth_image(quality):
    """The error jumps across tile borders no more than across the other 64-px grid lines, where
    independent tiles (as 0.2.0 wrote them) jump visibly more: the measure can fail."""
    image = smooth_image(512, 384, seed=5)
    kinds = {}
    for independent in (False, True):
        data = codec.compress_image(image, quality, tile=128, independent_tiles=independent)
        kinds[independent] = summarize(seam_ratios(image, np.asarray(codec.decompress_image(data)), 128))
    seamless, tiled = kinds[False], kinds[True]
    assert seamless["tile_border_median"] <= 1.15 * seamless["grid_median"]
    assert tiled["tile_border_median"] > 1.3 * tiled["grid_median"]
    assert seamless["tile_border_max"] < tiled["tile_border_max"]


def test_single_tile_images_keep_the_plain_layout():
    data = codec.compress_image(IMAGE, 4, tile=1024)
    reader = container.ContainerReader(data)
    assert not reader.flags & container.FLAG_OVERLAPPED_TILES and "overlap" not in reader.header["image"]
    assert reader.minor < 4


def test_independent_tiles_stay_readable_by_older_decoders():
    data = codec.compress_image(IMAGE, 4, tile=128, independent_tiles=True)
    reader = container.ContainerReader(data)
    assert reader.minor < 4 and reader.flags == container.FLAG_DEFLATE_HEADER
    assert np.asarray(codec.decompress_image(data)).shape == IMAGE.shape


def _rewritten(data: bytes, edit, flags: int | None = None) -> bytes:
    """The file with its header edited by ``edit(image object)`` (and other flags), chunks as they were."""
    reader = container.ContainerReader(data)
    header = reader.header
    edit(header["image"])
    buf = __import__("io").BytesIO()
    flags = reader.flags & ~container.FLAG_DEFLATE_HEADER if flags is None else flags
    with container.ContainerWriter(buf, header, minor=reader.minor, flags=flags) as w:
        for tag, payload in container.unpack(data)[1]:
            w.add_chunk(tag, payload)
    return buf.getvalue()


@pytest.mark.parametrize("overlap", [0, 5, "2", True])
def test_bad_overlap_in_the_header_is_refused(overlap):
    data = codec.compress_image(IMAGE[:64, :192], 4, tile=64)
    assert np.asarray(codec.decompress_image(_rewritten(data, lambda img: None))).shape == (64, 192, 3)
    with pytest.raises(HeaderError):
        codec.decompress_image(_rewritten(data, lambda img: img.update(overlap=overlap)))
    with pytest.raises(HeaderError):
        codec.decompress_image(_rewritten(data, lambda img: img.update(hyper_overlap=overlap)))


def test_shared_hyper_flag_and_key_go_together():
    """§6.3: the flag without the key, the key without the flag, or the key without §6.2's
    overlap are refused before anything is decoded."""
    data = codec.compress_image(IMAGE[:64, :192], 4, tile=64)
    both = container.FLAG_OVERLAPPED_TILES | container.FLAG_SHARED_HYPER
    for edit, flags in ((lambda img: img.pop("hyper_overlap"), both),
                        (lambda img: None, container.FLAG_OVERLAPPED_TILES),
                        (lambda img: img.pop("overlap"), container.FLAG_SHARED_HYPER)):
        with pytest.raises(HeaderError):
            codec.decompress_image(_rewritten(data, edit, flags))


@pytest.mark.parametrize("rows", [64, 128])
def test_tiles_in_row_parts_decode_as_the_whole_latent_would(monkeypatch, rows):
    """Tiles taller than SYNTHESIS_ROWS are analysed and synthesised in parts (bounded memory);
    the picture is still the whole latent's."""
    from aecodec import image

    monkeypatch.setattr(image, "SYNTHESIS_ROWS", rows)
    data = codec.compress_image(IMAGE, 4, tile=192)
    assert np.array_equal(np.asarray(codec.decompress_image(data)), whole_latent_decode(data))
