"""Tiny models and test signals for tests, fuzzing and benchmarks (random weights: they code, they
don't compress). Each model is seeded and built in a fixed order, so its weights (and the files
coded with it, the fuzz corpus included) are the same in every process.

    tiny_model()             the image codec tests' GainedMeanScaleHyperprior (N=16, M=24, 8 levels,
                             seed 1234; the fuzz corpus tests/fuzz_corpus was recorded with it)
    tiny_audio_model(rate)   the audio codec tests' AudioHyperprior (M=16, N=8, 3 levels, seed 0,
                             gains ×40 so symbols vary; registry id 65534)
    tiny_score_image_model() / tiny_score_audio_model()   the scoring tests' models (gains ×30 / ×300)
    tiny_context_model()     a ContextHyperprior small enough to code a picture in milliseconds,
                             with random context networks so every pass's parameters depend on
                             what was decoded before it (the zero init would hide the context)
    smooth_image(w, h)       a smooth uint8 picture with a little noise
    soft_image(w, h, seed)   a smoother one whose frequencies depend on the seed (scoring tests)
    write_png(path, w, h)    a small noisy gradient picture written as PNG
    with_threads(t, c, f)    f() with t torch threads and c coding threads (determinism tests)
    gliding_tone(s, rate)    a harmonic tone with a gliding pitch and a little noise (mono/stereo)
    speech_like(s, rate)     syllables (~4 per second) of gliding voiced sound, fricatives and pauses
    music_like(s, rate)      a melody of held notes over sustained chords (steady pitches, no pauses)
    train_log_steps(run)     the steps a training run logged a loss for

The last two signals are what the speech/music decision (aecodec/content.py) must tell apart.
"""

from __future__ import annotations

import numpy as np


def tiny_model():
    """registry.LoadedModel of GainedMeanScaleHyperprior(N=16, M=24, levels=8), seed 1234, tables updated.
    Fixed: the fuzz corpus was recorded with it (its weights hash is in tests/fuzz_corpus/manifest.json)."""
    import torch

    from aecodec import registry
    from aecodec.models.image import GainedMeanScaleHyperprior

    torch.manual_seed(1234)
    net = GainedMeanScaleHyperprior(N=16, M=24, levels=8)
    net.update_tables()
    return registry.from_network(net)


def tiny_audio_model(sample_rate: int = 16000, seed: int = 0):
    """registry.LoadedModel (id 65534) of a tiny AudioHyperprior at ``sample_rate``; fixed like tiny_model."""
    import torch

    from aecodec import registry
    from aecodec.models.audio import AudioHyperprior

    torch.manual_seed(seed)
    net = AudioHyperprior(sample_rate=sample_rate, strides=(2, 4, 5, 8), channels=(8, 8, 16, 16), M=16, N=8, levels=3)
    with torch.no_grad():  # an untrained analysis gives tiny latents: spread them so symbols vary
        net.gain.mul_(40.0)
    net.update_tables()
    return registry.from_network(net, "test-audio", 65534)


def tiny_score_image_model():
    """The scoring tests' image model: tiny_model's architecture with gains ×30 ("tiny-scaled")."""
    import torch

    from aecodec import registry
    from aecodec.models.image import GainedMeanScaleHyperprior

    torch.manual_seed(1234)
    net = GainedMeanScaleHyperprior(N=16, M=24, levels=8)
    with torch.no_grad():
        net.gain.mul_(30.0)
    net.update_tables()
    return registry.from_network(net, name="tiny-scaled")


def tiny_score_audio_model():
    """The scoring tests' audio model (16 kHz, M=8, N=8, gains ×300, "tiny-audio")."""
    import torch

    from aecodec import registry
    from aecodec.models.audio import AudioHyperprior

    torch.manual_seed(99)
    net = AudioHyperprior(sample_rate=16000, strides=(2, 4, 5, 8), channels=(4, 4, 8, 8), M=8, N=8, levels=3)
    with torch.no_grad():
        net.gain.mul_(300.0)
    net.update_tables()
    return registry.from_network(net, name="tiny-audio")


def tiny_context_model(seed: int = 1234, levels: int = 4):
    """registry.LoadedModel of ContextHyperprior(N=16, M=32, groups 4/4/8/8/8), tables updated."""
    import torch

    from aecodec import registry
    from aecodec.models.context import ContextHyperprior

    torch.manual_seed(seed)
    net = ContextHyperprior(N=16, M=32, levels=levels, groups=(4, 4, 8, 8, 8))
    with torch.no_grad():
        for name, p in net.context.named_parameters():
            p.add_(torch.randn_like(p) * (0.3 if name.endswith("weight") else 0.1))
    net.update_tables()
    return registry.from_network(net, name="test-context")


