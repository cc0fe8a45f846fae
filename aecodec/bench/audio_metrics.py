"""Audio quality and rate metrics for the audio benchmark.

    encoded bytes, seconds           ─kbps─>       8 · bytes / seconds / 1000 (whole file, headers included)
    reference, decoded, rate, kind   ─visqol─>     MOS-LQO (visqol-python 3.8, ViSQOL v3.3 port):
        speech: downmix to mono, resample to 16 kHz (soxr HQ), speech mode, deep-lattice MOS mapper
                (the C++ tool's default) when ai-edge-litert is installed, else the polynomial mapper
        music:  downmix to mono, resample to 48 kHz, audio mode (bundled SVR model)
    reference, decoded, rate         ─stoi─>       pystoi STOI (not extended) of the mono downmix
    reference, decoded, rate         ─si_sdr─>     aecodec.dsp.si_sdr, dB, mean over channels
    reference, decoded, rate         ─log_mel─>    aecodec.dsp.log_mel_distance, mean over channels

Signals are float arrays of shape (frames,) or (frames, channels) at the reference rate and of
the same length (the runner aligns them). Stereo goes to ViSQOL and STOI as the mono downmix
(L + R) / 2, which is what ViSQOL's own file loader (`load_as_mono`) and the C++ tool do.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from aecodec import dsp

VISQOL_SPEECH_RATE = 16000
VISQOL_AUDIO_RATE = 48000


def kbps(num_bytes: int, seconds: float) -> float:
    """Bit rate of a whole encoded file in kbit/s: 8 · bytes / seconds / 1000."""
    return 8.0 * num_bytes / seconds / 1000.0


def _channels(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[:, None] if x.ndim == 1 else x


def mono(x: np.ndarray) -> np.ndarray:
    """The mono downmix (mean of the channels) as float64."""
    return _channels(x).mean(axis=1)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """soxr HQ resampling of a 1-D or (frames, channels) signal; a no-op at equal rates."""
    if rate_in == rate_out:
        return np.asarray(x, dtype=np.float64)
    import soxr

    return soxr.resample(np.asarray(x, dtype=np.float64), rate_in, rate_out, quality="HQ")


def _check_pair(reference: np.ndarray, decoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _channels(reference), _channels(decoded)
    if a.shape != b.shape:
        raise ValueError(f"signal shapes differ: {a.shape} vs {b.shape}")
    return a, b


def si_sdr(reference: np.ndarray, decoded: np.ndarray) -> float:
    """SI-SDR in dB (aecodec.dsp.si_sdr), averaged over channels."""
    a, b = _check_pair(reference, decoded)
    return float(np.mean([dsp.si_sdr(a[:, c], b[:, c]) for c in range(a.shape[1])]))


def log_mel(reference: np.ndarray, decoded: np.ndarray, rate: int) -> float:
    """Log-mel distance (aecodec.dsp.log_mel_distance, 64 mels, lower is better), averaged over channels."""
    a, b = _check_pair(reference, decoded)
    return float(np.mean([dsp.log_mel_distance(a[:, c], b[:, c], rate) for c in range(a.shape[1])]))


def stoi(reference: np.ndarray, decoded: np.ndarray, rate: int) -> float:
    """STOI (pystoi, classic, not extended) of the mono downmixes; pystoi resamples to 10 kHz itself."""
    from pystoi import stoi as pystoi_stoi

    a, b = _check_pair(reference, decoded)
    return float(pystoi_stoi(a.mean(axis=1), b.mean(axis=1), rate, extended=False))


def lattice_available() -> bool:
    """Whether visqol-python can use the deep-lattice speech mapper (needs ai-edge-litert)."""
    from visqol.visqol_manager import has_lattice_runtime

    return bool(has_lattice_runtime())


@functools.lru_cache(maxsize=None)
def _visqol_api(mode: str):
    from visqol import VisqolApi

    api = VisqolApi()
    if mode == "speech":
        api.create(mode="speech", use_lattice_model=lattice_available())
    else:
        api.create(mode="audio")
    return api


def visqol_settings(kind: str) -> dict:
    """The exact ViSQOL configuration the results were measured with (written into results)."""
    import visqol

    if kind == "speech":
        mapper = ("deep-lattice TFLite model (C++ default)" if lattice_available()
                  else "polynomial fallback (ai-edge-litert missing; may read 1-2 MOS higher than the C++ tool)")
        return {"visqol_python": visqol.__version__, "mode": "speech", "rate": VISQOL_SPEECH_RATE,
                "mos_mapper": mapper, "channels": "mono downmix", "resampler": "soxr HQ"}
    return {"visqol_python": visqol.__version__, "mode": "audio", "rate": VISQOL_AUDIO_RATE,
            "mos_mapper": "bundled libsvm nu-SVR model", "channels": "mono downmix (L+R)/2",
            "resampler": "soxr HQ"}


def visqol(reference: np.ndarray, decoded: np.ndarray, rate: int, kind: str) -> float:
    """ViSQOL MOS-LQO: speech mode at 16 kHz or audio mode at 48 kHz, on the mono downmix."""
    if kind not in ("speech", "music"):
        raise ValueError(f"kind must be 'speech' or 'music', got {kind!r}")
    a, b = _check_pair(reference, decoded)
    mode = "speech" if kind == "speech" else "audio"
    target = VISQOL_SPEECH_RATE if mode == "speech" else VISQOL_AUDIO_RATE
    ref = resample(a.mean(axis=1), rate, target)
    deg = resample(b.mean(axis=1), rate, target)
    api = _visqol_api(mode)
    logging.getLogger("visqol").setLevel(logging.ERROR)
    return float(api.measure_from_arrays(ref, deg, target).moslqo)


def alignment_lag(reference: np.ndarray, decoded: np.ndarray, max_lag: int = 2000) -> int:
    """Lag in samples (positive: decoded is late) maximising the cross-correlation of the mono downmixes."""
    a, b = mono(reference), mono(decoded)
    n = min(len(a), len(b))
    a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    size = 1 << int(np.ceil(np.log2(2 * n)))
    corr = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    values = np.concatenate([corr[: max_lag + 1], corr[size - max_lag :]])
    return int(lags[np.argmax(values)])
