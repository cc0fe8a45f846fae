"""Large images without seams (SPEC §6.2): tiles bound memory but are synthesised through
overlapping windows of the whole image's latent, so the picture is the whole-image one."""

import numpy as np
import pytest
import torch

from aecodec import codec, container
from aecodec.bench.seams import seam_ratios, summarize
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
    parts = [codec.decode_tile_latent(loaded, p, tw, th, info.quality - 1, 16, n)
             for n, (p, (x, y, tw, th)) in enumerate(zip(tiles, grid))]
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
    assert reader.flags & container.FLAG_OVERLAPPED_TILES and reader.minor == 4
    decoded = np.asarray(codec.decompress_image(data))
    assert np.array_equal(decoded, whole_latent_decode(data))


def test_context_model_tiles_overlap_too():
    model = tiny_context_model()
    data = codec.compress_image(IMAGE[:128, :192], 2.5, model=model, tile=64)
    assert container.ContainerReader(data).header["image"]["overlap"] == model.net.synthesis_margin
    assert np.array_equal(np.asarray(codec.decompress_image(data, model=model)), whole_latent_decode(data, model))


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


@pytest.mark.parametrize("overlap", [0, 5, "2", True])
def test_bad_overlap_in_the_header_is_refused(overlap):
    data = codec.compress_image(IMAGE[:64, :192], 4, tile=64)
    header = container.ContainerReader(data).header
    header["image"]["overlap"] = overlap
    chunks = container.unpack(data)[1]
    buf = __import__("io").BytesIO()
    with container.ContainerWriter(buf, header, minor=4, flags=container.FLAG_OVERLAPPED_TILES) as w:
        for tag, payload in chunks:
            w.add_chunk(tag, payload)
    with pytest.raises(HeaderError):
        codec.decompress_image(buf.getvalue())


@pytest.mark.parametrize("rows", [64, 128])
def test_tiles_in_row_parts_decode_as_the_whole_latent_would(monkeypatch, rows):
    """Tiles taller than SYNTHESIS_ROWS are analysed and synthesised in parts (bounded memory);
    the picture is still the whole latent's."""
    from aecodec import image

    monkeypatch.setattr(image, "SYNTHESIS_ROWS", rows)
    data = codec.compress_image(IMAGE, 4, tile=192)
    assert np.array_equal(np.asarray(codec.decompress_image(data)), whole_latent_decode(data))