def smooth_image(w: int, h: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = [(np.sin(xx / 7 + c) * np.cos(yy / 5 - c) + 1) * 110 for c in range(channels)]
    arr = np.stack(base, -1) + rng.normal(0, 4, (h, w, channels))
    return np.clip(arr, 0, 255).astype(np.uint8)


def soft_image(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A smoother uint8 RGB picture than smooth_image, its frequencies set by ``seed``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = [(np.sin(xx / (15 + seed) + c) * np.cos(yy / 13 - c) + 1) * 110 for c in range(3)]
    return np.clip(np.stack(base, -1) + rng.normal(0, 2, (h, w, 3)), 0, 255).astype(np.uint8)


def write_png(path, w: int = 64, h: int = 48, seed: int = 0):
    """A noisy RGB gradient of w × h written to ``path`` as PNG; returns ``path``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([(np.sin(xx / 6 + c) + 1) * 100 + yy for c in range(3)], -1) + rng.normal(0, 3, (h, w, 3))
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path)
    return path


def with_threads(torch_threads: int, coding_threads: int, fn):
    """fn() with ``torch_threads`` torch threads and ``coding_threads`` tile/segment threads, restored after."""
    import torch

    from aecodec import coding

    before = torch.get_num_threads()
    torch.set_num_threads(torch_threads)
    try:
        with coding.coding_threads(coding_threads):
            return fn()
    finally:
        torch.set_num_threads(before)


def gliding_tone(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """float32 (frames,) or (frames, 2): a harmonic tone with a gliding pitch, amplitude envelope and
    a little noise (the audio codec tests' signal; stereo: a quieter, noisier copy on the right)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2.1 * t)) ** 2
    x = 0.2 * x + 0.01 * rng.standard_normal(len(t))
    if channels == 2:
        x = np.stack([x, 0.7 * x + 0.01 * rng.standard_normal(len(t))], axis=1)
    return x.astype(np.float32)


def speech_like(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """float32 (frames,): syllables of ~0.2 s at ~4 per second, each a voiced vowel (harmonics of a
    gliding f0 through two formants) often followed by a fricative (high-passed noise), with
    pauses between phrases."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    x = np.zeros(n)
    t, f0_base = 0.05, 110 + 60 * rng.random()
    while t < seconds - 0.3:
        dur = rng.uniform(0.12, 0.24)
        i, j = int(t * rate), min(n, int((t + dur) * rate))
        tt = np.arange(j - i) / rate
        f0 = f0_base * (1.25 - 0.4 * tt / dur + 0.1 * rng.standard_normal())  # falling glide
        phase = 2 * np.pi * np.cumsum(f0) / rate
        f1, f2 = rng.uniform(300, 800), rng.uniform(900, 2500)
        voiced = np.zeros(j - i)
        for k in range(1, int(3800 / f0_base)):
            fk = k * f0
            gain = np.exp(-((fk - f1) / 200) ** 2) + 0.5 * np.exp(-((fk - f2) / 300) ** 2) + 0.02
            voiced += gain * np.sin(k * phase)
        x[i:j] += voiced * np.sin(np.pi * tt / dur) ** 2
        t += dur
        if rng.random() < 0.5:  # fricative
            m = int(rng.uniform(0.04, 0.1) * rate)
            noise = np.diff(rng.standard_normal(m + 1))
            k = min(n, int(t * rate) + m) - int(t * rate)
            x[int(t * rate) : int(t * rate) + k] += 0.15 * noise[:k] * np.hanning(m)[:k]
            t += m / rate
        t += rng.uniform(0.02, 0.08) + (rng.uniform(0.3, 0.6) if rng.random() < 0.15 else 0.0)
    x += 1e-4 * rng.standard_normal(n)
    return (0.3 * x / max(1e-9, np.abs(x).max())).astype(np.float32)


def music_like(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """float32 (frames,): a melody of held notes (0.25-0.5 s, steady pitch, soft attack) over
    sustained three-note chords changing every 2 s, harmonics decaying as a plucked string."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    x = np.zeros(n)

    def note(freq: float, start: float, dur: float, level: float) -> None:
        i, j = int(start * rate), min(n, int((start + dur) * rate))
        if j <= i:
            return
        tt = np.arange(j - i) / rate
        tone = sum(np.sin(2 * np.pi * k * freq * tt) / k**1.5 for k in range(1, 8) if k * freq < rate / 2)
        env = np.minimum(1.0, tt / 0.02) * np.exp(-tt / (2 * dur)) * np.minimum(1.0, (dur - tt) / 0.03)
        x[i:j] += level * tone * env

    scale = 220 * 2 ** (np.array([0, 2, 4, 5, 7, 9, 11, 12]) / 12)
    for c in range(int(np.ceil(seconds / 2))):
        root = rng.integers(0, 4)
        for k in (0, 2, 4):
            note(scale[root + k] / 2, 2 * c, 2.0, 0.25)
    t = 0.0
    while t < seconds:
        dur = rng.choice([0.25, 0.5])
        note(scale[rng.integers(0, 8)] * 2, t, dur, 0.4)
        t += dur
    x += 1e-4 * rng.standard_normal(n)
    return (0.3 * x / max(1e-9, np.abs(x).max())).astype(np.float32)


def train_log_steps(run_dir) -> list:
    """The steps of a training run's train.log (``run_dir``) that logged a loss, in order."""
    import json
    from pathlib import Path

    return [json.loads(line).get("step") for line in (Path(run_dir) / "train.log").read_text().splitlines()
            if "loss" in json.loads(line)]
