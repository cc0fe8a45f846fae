"""Issue 17's last two friction items: the audio model chosen by content, and a known sRGB ICC
profile stored as a short identifier instead of its bytes.

Real codec paths with the shipped models; nothing of the codec is mocked.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from aecodec import audio, cli, content, testing
from aecodec.io import audio as audio_io

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
