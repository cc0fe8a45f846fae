"""CLI for audio with the shipped speech and music weights: round trips, options, batch, bad inputs."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from aecodec import audio, cli
from aecodec.testing import gliding_tone


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def wav(path, seconds=1.0, rate=16000, channels=1, subtype="PCM_16", fmt=None, data=None):
    x = gliding_tone(seconds, rate, channels) if data is None else data
    sf.write(str(path), x, rate, subtype=subtype, format=fmt)
    return path


def assert_one_line_error(code, err, expected_code=1):
    assert code == expected_code
    assert err.startswith("aecodec: error:") and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("rate,channels,subtype,suffix", [
    (16000, 1, "PCM_16", ".wav"), (8000, 1, "PCM_16", ".wav"), (96000, 1, "PCM_24", ".wav"),
    (44100, 2, "FLOAT", ".wav"), (22050, 1, "PCM_16", ".flac"), (48000, 2, "PCM_24", ".flac"),
])
def test_round_trip_keeps_rate_length_channels_and_subtype(tmp_path, capsys, rate, channels, subtype, suffix):
    src = wav(tmp_path / f"in{suffix}", 0.7, rate, channels, subtype)
    code, _, err = run(["encode", src, "-o", tmp_path / "a.aec"], capsys)
    assert code == 0, err
    assert "kbps" in err and "real time" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(["decode", tmp_path / "a.aec", "-o", tmp_path / f"out{suffix}"], capsys)
    assert code == 0, err
    a, b = sf.info(str(src)), sf.info(str(tmp_path / f"out{suffix}"))
    assert (b.samplerate, b.frames, b.channels, b.subtype) == (a.samplerate, a.frames, a.channels, a.subtype)


def test_automatic_model_choice_and_explicit_model(tmp_path, capsys):
    mono = wav(tmp_path / "mono.wav", 0.5, 16000, 1)
    stereo = wav(tmp_path / "st.wav", 0.5, 44100, 2)
    for src, expected in [(mono, "audio-speech-v1"), (stereo, "audio-music-v1")]:
        code, out, _ = run(["encode", src, "-o", tmp_path / f"{src.stem}.aec", "--json"], capsys)
        assert code == 0 and json.loads(out)["model"] == expected
    code, out, _ = run(["encode", mono, "-o", tmp_path / "m2.aec", "--model", "music", "--json"], capsys)
    assert code == 0 and json.loads(out)["model"] == "audio-music-v1"
    assert audio.read_info((tmp_path / "m2.aec").read_bytes()).model_rate == 48000


def test_bitrate_option_orders_file_sizes(tmp_path, capsys):
    src = wav(tmp_path / "in.wav", 2.0)
    sizes = []
    for b in (3, 12):
        code, out, _ = run(["encode", src, "-o", tmp_path / f"b{b}.aec", "-b", b, "--json"], capsys)
        assert code == 0
        sizes.append(json.loads(out)["bytes"])
    assert sizes[0] < sizes[1]


def test_info_describes_audio(tmp_path, capsys):
    src = wav(tmp_path / "in.wav", 1.0)
    run(["encode", src, "-o", tmp_path / "a.aec"], capsys)
    code, out, _ = run(["info", tmp_path / "a.aec", "--json"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["header"]["modality"] == "audio" and doc["duration"] == 1.0 and doc["kbps"] > 0
    code, out, _ = run(["info", tmp_path / "a.aec"], capsys)
    assert "16000 Hz" in out and "SEGM" in out


def test_no_envelope_option(tmp_path, capsys):
    """Speech files carry the band-energy envelope (ENVL chunks) unless --no-envelope."""
    src = wav(tmp_path / "in.wav", 1.0)
    run(["encode", src, "-o", tmp_path / "env.aec", "-b", "6"], capsys)
    run(["encode", src, "-o", tmp_path / "plain.aec", "-b", "6", "--no-envelope"], capsys)
    code, out, _ = run(["info", tmp_path / "env.aec"], capsys)
    assert code == 0 and "chunk   ENVL" in out and "envelope aec-env-v2-t32" in out  # -b 6: the rate ladder's second rung
    code, out, _ = run(["info", tmp_path / "plain.aec"], capsys)
    assert code == 0 and "chunk   ENVL" not in out and "envelope aec-env" not in out
    for name in ("env", "plain"):
        code, _, _ = run(["decode", tmp_path / f"{name}.aec", "-o", tmp_path / f"{name}.wav"], capsys)
        assert code == 0 and sf.info(str(tmp_path / f"{name}.wav")).frames == 16000


def test_decode_rate_option(tmp_path, capsys):
    src = wav(tmp_path / "in.wav", 0.5, 22050)
    run(["encode", src, "-o", tmp_path / "a.aec"], capsys)
    for rate, expected in [("model", 16000), ("8000", 8000)]:
        code, _, err = run(["decode", tmp_path / "a.aec", "-o", tmp_path / f"o{rate}.wav", "--rate", rate], capsys)
        assert code == 0, err
        assert sf.info(str(tmp_path / f"o{rate}.wav")).samplerate == expected


def test_tags_survive_the_cli(tmp_path, capsys):
    src = tmp_path / "in.flac"
    with sf.SoundFile(str(src), "w", 16000, 1, format="FLAC") as f:
        f.title, f.artist = "Tagged", "Someone"
        f.write(gliding_tone(0.5, 16000))
    run(["encode", src, "-o", tmp_path / "a.aec"], capsys)
    run(["decode", tmp_path / "a.aec", "-o", tmp_path / "out.flac"], capsys)
    with sf.SoundFile(str(tmp_path / "out.flac")) as f:
        assert (f.title, f.artist) == ("Tagged", "Someone")


def test_batch_mode_writes_wav_per_input_and_reports_failures(tmp_path, capsys):
    d = tmp_path / "in"
    d.mkdir()
    wav(d / "a.wav", 0.4)
    wav(d / "b.flac", 0.4, 22050)
    (d / "c.wav").write_bytes(b"RIFF-not-really")
    code, _, err = run(["encode", d, "-o", tmp_path / "enc/"], capsys)
    assert code == 1 and "c.wav" in err
    assert sorted(p.name for p in (tmp_path / "enc").iterdir()) == ["a.aec", "b.aec"]
    code, _, err = run(["decode", tmp_path / "enc", "-o", tmp_path / "dec/", "-j", "2"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "dec").iterdir()) == ["a.wav", "b.wav"]


def test_stdin_to_stdout(tmp_path):
    src = wav(tmp_path / "in.wav", 0.5)
    exe = [sys.executable, "-m", "aecodec"]
    enc = subprocess.run(exe + ["encode", "-", "-o", "-", "--quiet"], input=src.read_bytes(), capture_output=True, check=True)
    dec = subprocess.run(exe + ["decode", "-", "-o", "-", "--format", "wav", "--quiet"], input=enc.stdout,
                         capture_output=True, check=True)
    (tmp_path / "out.wav").write_bytes(dec.stdout)
    assert sf.info(str(tmp_path / "out.wav")).frames == sf.info(str(src)).frames


@pytest.mark.parametrize("case", ["nan", "inf", "six_channels", "not_audio", "truncated_wav"])
def test_bad_audio_inputs_fail_cleanly(tmp_path, capsys, case):
    src = tmp_path / "bad.wav"
    if case in ("nan", "inf"):
        x = gliding_tone(0.3, 16000)
        x[100] = np.nan if case == "nan" else np.inf
        sf.write(str(src), x, 16000, subtype="FLOAT")
    elif case == "six_channels":
        sf.write(str(src), np.zeros((1600, 6), np.float32), 16000)
    elif case == "not_audio":
        src.write_text("this is text, not a WAV file\n")
    else:
        wav(tmp_path / "ok.wav", 0.5)
        src.write_bytes((tmp_path / "ok.wav").read_bytes()[:30])
    code, _, err = run(["encode", src, "-o", tmp_path / "out.aec"], capsys)
    assert_one_line_error(code, err)
    assert not (tmp_path / "out.aec").exists() and not list(tmp_path.glob(".out.aec.*"))


def test_zero_length_audio_round_trips(tmp_path, capsys):
    src = wav(tmp_path / "empty.wav", data=np.zeros((0, 1), np.float32))
    assert run(["encode", src, "-o", tmp_path / "e.aec"], capsys)[0] == 0
    assert run(["decode", tmp_path / "e.aec", "-o", tmp_path / "e.wav"], capsys)[0] == 0
    assert sf.info(str(tmp_path / "e.wav")).frames == 0


@pytest.mark.parametrize("argv,expected", [
    # usage mistakes exit 2 even when only the file's kind shows them (issue 17, bug 10)
    (["encode", "{wav}", "-o", "{out}.aec", "--target-bpp", "0.5"], 2),  # image option on audio
    (["encode", "{wav}", "-o", "{out}.aec", "-b", "0"], 2),
    (["encode", "{wav}", "-o", "{out}.aec", "-b", "6", "-q", "2"], 2),
    (["encode", "{wav}", "-o", "{out}.aec", "-q", "5"], 2),  # audio qualities are 1..3
    (["encode", "{png}", "-o", "{out}.aec", "-b", "6"], 2),  # audio option on an image
    (["encode", "{png}", "-o", "{out}.aec", "--tile", "100"], 2),
    (["decode", "{aec}", "-o", "{out}.png"], 2),  # audio decoded to an image format
    (["decode", "{aec}", "-o", "{out}.wav", "--rate", "12"], 2),
    (["decode", "{aec}", "-o", "{out}.wav", "--format", "png"], 2),
])
def test_option_mismatches(tmp_path, capsys, argv, expected):
    from PIL import Image

    paths = {"wav": wav(tmp_path / "in.wav", 0.3), "png": tmp_path / "in.png", "out": tmp_path / "out",
             "aec": tmp_path / "in.aec"}
    Image.new("RGB", (8, 8)).save(paths["png"])
    run(["encode", paths["wav"], "-o", paths["aec"]], capsys)
    code, _, err = run([a.format(**paths) for a in argv], capsys)
    assert_one_line_error(code, err, expected)
    assert not list(tmp_path.glob("out*"))
