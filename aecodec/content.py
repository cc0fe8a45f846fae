"""Speech or music? A cheap decision on the signal, to pick the audio model when none is named.

NumPy only (soxr brings the excerpt to 8 kHz), deterministic; 60 s of 48 kHz audio (the most a
file is analysed) take 0.06–0.25 s on one core of this busy 2-core machine
(benchmarks/results/audio/speech_music_decision.md).
Features of the classic speech/music discriminators (Saunders 1996; Scheirer & Slaney 1997), on the mono excerpt at
8 kHz in back-to-back 32 ms frames, 12 bands from 100 Hz to 4 kHz:

    mod4hz     modulation depth of the band envelopes between 2.5 and 7 Hz (syllables, ~4 Hz)
    lowenergy  fraction of frames 10 dB below their second's mean energy (speech pauses)
    dynamics   standard deviation of the active frames' energies in dB
    flux       mean spectral flux of the log band energies (speech changes its spectrum faster)
    zcr_std    standard deviation of the zero-crossing rate (voiced/unvoiced alternation)
    tilt_std   standard deviation of the low/high band balance (vowels against fricatives)
    voiced     fraction of active frames with a clear pitch (autocorrelation peak, 80–400 Hz)
    glide      median pitch change between voiced frames in semitones (speech glides, notes hold)
    steady     fraction of those changes under 0.1 semitone

A logistic regression on their logs (fitted by ``benchmarks/speech_music.py --fit`` on the two
training folders, frozen here) gives P(speech). Features and fit depend only on the samples, so
the same input always gets the same model; audio shorter than a second or quieter than
−60 dBFS gives ``None`` (the caller falls back to its rule by sample rate). Decoding never uses
this: the model is named in the file's header.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATE = 8000
FRAME, HOP = 256, 256  # 32 ms frames, back to back, at 8 kHz
NFFT = 512  # zero-padded: the autocorrelation up to 12.5 ms lags is not circular
MIN_SECONDS = 1.0  # less than this: no decision
EXCERPT_SECONDS = 20.0  # longer inputs: three excerpts of this length (start, middle, end)
SILENCE_DB = -60.0  # frames quieter than this (dBFS) are not "active"

FEATURES = ("mod4hz", "lowenergy", "dynamics", "flux", "zcr_std", "tilt_std", "voiced", "glide", "steady")
# Frozen by benchmarks/speech_music.py --fit (standardisation of the log features, then weights).
MEAN = np.array([2.2199, -0.9134, 2.5034, -0.2816, -2.2009, -0.0117, -0.2801, -0.7067, -2.2481])
STD = np.array([0.3788, 0.3213, 0.1610, 0.1933, 0.4111, 0.2009, 0.1600, 0.8105, 1.0770])
WEIGHTS = np.array([-0.7108, 1.1418, -0.1973, 1.1751, 0.5823, -0.6379, 1.1547, 0.9052, -0.1120])
BIAS = 2.0695


@dataclass(frozen=True)
class Decision:
    kind: str  # "speech" or "music"
    speech_probability: float
    features: dict


def excerpt_plan(frames: int, rate: int) -> list[tuple[int, int]]:
    """(start, length) of what to read: all of a short input, else three excerpts."""
    n = int(EXCERPT_SECONDS * rate)
    if frames <= 3 * n:
        return [(0, frames)]
    return [(0, n), ((frames - n) // 2, n), (frames - n, n)]


def to_analysis_rate(x: np.ndarray, rate: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if rate == RATE:
        return x
    import soxr

    return soxr.resample(x, rate, RATE, quality="LQ")


BANDS = 12
MIN_LAG, MAX_LAG = RATE // 400, RATE // 80  # pitch lags, 400 down to 80 Hz


def _bands() -> np.ndarray:
    """[NFFT // 2 + 1, BANDS] rectangular bands, log-spaced from 100 Hz to 4 kHz."""
    freqs = np.arange(NFFT // 2 + 1) * RATE / NFFT
    edges = np.geomspace(100.0, 4000.0, BANDS + 1)
    bank = (freqs[None] >= edges[:-1, None]) & (freqs[None] < edges[1:, None])
    for b in range(BANDS):  # a band narrower than a bin takes the nearest bin
        if not bank[b].any():
            bank[b, np.argmin(np.abs(freqs - np.sqrt(edges[b] * edges[b + 1])))] = True
    return bank.astype(np.float64).T


_BANK = _bands()


def features(x: np.ndarray) -> dict | None:
    """The features of a mono signal at RATE, or None if it is too short or silent to judge."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 1 or len(x) < MIN_SECONDS * RATE:
        return None
    n = 1 + (len(x) - FRAME) // HOP
    frames = np.lib.stride_tricks.as_strided(x, (n, FRAME), (HOP * x.strides[0], x.strides[0]))
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(FRAME) / FRAME)).astype(np.float32)
    spectrum = np.fft.rfft(frames * window, n=NFFT, axis=1)
    spec = spectrum.real**2 + spectrum.imag**2
    bands = spec @ _BANK + 1e-12  # [n, BANDS] energies
    norm = FRAME * float(np.sum(window.astype(np.float64) ** 2)) / 2
    energy_db = 10 * np.log10(bands.sum(axis=1) / norm + 1e-12)
    active = energy_db > SILENCE_DB
    fps = RATE / HOP
    if active.sum() < MIN_SECONDS * fps / 2:
        return None

    # modulation depth of each band's envelope between 2.5 and 7 Hz (windows of ~2 s, half overlapping)
    w = min(64, n)
    starts = np.arange(0, max(1, n - w + 1), w // 2)
    env = np.sqrt(bands)
    mods = []
    taper = np.hanning(w)[:, None]
    mf = np.arange(w // 2 + 1) * fps / w
    sel = (mf >= 2.5) & (mf <= 7)
    for s in starts:
        seg = env[s : s + w]
        seg = seg / seg.mean(axis=0) - 1.0
        p = np.abs(np.fft.rfft(seg * taper, axis=0)) ** 2
        mods.append(p[sel].sum(axis=0).mean() / w)
    mod4hz = float(np.mean(mods)) if mods else 0.0

    # low-energy frames: 10 dB under the mean energy of their one-second neighbourhood
    lin = 10 ** (energy_db / 10)
    k = int(fps)
    local = np.convolve(lin, np.ones(k) / k, mode="same")
    lowenergy = float(np.mean(energy_db < 10 * np.log10(local + 1e-12) - 10))

    dynamics = float(np.std(energy_db[active]))

    logb = np.log10(bands)
    diff = np.abs(np.diff(logb, axis=0)).mean(axis=1)
    both = active[1:] & active[:-1]
    flux = float(np.mean(diff[both])) if both.any() else 0.0

    signs = np.signbit(frames)
    zcr = np.mean(signs[:, 1:] != signs[:, :-1], axis=1)
    zcr_std = float(np.std(zcr[active]))

    # spectral tilt swings: std of the low/high balance (voiced vs unvoiced sounds)
    half = BANDS // 2
    tilt = logb[:, :half].mean(axis=1) - logb[:, half:].mean(axis=1)
    tilt_std = float(np.std(tilt[active]))

    # pitch: normalised autocorrelation peak at lags of 80-400 Hz (window's own autocorrelation
    # divided out), parabolic interpolation; speech glides, music holds its notes
    ac = np.fft.irfft(spec, axis=1)[:, : MAX_LAG + 2]
    wac = np.correlate(window, window, "full")[FRAME - 1 : FRAME + MAX_LAG + 1].astype(np.float64)
    r = ac / np.maximum(ac[:, :1], 1e-20) * (wac[0] / wac)
    lag = MIN_LAG + np.argmax(r[:, MIN_LAG : MAX_LAG + 1], axis=1)
    peak = r[np.arange(n), lag]
    a, c = r[np.arange(n), lag - 1], r[np.arange(n), lag + 1]
    den = a - 2 * peak + c
    frac = np.where(den < 0, 0.5 * (a - c) / np.where(den < 0, den, -1), 0.0)
    f0 = RATE / (lag + np.clip(frac, -0.5, 0.5))
    voiced_mask = active & (peak > 0.5)
    voiced = float(voiced_mask.sum() / max(1, active.sum()))
    pair = voiced_mask[1:] & voiced_mask[:-1]
    step = np.abs(np.diff(12 * np.log2(f0)))[pair]
    step = step[step < 2]  # not octave errors
    glide = float(np.median(step)) if len(step) > 10 else 1.0
    steady = float(np.mean(step < 0.1)) if len(step) > 10 else 0.0

    return {"mod4hz": mod4hz, "lowenergy": lowenergy, "dynamics": dynamics, "flux": flux, "zcr_std": zcr_std,
            "tilt_std": tilt_std, "voiced": voiced, "glide": glide, "steady": steady}


def vector(f: dict) -> np.ndarray:
    return np.log(np.maximum(np.array([f[k] for k in FEATURES], dtype=np.float64), 1e-4))


def speech_probability(f: dict) -> float:
    z = float(((vector(f) - MEAN) / STD) @ WEIGHTS + BIAS)
    return float(1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))))


def classify(x: np.ndarray, rate: int) -> Decision | None:
    """Speech or music for samples ((frames,) or (frames, channels)) at ``rate``; None: cannot tell."""
    f = features(to_analysis_rate(x, rate))
    if f is None:
        return None
    p = speech_probability(f)
    return Decision("speech" if p >= 0.5 else "music", round(p, 4), {k: round(v, 5) for k, v in f.items()})
