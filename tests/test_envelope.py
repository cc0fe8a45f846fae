"""Band-energy envelope aec-env-v1: exact level round trips, perfect reconstruction, rescaling,
typed errors on damaged data; and its use in audio files (ENVL chunks)."""

import numpy as np
import pytest

from aecodec import audio, container, entropy, envelope
from aecodec.errors import FormatError

from aecodec.testing import gliding_tone, tiny_audio_model

MODEL = tiny_audio_model()


RATES = sorted(envelope.LAYOUTS)


def signal(kind: str, length: int = 5120 * 3, seed: int = 0, rate: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length) / rate
    if kind == "silence":
        return np.zeros(length, np.float32)
    if kind == "sine":
        return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    if kind == "loud":
        return np.clip(rng.standard_normal(length) * 3, -1, 1).astype(np.float32)
    if kind == "bursts":  # noise switched on and off every 100 ms: an envelope that moves
        return (rng.standard_normal(length) * (np.floor(t * 10) % 2) * 0.2).astype(np.float32)
    return gliding_tone(length / rate, rate)


def test_table_is_valid():
    entropy.check_tables(*envelope._table(), envelope.PRECISION)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("kind", ["silence", "sine", "loud", "bursts", "speech"])
@pytest.mark.parametrize("length", [15360, 161280])
def test_levels_round_trip_exactly(kind, length, rate):
    x = signal(kind, length * rate // 16000, rate=rate)
    q = envelope.quantize(envelope.band_energies(x, rate))
    assert q.shape == (envelope.BANDS, envelope.tiles(len(x), rate))
    assert np.array_equal(envelope.decode(envelope.encode(x, rate), len(x), rate), q)


@pytest.mark.parametrize("rate", RATES)
def test_stft_reconstructs_exactly(rate):
    lay = envelope.layout(rate)
    x = signal("speech", rate=rate).astype(np.float64)
    np.testing.assert_allclose(envelope._istft(envelope._stft(x, lay), len(x), lay), x, atol=1e-12)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("kind", ["bursts", "speech"])
@pytest.mark.parametrize("scale", [0.25, 2.0])
def test_apply_restores_band_energies(kind, scale, rate):
    """A decoder output at the wrong level is brought back to the sent energies (4 dB steps)."""
    x = signal(kind, 5120 * 9, rate=rate)
    q = envelope.decode(envelope.encode(x, rate), len(x), rate)
    target = envelope.band_energies(x, rate)
    live = target > 1e-6 * target.max()  # tiles with something in them
    err_db = lambda y: np.abs(10 * np.log10(envelope.band_energies(y, rate)[live] / target[live]))
    before, after = err_db(scale * x), err_db(envelope.apply(scale * x, q, rate))
    assert np.median(before) > 5 and np.median(after) < 1.5


def test_apply_never_boosts_past_its_bound():
    x = signal("loud")
    q = envelope.decode(envelope.encode(x, 16000), len(x), 16000)
    y = envelope.apply(1e-6 * x, q, 16000)  # 120 dB too quiet
    assert np.abs(y).max() <= 1e-6 * np.abs(x).max() * 10 ** (envelope.GAIN_DB_MAX / 20) * 1.5


def test_damaged_data_is_a_typed_error():
    x = signal("speech")
    data = envelope.encode(x, 16000)
    for cut in range(len(data)):
        with pytest.raises(FormatError):
            envelope.decode(data[:cut], len(x), 16000)
    rng = np.random.default_rng(1)
    for _ in range(50):
        junk = rng.integers(0, 256, rng.integers(1, 200), dtype=np.uint8).tobytes()
        try:
            q = envelope.decode(junk, len(x), 16000)
        except FormatError:
            continue
        assert q.min() >= envelope.Q_MIN and q.max() <= envelope.Q_MAX


def test_out_of_range_levels_are_refused():
    n = envelope.tiles(5120, 16000)
    r = np.zeros((n, envelope.BANDS), np.int64)
    r[0, 0] = envelope.Q_MAX - envelope.Q_START + 1  # one level past the top
    data = entropy.encode(r.ravel(), np.zeros(r.size, np.int32), *envelope._table(), envelope.PRECISION)
    with pytest.raises(FormatError, match="range"):
        envelope.decode(data, 5120, 16000)


# --- in audio files -------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2])
def test_speech_files_carry_an_envelope_chunk_per_segment(channels):
    x = gliding_tone(12.0, 16000, channels)
    blob = audio.compress(x, 16000, quality=2, model=MODEL)
    reader = container.ContainerReader(blob)
    assert reader.minor == 2 and reader.header["audio"]["envelope"] == envelope.NAME
    assert [c.tag for c in reader.index()] == ["SEGM", "ENVL", "SEGM", "ENVL"]
    plain = audio.compress(x, 16000, quality=2, model=MODEL, envelope_on=False)
    assert "envelope" not in container.ContainerReader(plain).header["audio"]
    assert len(plain) < len(blob)
    y, _ = audio.decompress(blob, model=MODEL)
    assert y.shape == (len(x), channels)


def test_envelope_brings_the_decoded_band_energies_closer():
    """With the (untrained) tiny model the output level is far off; the envelope corrects it."""
    x = gliding_tone(3.0, 16000)
    n = len(x) // 5120 * 5120

    def band_error(blob):
        y, _ = audio.decompress(blob, model=MODEL)
        e_x, e_y = envelope.band_energies(x[:n], 16000), envelope.band_energies(y[:n, 0], 16000)
        live = e_x > 1e-6 * e_x.max()
        return np.median(np.abs(10 * np.log10(e_y[live] / e_x[live])))

    with_env = band_error(audio.compress(x, 16000, quality=2, model=MODEL))
    without = band_error(audio.compress(x, 16000, quality=2, model=MODEL, envelope_on=False))
    assert with_env < 2.0 and with_env < without / 2


def test_envelope_is_refused_for_models_at_other_rates():
    from aecodec.errors import InputError

    other = tiny_audio_model(24000)
    with pytest.raises(InputError, match="model rates"):
        audio.compress(gliding_tone(0.5, 24000), 24000, quality=1, model=other, envelope_on=True)
    blob = audio.compress(gliding_tone(0.5, 24000), 24000, quality=1, model=other)
    assert "envelope" not in container.ContainerReader(blob).header["audio"]
    music = tiny_audio_model(48000)  # the music rate has a layout: on by default
    blob = audio.compress(gliding_tone(0.5, 48000, 2), 48000, quality=1, model=music)
    assert container.ContainerReader(blob).header["audio"]["envelope"] == envelope.NAME
    assert audio.decompress(blob, model=music)[0].shape == (24000, 2)


def _edit_chunks(blob: bytes, edit) -> bytes:
    header, chunks = container.unpack(blob)
    return container.pack(header, edit(chunks))


@pytest.mark.parametrize("edit", [
    lambda ch: [c for c in ch if c[0] != "ENVL"],  # envelope chunks dropped
    lambda ch: ch[:-1],  # the last one dropped
    lambda ch: [ch[1], ch[0], *ch[2:]],  # ENVL before its SEGM
    lambda ch: [(t, p[:-1]) if t == "ENVL" else (t, p) for t, p in ch],  # truncated payload
    lambda ch: [(t, p + b"\0") if t == "ENVL" else (t, p) for t, p in ch],  # trailing byte
    lambda ch: [(t, b"\1\0\0\0" + p[4:]) if t == "ENVL" else (t, p) for t, p in ch],  # wrong segment index
])
def test_damaged_envelope_chunks_are_typed_errors(edit):
    blob = audio.compress(gliding_tone(1.0, 16000), 16000, quality=1, model=MODEL)
    with pytest.raises(FormatError):
        audio.decompress(_edit_chunks(blob, edit), model=MODEL)


def test_unknown_envelope_name_is_refused():
    blob = audio.compress(gliding_tone(0.5, 16000), 16000, quality=1, model=MODEL)
    header, chunks = container.unpack(blob)
    header["audio"]["envelope"] = "aec-env-v9"
    with pytest.raises(FormatError, match="envelope"):
        audio.decompress(container.pack(header, chunks), model=MODEL)


def test_constants_are_the_ones_in_the_spec():
    """Band edges and the residual table are normative: the SPEC's §7.1 lists the code's values."""
    from pathlib import Path

    spec = (Path(__file__).resolve().parents[1] / "bitstream" / "SPEC.md").read_text()
    section = spec.split("### 7.1")[1].split("\n## ")[0]
    blocks = section.split("```")[1::2]
    bands = dict(line.split(":") for line in blocks[0].strip().splitlines())
    assert {int(rate): tuple(int(v) for v in b.split()) for rate, b in bands.items()} == {
        rate: lay.band_bins for rate, lay in envelope.LAYOUTS.items()}
    assert tuple(int(v) for v in blocks[1].split()) == envelope.RESIDUAL_FREQS


# --- the finer variants and the rate ladder (bitstream 1.3, SPEC §7.3) -------------------------

FINER = [n for n in envelope.VARIANTS if n != envelope.NAME]


@pytest.mark.parametrize("name", list(envelope.VARIANTS))
def test_every_variant_table_is_valid_and_levels_round_trip(name):
    entropy.check_tables(*envelope._table(name), envelope.PRECISION)
    for kind in ["silence", "loud", "bursts", "speech"]:
        x = signal(kind)
        q = envelope.quantize(envelope.band_energies(x, 16000, name), name)
        v = envelope.variant(name)
        assert q.shape == (v.bands, envelope.tiles(len(x), 16000, name))
        assert np.array_equal(envelope.decode(envelope.encode(x, 16000, name), len(x), 16000, name), q)


def test_v1_defaults_are_unchanged():
    """The default variant is aec-env-v1: the same bytes as before the variants existed."""
    x = signal("speech")
    assert envelope.encode(x, 16000) == envelope.encode(x, 16000, envelope.NAME)
    assert envelope.tiles(len(x), 16000) == -(-envelope.frames(len(x), envelope.LAYOUTS[16000]) // 8)


def test_finer_variants_rescale_more_exactly():
    """The point of the ladder: band energies after apply() are closer to the input's (measured on
    the finest common grid, 64 bands of 32 ms) for each finer rung."""
    x = signal("speech", 16000 * 3)
    rng = np.random.default_rng(0)  # a wrong envelope: ±8 dB gain errors per 16 ms, a tilt, a noise floor
    gains = np.repeat(10 ** (rng.uniform(-8, 8, len(x) // 256 + 1) / 20), 256)[: len(x)]
    tilted = np.concatenate([[x[0]], x[1:] - 0.7 * x[:-1]])
    smeared = (gains * tilted + 1e-3 * rng.standard_normal(len(x))).astype(np.float32)
    fine = "aec-env-v2-b64"

    def err(y):
        a = envelope.band_energies(x, 16000, fine)
        b = envelope.band_energies(y, 16000, fine)
        keep = a > 1e-6 * a.max()
        return float(np.mean(np.abs(10 * np.log10(a[keep]) - 10 * np.log10(np.maximum(b[keep], 1e-30)))))

    errors = []
    for name in audio.ENVELOPE_LADDER[16000]:
        q = envelope.decode(envelope.encode(x, 16000, name), len(x), 16000, name)
        errors.append(err(envelope.apply(smeared, q, 16000, name)))
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.6 * errors[0], errors


class _Net:
    sample_rate, target_kbps = 16000, (3.0, 6.0, 12.0)


@pytest.mark.parametrize("kbps, expected", [(2, "aec-env-v1"), (3, "aec-env-v1"), (4.5, "aec-env-v1"),
                                            (6, "aec-env-v2-t32"), (9, "aec-env-v2-b48"),
                                            (12, "aec-env-v2-b64"), (100, "aec-env-v2-b64")])
def test_rate_ladder_picks_the_finest_envelope_that_fits(kbps, expected):
    assert audio.plan_for_kbps(_Net(), kbps, 1) == (1.0, expected)
    assert audio.plan_for_kbps(_Net(), kbps, 2)[1] == envelope.NAME  # stereo keeps v1 and the latent levels


def test_files_with_a_finer_envelope_are_1_3_and_decode():
    x = gliding_tone(1.5, 16000)
    blob = audio.compress(x, 16000, 12, model=MODEL)
    reader = container.ContainerReader(blob)
    assert reader.minor == 3 and reader.header["audio"]["envelope"] == "aec-env-v2-b64"
    assert reader.header["quality"] == "1"
    y, rate = audio.decompress(blob, model=MODEL)
    assert rate == 16000 and y.shape == (len(x), 1) and np.isfinite(y).all()
    v1 = audio.compress(x, 16000, 3, model=MODEL)
    assert container.ContainerReader(v1).minor == 2  # the lowest rung writes what 0.2.0 wrote
    # a finer envelope on a 48 kHz model is refused as a header error, not decoded wrongly
    header, chunks = container.unpack(blob)
    header["audio"]["model_rate"] = 48000
    with pytest.raises(FormatError, match="envelope"):
        audio.decompress(container.pack(header, chunks), model=MODEL)


def test_finer_constants_are_the_ones_in_the_spec():
    from pathlib import Path

    spec = (Path(__file__).resolve().parents[1] / "bitstream" / "SPEC.md").read_text()
    section = spec.split("### 7.3")[1].split("\n## ")[0]
    blocks = section.split("```")[1::2]
    rows = {}
    for line in blocks[0].strip().splitlines():
        name, *fields = line.split("|")
        rows[name.strip()] = [f.strip() for f in fields]
    for name in FINER:
        v = envelope.variant(name)
        step, tile, qmin, qmax, qstart = rows[name][:5]
        assert (float(step), int(tile), int(qmin), int(qmax), int(qstart)) == (
            v.step_db, v.tile_frames, v.q_min, v.q_max, v.q_start)
        assert tuple(int(b) for b in rows[name][5].split()) == v.layouts[16000].band_bins
        assert tuple(int(f) for f in rows[name][6].split()) == v.freqs
