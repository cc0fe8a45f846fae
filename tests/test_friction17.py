"""Issue 17's last two friction items: the audio model chosen by content, and a known sRGB ICC
profile stored as a short identifier instead of its bytes.

Real codec paths with the shipped models; nothing of the codec is mocked.
"""

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from PIL import Image, ImageCms

from aecodec import audio, cli, codec, container, content, testing
from aecodec.errors import FormatError
from aecodec.io import audio as audio_io
from aecodec.io import icc

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
EXAMPLE_SPEECH = Path(__file__).resolve().parents[1] / "examples" / "vctk-p225_003.flac"


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def signal(kind: str, seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    return (testing.speech_like if kind == "speech" else testing.music_like)(seconds, rate, seed)


# ---------------------------------------------------------------------------------------------
# the audio model chosen by content


@pytest.mark.parametrize("rate", [16000, 22050, 44100, 48000])
@pytest.mark.parametrize("kind", ["speech", "music"])
@pytest.mark.parametrize("seed", [0, 1])
def test_content_decision_tells_the_test_signals_apart(kind, rate, seed):
    decision = content.classify(signal(kind, 3.0, rate, seed), rate)
    assert decision is not None and decision.kind == kind
    assert (decision.speech_probability > 0.9) if kind == "speech" else (decision.speech_probability < 0.1)


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_real_speech_is_speech_at_every_rate(rate):
    x, r = sf.read(str(EXAMPLE_SPEECH), dtype="float32")
    assert content.classify(soxr.resample(x, r, rate), rate).kind == "speech"


def test_decision_is_deterministic_and_declines_what_it_cannot_judge():
    x = testing.music_like(4.0, 44100)
    assert content.classify(x, 44100) == content.classify(x.copy(), 44100)
    assert content.classify(x[:22050], 44100) is None  # half a second: too short
    assert content.classify(np.zeros(3 * 48000, np.float32), 48000) is None  # silence
    stereo = np.stack([x, x], axis=1)
    assert content.classify(stereo, 44100).kind == "music"


@pytest.mark.parametrize("kind,rate", [("speech", 48000), ("speech", 44100), ("music", 16000), ("music", 22050),
                                       ("speech", 16000), ("music", 48000)])
def test_encoder_picks_the_model_by_content_and_says_so(tmp_path, capsys, kind, rate):
    """Mono 44.1/48 kHz speech went to the music model and 16/22 kHz music to the speech model."""
    src = tmp_path / "in.wav"
    sf.write(str(src), signal(kind, 2.5, rate), rate)
    code, out, err = run(["encode", src, "-o", tmp_path / "a.aec", "--json"], capsys)
    assert code == 0, err
    info = json.loads(out)
    assert info["model"] == f"audio-{kind}-v1"
    assert info["model_choice"] == "content" and (info["speech_probability"] > 0.5) == (kind == "speech")
    assert audio.read_info((tmp_path / "a.aec").read_bytes()).model.name == f"audio-{kind}-v1"
    code, _, err = run(["encode", src, "-o", tmp_path / "b.aec", "-f"], capsys)
    assert code == 0 and f"audio-{kind}-v1 (by content, P(speech)" in err
    code, _, err = run(["decode", tmp_path / "a.aec", "-o", tmp_path / "out.wav"], capsys)
    assert code == 0 and sf.info(str(tmp_path / "out.wav")).samplerate == rate


@pytest.mark.parametrize("forced", ["speech", "music"])
def test_named_model_overrides_the_content(tmp_path, capsys, forced):
    other = "music" if forced == "speech" else "speech"
    src = tmp_path / "in.wav"
    sf.write(str(src), signal(other, 2.0, 48000), 48000)
    code, out, _ = run(["encode", src, "-o", tmp_path / "a.aec", "--json", "--model", forced], capsys)
    info = json.loads(out)
    assert code == 0 and info["model"] == f"audio-{forced}-v1" and info["model_choice"] == "request"
    blob = audio.compress(signal(other, 2.0, 48000), 48000, model=forced)
    assert audio.read_info(blob).model.name == f"audio-{forced}-v1"


@pytest.mark.parametrize("kind", ["speech", "music"])
def test_api_picks_by_content(kind):
    x = signal(kind, 2.0, 48000 if kind == "speech" else 16000)
    rate = 48000 if kind == "speech" else 16000
    assert audio.read_info(audio.compress(x, rate)).model.name == f"audio-{kind}-v1"
    choice = audio.choose(audio_io.array_source(x, rate))
    assert (choice.by, choice.loaded.variant.name) == ("content", f"audio-{kind}-v1")


@pytest.mark.parametrize("case,expected,by", [
    ("stereo speech 48k", "audio-music-v1", "channels"),
    ("mono speech 48k at 6 kbps", "audio-speech-v1", "bitrate"),
    ("short mono 48k", "audio-music-v1", "sample rate"),
    ("short mono 16k", "audio-speech-v1", "sample rate"),
])
def test_rules_before_and_after_the_content(case, expected, by):
    rate = 16000 if "16k" in case else 48000
    x = signal("speech", 0.5 if "short" in case else 2.0, rate)
    if "stereo" in case:
        x = np.stack([x, x], axis=1)
    choice = audio.choose(audio_io.array_source(x, rate), 6.0 if "6 kbps" in case else None)
    assert (choice.loaded.variant.name, choice.by) == (expected, by)


# ---------------------------------------------------------------------------------------------
# a well-known sRGB ICC profile is stored as a name, not bytes


def lcms_srgb() -> bytes:
    """What Pillow's littleCMS writes for an sRGB profile: its creation date is the current time."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def openicc_srgb() -> bytes:
    return (icc.PROFILE_DIR / "openicc-srgb.icc").read_bytes()


KNOWN = {"openicc-srgb": openicc_srgb, "lcms-srgb": lcms_srgb}


def picture(profile: bytes | None) -> Image.Image:
    im = Image.fromarray(testing.smooth_image(64, 48))
    if profile is not None:
        im.info["icc_profile"] = profile
    return im


def chunks(data: bytes) -> dict:
    return {c.tag: c for c in container.ContainerReader(data).index()}


def rewrite(data: bytes, tag: str, payload: bytes | None, extra: tuple | None = None) -> bytes:
    """The same file with the ICC chunk replaced by (tag, payload) (None: dropped), plus ``extra``."""
    reader = container.ContainerReader(data)
    buf = io.BytesIO()
    with container.ContainerWriter(buf, reader.header, minor=reader.minor) as writer:
        for t, p in reader.chunks():
            if t in ("ICCP", "ICCN"):
                if payload is not None:
                    writer.add_chunk(tag, payload)
            else:
                writer.add_chunk(t, p)
        if extra:
            writer.add_chunk(*extra)
    return buf.getvalue()


@pytest.mark.parametrize("which", sorted(KNOWN))
def test_known_srgb_profile_is_a_name_and_comes_back_identical(which):
    profile = KNOWN[which]()
    data = codec.compress_image(picture(profile), quality=2)
    tags = chunks(data)
    assert "ICCN" in tags and "ICCP" not in tags and tags["ICCN"].length <= 64
    assert container.ContainerReader(data).minor >= 3
    plain = codec.compress_image(picture(None), quality=2)
    assert len(data) - len(plain) <= 80 < len(profile)  # chunk, index entry, name (and date); was len(profile) + 28
    assert codec.decompress_image(data).info["icc_profile"] == profile
    import aecodec.pillow  # noqa: F401 - the plugin reads it too

    assert Image.open(io.BytesIO(data)).info["icc_profile"] == profile


def test_known_profile_through_the_cli_round_trips_byte_for_byte(tmp_path, capsys):
    profile = lcms_srgb()
    picture(profile).save(tmp_path / "in.png", icc_profile=profile)
    assert cli.main(["encode", str(tmp_path / "in.png"), "-o", str(tmp_path / "a.aec"), "-q", "2"]) == 0
    assert "ICCN" in chunks((tmp_path / "a.aec").read_bytes())
    assert cli.main(["decode", str(tmp_path / "a.aec"), "-o", str(tmp_path / "out.png")]) == 0
    assert Image.open(tmp_path / "out.png").info["icc_profile"] == profile
    capsys.readouterr()


@pytest.mark.parametrize("edit", ["one byte changed", "truncated", "unrelated", "date only, other platform"])
def test_other_profiles_are_stored_verbatim(edit):
    base = openicc_srgb()
    profile = {
        "one byte changed": base[:200] + bytes([base[200] ^ 1]) + base[201:],
        "truncated": base[:-4],
        "unrelated": b"fake icc profile bytes" * 40,
        "date only, other platform": (lambda p: p[:40] + b"MSFT" + p[44:])(lcms_srgb()),
    }[edit]
    assert icc.identify(profile) is None
    data = codec.compress_image(picture(profile), quality=2)
    assert "ICCP" in chunks(data) and "ICCN" not in chunks(data)
    assert codec.decompress_image(data).info["icc_profile"] == profile


@pytest.mark.parametrize("which", sorted(KNOWN))
def test_files_with_the_profile_bytes_still_decode_and_pixels_do_not_depend_on_the_chunk(which):
    """An older writer stored the same profile in ICCP: such files decode as before."""
    profile = KNOWN[which]()
    data = codec.compress_image(picture(profile), quality=2)
    old = rewrite(data, "ICCP", profile)
    assert "ICCN" not in chunks(old)
    a, b = codec.decompress_image(data), codec.decompress_image(old)
    assert a.info["icc_profile"] == b.info["icc_profile"] == profile
    assert np.array_equal(np.asarray(a), np.asarray(b))
    dropped = codec.decompress_image(rewrite(data, "ICCN", None))  # what a reader that skips ICCN sees
    assert "icc_profile" not in dropped.info and np.array_equal(np.asarray(dropped), np.asarray(a))


@pytest.mark.parametrize("payload", [b"", b"OpenICC-sRGB", b"openicc-srgb:00", b"lcms-srgb-4.4",
                                     b"openicc-srgb:" + b"0" * 24, b"a" * 40, b"openicc-srgb\n"])
def test_malformed_iccn_is_a_format_error(payload):
    data = rewrite(codec.compress_image(picture(openicc_srgb()), quality=2), "ICCN", payload)
    with pytest.raises(FormatError):
        codec.decompress_image(data)


def test_unknown_name_decodes_without_a_profile_and_warns():
    data = rewrite(codec.compress_image(picture(openicc_srgb()), quality=2), "ICCN", b"some-future-profile")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = codec.decompress_image(data)
    assert "icc_profile" not in image.info
    assert any(issubclass(w.category, icc.UnknownProfileWarning) for w in caught)


def test_iccp_and_iccn_together_are_refused():
    profile = openicc_srgb()
    data = codec.compress_image(picture(profile), quality=2)
    with pytest.raises(FormatError):
        codec.decompress_image(rewrite(data, "ICCN", b"openicc-srgb", extra=("ICCP", profile)))


def test_shipped_profiles_match_the_table():
    for p in icc.KNOWN:
        data = (icc.PROFILE_DIR / p.file).read_bytes()
        assert len(data) == p.size
        name = icc.identify(data)
        assert name is not None and name.split(b":")[0] == p.name.encode()
