"""Audio codec: round trips, segments, determinism and desync detection with a tiny seeded model."""

import io
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from aecodec import audio, container
from aecodec.errors import CorruptStreamError, FormatError, HeaderError, InputError, ModelError
from aecodec.testing import gliding_tone, tiny_audio_model


MODEL = tiny_audio_model()


@pytest.mark.parametrize("seconds,rate,channels", [
    (3.0, 16000, 1), (1.3, 44100, 2), (0.5, 8000, 1), (0.3, 96000, 1), (0.0, 16000, 1), (0.0001, 16000, 2),
])
def test_round_trip_shapes_and_rates(seconds, rate, channels):
    x = gliding_tone(seconds, rate, channels)
    blob = audio.compress(x, rate, quality=2, model=MODEL)
    y, r = audio.decompress(blob, model=MODEL)
    assert r == rate
    assert y.shape == (len(x), channels) and y.dtype == np.float32
    assert np.all(np.abs(y) <= 1.0)
    info = audio.read_info(blob)
    assert (info.sample_rate, info.channels, info.frames) == (rate, channels, len(x))


def test_int16_input_and_model_rate_output():
    x = (gliding_tone(1.0, 22050) * 32767).astype(np.int16)
    blob = audio.compress(x, 22050, quality=1, model=MODEL)
    assert audio.read_info(blob).subtype == "PCM_16"
    y, r = audio.decompress(blob, model=MODEL, sample_rate=16000)
    assert r == 16000 and len(y) == -(-len(x) * 16000 // 22050)


def test_long_input_is_cut_into_overlapping_segments_and_decodes_from_any_segment():
    x = gliding_tone(23.0, 16000)
    blob = audio.compress(x, 16000, quality=2, model=MODEL)
    chunks = [tag for tag, _ in container.unpack(blob)[1]]
    assert chunks.count("SEGM") == 3
    full, _ = audio.decompress(blob, model=MODEL)
    dec = audio.decode(blob, model=MODEL, start_segment=2)
    tail = np.concatenate(list(dec.blocks))
    start = audio.segment_start(dec.info, 2, 16000)
    assert len(tail) == len(x) - start
    # away from the cross-fade, the independently decoded segment equals the full decode
    np.testing.assert_array_equal(tail[2000:], full[start + 2000 :])


def test_segment_boundaries_are_smooth():
    """The cross-fade hides segment edges: the error near a boundary is not much worse than elsewhere."""
    x = gliding_tone(20.5, 16000)
    y, _ = audio.decompress(audio.compress(x, 16000, quality=3, model=MODEL), model=MODEL)
    err = np.abs(y[:, 0] - x)
    boundary = err[160000 - 640 : 160000 + 640].mean()
    assert boundary < 3 * err[20000:150000].mean() + 1e-3


def test_encoding_is_deterministic_and_decoding_is_thread_independent():
    x = gliding_tone(2.0, 16000, 2)
    a = audio.compress(x, 16000, quality=2.5, model=MODEL)
    assert a == audio.compress(x, 16000, quality=2.5, model=MODEL)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        y1, _ = audio.decompress(a, model=MODEL)
        torch.set_num_threads(2)
        y2, _ = audio.decompress(a, model=MODEL)
    finally:
        torch.set_num_threads(threads)
    assert y1.tobytes() == y2.tobytes()


def test_decoding_in_another_process_gives_the_same_samples(tmp_path):
    x = gliding_tone(1.5, 16000)
    blob = audio.compress(x, 16000, quality=2, model=MODEL)
    (tmp_path / "a.aec").write_bytes(blob)
    y, _ = audio.decompress(blob, model=MODEL)
    code = (
        "import sys, numpy as np\n"
        "from aecodec.testing import tiny_audio_model\nMODEL = tiny_audio_model()\n"
        "from aecodec import audio\n"
        f"y, _ = audio.decompress(open({str(tmp_path / 'a.aec')!r}, 'rb').read(), model=MODEL)\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, y)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"OMP_NUM_THREADS": "1", "PATH": ""}, cwd=".")
    assert np.load(tmp_path / "y.npy").tobytes() == y.tobytes()


def test_higher_quality_costs_more_and_is_closer():
    x = gliding_tone(3.0, 16000)
    sizes, errors = [], []
    for q in (1, 2, 3):
        blob = audio.compress(x, 16000, quality=q, model=MODEL)
        y, _ = audio.decompress(blob, model=MODEL)
        sizes.append(len(blob))
        errors.append(float(np.mean((y[:, 0] - x) ** 2)))
    assert sizes[0] < sizes[1] < sizes[2]


def _mutate_segment(blob: bytes, mutate) -> bytes:
    header, chunks = container.unpack(blob)
    chunks = [(tag, mutate(payload) if tag == "SEGM" else payload) for tag, payload in chunks]
    return container.pack(header, chunks)


def test_tampered_symbols_with_valid_chunk_crc_are_detected():
    blob = audio.compress(gliding_tone(1.0, 16000), 16000, quality=2, model=MODEL)

    def flip(payload):
        p = bytearray(payload)
        p[len(p) // 2] ^= 0x5A  # inside the y data; the last bytes are coder flush and may not matter
        return bytes(p)

    with pytest.raises((CorruptStreamError, FormatError)):
        audio.decompress(_mutate_segment(blob, flip), model=MODEL)


def test_moved_segment_is_detected():
    blob = audio.compress(gliding_tone(21.0, 16000), 16000, quality=1, model=MODEL)
    header, chunks = container.unpack(blob)
    first, second = [i for i, (tag, _) in enumerate(chunks) if tag == "SEGM"][:2]
    chunks[first], chunks[second] = chunks[second], chunks[first]
    with pytest.raises(FormatError, match="segment"):
        audio.decompress(container.pack(header, chunks), model=MODEL)


def test_another_models_file_is_refused():
    blob = audio.compress(gliding_tone(0.5, 16000), 16000, quality=1, model=MODEL)
    with pytest.raises(ModelError):
        audio.decompress(blob, model=tiny_audio_model(seed=1))


@pytest.mark.parametrize("field,value", [
    ("sample_rate", 0), ("sample_rate", 10**9), ("channels", 6), ("frames", -1), ("frames", 2**40),
    ("segment", 0), ("overlap", 10**8), ("coding", "mono-side"), ("model_rate", 8000), ("segment", 1280 * 7 + 1),
])
def test_bad_header_fields_are_typed_errors(field, value):
    blob = audio.compress(gliding_tone(0.5, 16000), 16000, quality=1, model=MODEL)
    header, chunks = container.unpack(blob)
    header["audio"][field] = value
    with pytest.raises((HeaderError, FormatError, InputError)):
        audio.decompress(container.pack(header, chunks), model=MODEL)


@pytest.mark.parametrize("data,rate", [
    (np.full((100, 1), np.nan, np.float32), 16000), (np.zeros((100, 6), np.float32), 16000),
    (np.zeros((100, 1), np.float32), 100), (np.zeros((2, 2, 2), np.float32), 16000),
    (np.array([["a"]]), 16000),
])
def test_bad_arrays_are_input_errors(data, rate):
    with pytest.raises(InputError):
        audio.compress(data, rate, model=MODEL)


def test_soundfile_shaped_read_write(tmp_path):
    x = gliding_tone(1.0, 16000, 2)
    audio.write(tmp_path / "a.aec", x, 16000, quality=2, model=MODEL)
    with pytest.raises(ModelError):  # the file names the test model, which the registry does not know
        audio.read(tmp_path / "a.aec")
    y, rate = audio.decompress((tmp_path / "a.aec").read_bytes(), model=MODEL)
    assert rate == 16000 and y.shape == x.shape


def test_tags_are_carried(tmp_path):
    from aecodec.io.audio import open_audio

    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", 16000, 1, format="FLAC") as f:
        f.title, f.artist = "A title", "Somebody"
        f.write(gliding_tone(0.5, 16000))
    source = open_audio(buf.getvalue())
    assert source.tags == {"title": "A title", "artist": "Somebody"}
    out = io.BytesIO()
    audio.encode(source, out, quality=1, model=MODEL)
    assert audio.decode(out.getvalue(), model=MODEL).tags == {"title": "A title", "artist": "Somebody"}


def test_segment_payload_layout():
    blob = audio.compress(gliding_tone(0.5, 16000, 2), 16000, quality=1, model=MODEL)
    (_, payload), = [(t, p) for t, p in container.unpack(blob)[1] if t == "SEGM"]
    (index,) = struct.unpack_from("<I", payload)
    (n0,) = struct.unpack_from("<I", payload, 4)
    (n1,) = struct.unpack_from("<I", payload, 8 + n0)
    assert index == 0 and 4 + 4 + n0 + 4 + n1 == len(payload)


def test_segment_length_is_an_option():
    x = gliding_tone(1.2, 16000)
    blob = audio.compress(x, 16000, quality=2, model=MODEL, segment_seconds=0.5, threads=1)
    assert audio.read_info(blob).segment == 7680  # 0.5 s rounded to whole alignments (1,280 samples)
    y, _ = audio.decompress(blob, model=MODEL, threads=2)
    assert y.shape == (len(x), 1)
    assert audio.compress(x, 16000, quality=2, model=MODEL, segment_seconds=0.5, threads=2) == blob
    for bad in (0, -1.0, float("nan"), 60.0):
        with pytest.raises(InputError):
            audio.compress(x, 16000, quality=2, model=MODEL, segment_seconds=bad)
