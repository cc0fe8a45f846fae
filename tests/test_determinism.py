"""Determinism matrix: the same input gives the same bitstream and the same decode across torch
thread counts, coding threads, batch vs single CLI runs, and the Numba vs the reference coder.
(Separate processes: test_codec_image / test_codec_audio.)"""

import numpy as np
import pytest
from PIL import Image

from aecodec import audio, cli, codec, container, entropy
from aecodec.entropy import reference
from aecodec.testing import gliding_tone, smooth_image, tiny_audio_model, tiny_model, with_threads

IMAGE_MODEL = tiny_model()
AUDIO_MODEL = tiny_audio_model()
IMAGE = smooth_image(200, 140, seed=3)
SPEECH = gliding_tone(21.0, 16000, channels=2)  # three segments


SETTINGS = [(1, 1), (2, 1), (1, 2), (2, 2), (2, 4)]


@pytest.mark.parametrize("torch_threads,coding_threads", SETTINGS)
def test_image_bitstream_and_pixels_do_not_depend_on_threads(torch_threads, coding_threads):
    ref_data = with_threads(1, 1, lambda: codec.compress_image(IMAGE, 5, model=IMAGE_MODEL, tile=64))
    ref_pixels = np.asarray(with_threads(1, 1, lambda: codec.decompress_image(ref_data, model=IMAGE_MODEL)))
    data = with_threads(torch_threads, coding_threads,
                        lambda: codec.compress_image(IMAGE, 5, model=IMAGE_MODEL, tile=64))
    assert data == ref_data
    pixels = with_threads(torch_threads, coding_threads, lambda: codec.decompress_image(data, model=IMAGE_MODEL))
    assert np.asarray(pixels).tobytes() == ref_pixels.tobytes()


@pytest.mark.parametrize("torch_threads,coding_threads", SETTINGS)
def test_audio_bitstream_and_samples_do_not_depend_on_threads(torch_threads, coding_threads):
    ref_data = with_threads(1, 1, lambda: audio.compress(SPEECH, 16000, quality=2, model=AUDIO_MODEL))
    ref_samples = with_threads(1, 1, lambda: audio.decompress(ref_data, model=AUDIO_MODEL)[0])
    data = with_threads(torch_threads, coding_threads,
                        lambda: audio.compress(SPEECH, 16000, quality=2, model=AUDIO_MODEL))
    assert data == ref_data
    samples = with_threads(torch_threads, coding_threads, lambda: audio.decompress(data, model=AUDIO_MODEL)[0])
    assert samples.tobytes() == ref_samples.tobytes()


def test_numba_and_reference_coder_agree_on_real_image_tiles():
    data = codec.compress_image(IMAGE, 4, model=IMAGE_MODEL, tile=128)
    net = IMAGE_MODEL.net
    z_tables = net.z_tables()
    tiles = [p for tag, p in container.unpack(data)[1] if tag == "TILE"]
    assert len(tiles) == 4
    for i, (x, y, tw, th) in enumerate(codec.tile_grid(200, 140, 128)):
        z_len, y_len, _ = codec.TILE_HEAD.unpack_from(tiles[i])
        z_data = tiles[i][12 : 12 + z_len]
        idx = net.z_indexes((net.N, th // 64, tw // 64))
        fast = entropy.decode(z_data, idx, *z_tables, precision=16)
        slow = reference.decode(z_data, idx.ravel(), *z_tables, precision=16)
        assert fast.ravel().tolist() == slow
        assert reference.encode(fast.ravel(), idx.ravel(), *z_tables, precision=16) == z_data
        y_data = tiles[i][12 + z_len :]
        y_idx, _ = net.hyper_decode(fast)
        y_fast = entropy.decode(y_data, y_idx, *net.y_tables(), precision=16)
        assert y_fast.ravel().tolist() == reference.decode(y_data, y_idx.ravel(), *net.y_tables(), precision=16)


def test_cli_batch_equals_single_runs(tmp_path, capsys, monkeypatch):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(3):
        Image.fromarray(smooth_image(70 + 10 * i, 50, seed=i)).save(d / f"p{i}.png")
    assert cli.main(["encode", str(d), "-o", str(tmp_path / "batch/"), "-j", "2", "-q", "3"]) == 0
    for i in range(3):
        assert cli.main(["encode", str(d / f"p{i}.png"), "-o", str(tmp_path / f"single{i}.aec"), "-q", "3"]) == 0
        assert (tmp_path / "batch" / f"p{i}.aec").read_bytes() == (tmp_path / f"single{i}.aec").read_bytes()
    capsys.readouterr()
