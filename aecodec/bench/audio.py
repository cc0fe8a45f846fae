"""Audio benchmark runner: RD points and speeds for aec and Opus on a folder (tree) of audio files.

    data/**/*.{flac,wav,...} (sorted; subsets = sub-folders; optional limit per subset) ─soundfile─> float32
    kind: "speech" (ViSQOL speech mode, STOI) or "music" (ViSQOL audio mode); auto: speech if every
          file is mono at ≤ 24 kHz
    for codec, for target kbps, for file:
        samples ─codec.encode─> bytes (timed) ─codec.decode─> samples at the reference rate (timed)
        bytes, reference, decoded ─audio_metrics─> kbps, ViSQOL, STOI, SI-SDR, log-mel, ×real time
    records ─aggregate─> per point, overall and per subset ─> out/<codec>.json (CompressAI-like schema)
    curves ─compare─> out/summary.json: aec vs Opus interpolated at the same measured bitrate (and at
          double it, for speech), BD-rates (bjontegaard, akima) where the curves overlap
    curves ─plot─> out/rd.png (speech: kbps vs ViSQOL and STOI; music: kbps vs ViSQOL and log-mel)

Rates are measured: 8 · file bytes / duration, headers included. Timing: every codec first codes
(at most 3 s of) the first file once untimed (model loading, JIT compilation), then each encode and
decode call is timed with time.perf_counter (and time.process_time) with torch limited to one
thread (one core, as the speed target says). Speeds are ×real time: seconds of audio / wall (or
CPU) seconds, summed over the files of a point (so long files weigh more); medians of the per-file
wall values are reported too.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from aecodec.bench import audio_metrics, bdrate
from aecodec.bench.audio_codecs import AUDIO_CODEC_NAMES, KINDS, get_audio_codec
from aecodec.bench.image import _json_safe, write_json
from aecodec.bench.machine import describe_machine
from aecodec.bench.plot import plot_rd_panels
from aecodec.io.audio import AUDIO_SUFFIXES

WARMUP_SECONDS = 3.0
SPEECH_HEADLINE_KBPS = 6.0
SPEED_TARGET_XRT = 20.0  # speech model: encode and decode at least 20x real time on one core
METRICS = ("visqol", "stoi", "si_sdr", "log_mel")
# quality axes for BD-rate: higher must be better, so log-mel distance enters negated
BD_AXES = {"visqol": ("visqol", 1.0, "ViSQOL MOS-LQO"), "stoi": ("stoi", 1.0, "STOI"),
           "si_sdr": ("si_sdr", 1.0, "SI-SDR (dB)"), "neg_log_mel": ("log_mel", -1.0, "-(log-mel distance)")}


# ---------------------------------------------------------------- inputs

def list_audio(data_dir: Path, limit: int | None = None) -> list[tuple[str, str, Path]]:
    """(subset, relative path, path) of the audio files under data_dir, recursively, sorted.

    The subset is the folder holding the file, relative to data_dir ("." for files directly in it);
    `limit` keeps the first `limit` files of each subset."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"audio folder not found: {data_dir}")
    paths = sorted(p for p in data_dir.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    found, counts = [], {}
    for path in paths:
        rel = path.relative_to(data_dir)
        subset = rel.parent.as_posix()
        if limit is not None and counts.get(subset, 0) >= limit:
            continue
        counts[subset] = counts.get(subset, 0) + 1
        found.append((subset, rel.as_posix(), path))
    if not found:
        raise FileNotFoundError(f"no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) under {data_dir}")
    return found


def load_audio(path: Path) -> tuple[np.ndarray, int]:
    """float32 (frames, channels) and the rate; mono or stereo only."""
    import soundfile as sf

    samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if samples.shape[1] > 2:
        raise ValueError(f"{path}: {samples.shape[1]} channels; the audio benchmark takes mono or stereo")
    return samples, int(rate)


def detect_kind(clips: list[dict]) -> str:
    """speech if every file is mono at ≤ 24 kHz, else music."""
    return "speech" if all(c["channels"] == 1 and c["rate"] <= 24000 for c in clips) else "music"


# ---------------------------------------------------------------- measuring

@contextmanager
def one_thread():
    """One core for timing: torch limited to one thread and aecodec's segment threads to one;
    both restored afterwards."""
    import torch

    from aecodec import coding

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with coding.coding_threads(1):
            yield
    finally:
        torch.set_num_threads(before)


def _timed(function, *args):
    """(result, wall seconds, process CPU seconds) of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, time.perf_counter() - start, time.process_time() - cpu


def _safe(metric, *args, errors: list, label: str):
    try:
        value = float(metric(*args))
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop a long run; the record says why
        errors.append(f"{label}: {type(exc).__name__}: {exc}")
        return None
    return value if math.isfinite(value) else None


def measure(codec, clip: dict, kbps: float, kind: str) -> dict:
    """Encode and decode one file at one target bitrate; the per-file record."""
    samples, rate = clip["samples"], clip["rate"]
    frames = len(samples)
    seconds = frames / rate
    with one_thread():
        data, encode_seconds, encode_cpu = _timed(codec.encode, samples, rate, kbps)
        decoded, decode_seconds, decode_cpu = _timed(codec.decode, data, rate, frames)
    if decoded.shape != samples.shape:
        raise RuntimeError(f"{codec.name} decoded {clip['file']} as {decoded.shape}, expected {samples.shape}")
    errors: list[str] = []
    record = {
        "file": clip["file"],
        "subset": clip["subset"],
        "seconds": seconds,
        "sample_rate": rate,
        "channels": samples.shape[1],
        "target_kbps": kbps,
        "bytes": len(data),
        "kbps": audio_metrics.kbps(len(data), seconds),
        "visqol": _safe(audio_metrics.visqol, samples, decoded, rate, kind, errors=errors, label="visqol"),
        "stoi": (_safe(audio_metrics.stoi, samples, decoded, rate, errors=errors, label="stoi")
                 if kind == "speech" else None),
        "si_sdr": _safe(audio_metrics.si_sdr, samples, decoded, errors=errors, label="si_sdr"),
        "log_mel": _safe(audio_metrics.log_mel, samples, decoded, rate, errors=errors, label="log_mel"),
        "lag_samples": audio_metrics.alignment_lag(samples, decoded, max_lag=min(2000, max(1, frames // 4))),
        "encode_seconds": encode_seconds,
        "decode_seconds": decode_seconds,
        "encode_xrt": seconds / encode_seconds if encode_seconds > 0 else None,
        "decode_xrt": seconds / decode_seconds if decode_seconds > 0 else None,
        "encode_cpu_seconds": encode_cpu,
        "decode_cpu_seconds": decode_cpu,
    }
    if errors:
        record["errors"] = errors
    return record


def _mean(values: list) -> float | None:
    """Mean, or None if any value is missing (a mean over a different subset of files would mislead)."""
    if not values or any(v is None for v in values):
        return None
    return float(statistics.fmean(values))


def aggregate(records: list[dict], points: list[float]) -> dict:
    """Per target point, in CompressAI's results layout: mean kbps and metrics over files, speeds."""
    keys = ("target_kbps", "kbps", "kbps_total", *METRICS, "encode_xrt", "decode_xrt",
            "encode_xrt_median", "decode_xrt_median", "encode_cpu_xrt", "decode_cpu_xrt", "files", "seconds")
    results = {key: [] for key in keys}
    for point in points:
        rows = [r for r in records if r["target_kbps"] == point]
        seconds = sum(r["seconds"] for r in rows)
        results["target_kbps"].append(point)
        results["files"].append(len(rows))
        results["seconds"].append(seconds)
        results["kbps"].append(_mean([r["kbps"] for r in rows]))
        results["kbps_total"].append(8.0 * sum(r["bytes"] for r in rows) / seconds / 1000 if seconds else None)
        for key in METRICS:
            results[key].append(_mean([r[key] for r in rows]))
        for way in ("encode", "decode"):
            wall = sum(r[f"{way}_seconds"] for r in rows)
            results[f"{way}_xrt"].append(seconds / wall if wall > 0 else None)
            per_file = [r[f"{way}_xrt"] for r in rows if r[f"{way}_xrt"] is not None]
            results[f"{way}_xrt_median"].append(float(statistics.median(per_file)) if per_file else None)
            cpu = sum(r[f"{way}_cpu_seconds"] for r in rows)
            results[f"{way}_cpu_xrt"].append(seconds / cpu if cpu > 0 else None)
    return results


def run_codec(codec, clips: list[dict], points: list[float], kind: str, log=print) -> list[dict]:
    """All files at all points through one codec (after an untimed warm-up): the per-file records."""
    warm = clips[0]
    short = warm["samples"][: int(WARMUP_SECONDS * warm["rate"])]
    with one_thread():
        codec.decode(codec.encode(short, warm["rate"], points[len(points) // 2]), warm["rate"], len(short))
    records = []
    for point in points:
        started = time.perf_counter()
        rows = [measure(codec, clip, point, kind) for clip in clips]
        records.extend(rows)
        agg = aggregate(rows, [point])

        def fmt(key, spec):
            value = agg[key][0]
            return "n/a" if value is None else format(value, spec)

        log(f"  {codec.name} {point:g} kbps: {fmt('kbps', '.2f')} kbps measured, ViSQOL {fmt('visqol', '.3f')}, "
            f"STOI {fmt('stoi', '.3f')}, SI-SDR {fmt('si_sdr', '.2f')} dB, log-mel {fmt('log_mel', '.3f')}, "
            f"encode {fmt('encode_xrt', '.1f')}x, decode {fmt('decode_xrt', '.1f')}x real time "
            f"(CPU time: {fmt('encode_cpu_xrt', '.1f')}x / {fmt('decode_cpu_xrt', '.1f')}x) "
            f"({time.perf_counter() - started:.1f} s)")
    return records


# ---------------------------------------------------------------- comparisons

def _curve(results: dict, metric: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = sorted((r, q) for r, q in zip(results["kbps"], results[metric]) if r is not None and q is not None and r > 0)
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def interpolate(results: dict, metric: str, kbps: float | None) -> dict:
    """The metric of a codec's curve at a bitrate: linear in log(kbps) between the two neighbouring
    measured points. Outside the measured range there is no extrapolation: value is None, and
    "bound" holds the nearest end point ({"kbps", "value", "side"}), which still decides a
    comparison in one direction (a codec's quality is taken to grow with its rate)."""
    rates, values = _curve(results, metric)
    out = {"kbps": kbps, "value": None, "reason": None, "bound": None}
    if kbps is None:
        out["reason"] = "no bitrate to interpolate at"
    elif len(rates) < 1:
        out["reason"] = f"no {metric} values on the curve"
    elif np.any(np.diff(rates) <= 0):
        out["reason"] = "the curve's measured bitrates are not strictly increasing"
    elif not rates[0] <= kbps <= rates[-1]:
        out["reason"] = f"{kbps:.3g} kbps is outside the measured range {rates[0]:.3g}..{rates[-1]:.3g} kbps"
        low = kbps < rates[0]
        out["bound"] = {"kbps": float(rates[0] if low else rates[-1]), "value": float(values[0] if low else values[-1]),
                        "side": "the curve's lowest point, at a higher rate" if low
                                else "the curve's highest point, at a lower rate"}
    else:
        out["value"] = float(np.interp(math.log(kbps), np.log(rates), values))
    return out


def _better(test: float | None, anchor: dict, higher_is_better: bool = True) -> bool | None:
    """test at least as good as the anchor's interpolated value; with only a bound, True when test beats
    the anchor's lowest point (which has more bits) and False when it loses to its highest (fewer bits)."""
    if test is None:
        return None

    def at_least(a: float) -> bool:
        return test >= a if higher_is_better else test <= a

    if anchor["value"] is not None:
        return at_least(anchor["value"])
    bound = anchor.get("bound")
    if bound is None:
        return None
    if bound["side"].startswith("the curve's lowest"):
        return True if at_least(bound["value"]) else None
    return False if not at_least(bound["value"]) else None


def compare_points(aec: dict, opus: dict, kind: str) -> list[dict]:
    """Every aec point against Opus interpolated at the same measured bitrate (and at double it)."""
    metrics = ("visqol", "stoi", "si_sdr", "log_mel") if kind == "speech" else ("visqol", "si_sdr", "log_mel")
    rows = []
    for i, target in enumerate(aec["target_kbps"]):
        rate = aec["kbps"][i]
        row = {"aec_target_kbps": target, "aec_kbps": rate, "aec": {m: aec[m][i] for m in metrics},
               "opus_same_rate": {}, "opus_double_rate": {}}
        for m in metrics:
            row["opus_same_rate"][m] = interpolate(opus, m, rate)
            row["opus_double_rate"][m] = interpolate(opus, m, None if rate is None else 2 * rate)
        row["aec_at_least_opus_same_rate"] = {
            m: _better(row["aec"][m], row["opus_same_rate"][m], m != "log_mel") for m in metrics}
        row["aec_at_least_opus_double_rate"] = {
            m: _better(row["aec"][m], row["opus_double_rate"][m], m != "log_mel") for m in metrics}
        rows.append(row)
    return rows


def _nearest(values: list, target: float) -> int | None:
    usable = [(abs(v - target), i) for i, v in enumerate(values) if v is not None]
    return min(usable)[1] if usable else None


def headline(aec: dict, opus: dict, kind: str, rows: list[dict]) -> dict:
    """speech: the aec point targeted nearest 6 kbps vs Opus (the target: ViSQOL and STOI at least
    Opus' at the same measured bitrate; the aim: at least Opus' at double it). music: each aec point
    vs Opus at the same nominal target and interpolated at aec's measured bitrate."""
    if kind == "speech":
        i = _nearest(aec["target_kbps"], SPEECH_HEADLINE_KBPS)
        if i is None:
            return {"reason": "no aec points"}
        row = rows[i]
        return {
            "aec_target_kbps": row["aec_target_kbps"],
            "aec_kbps": row["aec_kbps"],
            "aec": {m: row["aec"][m] for m in ("visqol", "stoi")},
            "opus_same_rate": {m: row["opus_same_rate"][m] for m in ("visqol", "stoi")},
            "opus_double_rate": {m: row["opus_double_rate"][m] for m in ("visqol", "stoi")},
            "target_met": _all_true([row["aec_at_least_opus_same_rate"][m] for m in ("visqol", "stoi")]),
            "aim_met": _all_true([row["aec_at_least_opus_double_rate"][m] for m in ("visqol", "stoi")]),
            "target": "aec ViSQOL and STOI at ~6 kbps >= Opus' at the same measured bitrate",
            "aim": "... and >= Opus' at double that bitrate",
            "speed": _speed(aec, i),
        }
    out = []
    for i, target in enumerate(aec["target_kbps"]):
        j = _nearest(opus["target_kbps"], target)
        same_target = None
        if j is not None and opus["target_kbps"][j] == target:
            same_target = {"kbps": opus["kbps"][j], "visqol": opus["visqol"][j], "log_mel": opus["log_mel"][j],
                           "si_sdr": opus["si_sdr"][j]}
        out.append({"target_kbps": target, "aec": {"kbps": aec["kbps"][i], "visqol": aec["visqol"][i],
                                                   "log_mel": aec["log_mel"][i], "si_sdr": aec["si_sdr"][i]},
                    "opus_same_target": same_target,
                    "opus_same_rate": {m: rows[i]["opus_same_rate"][m] for m in ("visqol", "log_mel")}})
    return {"points": out}


def _speed(results: dict, i: int) -> dict:
    """Speeds of one point against the speech model's target (wall-clock ×real time decides)."""
    speeds = {k: results.get(k, [None] * (i + 1))[i]
              for k in ("encode_xrt", "decode_xrt", "encode_cpu_xrt", "decode_cpu_xrt")}
    met = _all_true([None if speeds[k] is None else speeds[k] >= SPEED_TARGET_XRT for k in ("encode_xrt", "decode_xrt")])
    return {**speeds, "target_xrt": SPEED_TARGET_XRT, "met": met}


def _all_true(values: list) -> bool | None:
    if any(v is None for v in values):
        return None
    return all(values)


def bd_rates(anchor: dict, test: dict, kind: str) -> dict:
    """BD-rate (percent, test vs anchor, negative = fewer bits) on each quality axis."""
    out = {}
    for axis, (metric, sign, _label) in BD_AXES.items():
        if metric == "stoi" and kind != "speech":
            continue
        qa = [None if v is None else sign * v for v in anchor[metric]]
        qt = [None if v is None else sign * v for v in test[metric]]
        try:
            out[axis] = bdrate.bd_rate(anchor["kbps"], qa, test["kbps"], qt)
        except Exception as exc:  # noqa: BLE001 - odd curves (early weights) must not stop the report
            out[axis] = {"bd_rate_percent": None, "reason": f"{type(exc).__name__}: {exc}"}
    return out


def compare(documents: dict, kind: str, subset: str | None = None) -> dict | None:
    """Headline, per-point comparisons and BD-rates of aec vs Opus (overall, or for one subset)."""
    if "aec" not in documents or "opus" not in documents:
        return None
    pick = (lambda d: d["results"]) if subset is None else (lambda d: d["results_by_subset"][subset])
    aec, opus = pick(documents["aec"]), pick(documents["opus"])
    rows = compare_points(aec, opus, kind)
    return {"headline": headline(aec, opus, kind, rows), "per_point": rows, "bd_rate": bd_rates(opus, aec, kind)}


# ---------------------------------------------------------------- runner

def _points_for(codec, points) -> list[float]:
    if points is None:
        chosen = codec.points
    elif isinstance(points, dict):
        chosen = points.get(codec.name, codec.points)
    else:
        chosen = points
    chosen = sorted(float(p) for p in chosen)
    if not chosen:
        raise ValueError(f"no bitrate points for {codec.name}")
    return chosen


def run_audio_bench(data: Path, codecs: list[str], out: Path, *, kind: str | None = None, limit: int | None = None,
                    points: list[float] | dict[str, list[float]] | None = None, model=None, log=print) -> dict:
    """Benchmark `codecs` ("aec", "opus") on the audio files under `data`; write <codec>.json, summary.json
    and rd.png to `out`. Returns the summary (as written), with the paths written under "files".

    kind: "speech" or "music" (metrics, Opus application, aec model family); None detects it (speech
    if every file is mono at ≤ 24 kHz). limit: at most that many files per subset (sub-folder).
    points: target kbps for every codec (a list) or per codec ({"opus": [...]}); None: each codec's
    defaults (speech: aec 3, 4.5, 6, 9, 12 and Opus 6, 8, 12, 16, 24; music: aec 12, 24, 48 and
    Opus 12, 24, 48, 64). model: aec model override (model name or LoadedModel; tests).
    """
    data, out = Path(data), Path(out)
    if not codecs:
        raise ValueError("no codecs to benchmark")
    for name in codecs:
        if name not in AUDIO_CODEC_NAMES:
            raise ValueError(f"unknown audio codec {name!r}; choose from {', '.join(AUDIO_CODEC_NAMES)}")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} or None, got {kind!r}")
    found = list_audio(data, limit)
    clips = []
    for subset, rel, path in found:
        samples, rate = load_audio(path)
        clips.append({"subset": subset, "file": rel, "samples": samples, "rate": rate, "channels": samples.shape[1]})
    kind = kind or detect_kind(clips)
    adapters = [get_audio_codec(name, kind, model if name == "aec" else None) for name in codecs]
    out.mkdir(parents=True, exist_ok=True)

    subsets = sorted({c["subset"] for c in clips})

    def describe(group: list[dict]) -> dict:
        formats = [f"{c['rate']}Hz x{c['channels']}" for c in group]
        return {"files": len(group), "seconds": sum(len(c["samples"]) / c["rate"] for c in group),
                "formats": {f: formats.count(f) for f in sorted(set(formats))}}

    dataset = {"name": data.resolve().name, "path": str(data.resolve()), "kind": kind, "limit_per_subset": limit,
               **describe(clips),
               "subsets": {s: describe([c for c in clips if c["subset"] == s]) for s in subsets}}
    machine = describe_machine()
    load_average = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    with one_thread():
        codec_settings = {a.name: a.settings for a in adapters}
    settings = {
        "kind": kind,
        "timing": "time.perf_counter around one encode and one decode call per file, after an untimed warm-up "
                  f"on <= {WARMUP_SECONDS:g} s of the first file; torch.set_num_threads(1); xrt = audio seconds "
                  "/ wall seconds summed over the files of a point; *_cpu_xrt: the same with process CPU seconds "
                  "(time.process_time), less sensitive to other load on the machine",
        "rate": "8 * whole-file bytes / duration / 1000 (headers included); 'kbps' is the mean over files, "
                "'kbps_total' is total bits / total seconds",
        "metrics": {
            "visqol": audio_metrics.visqol_settings(kind),
            "stoi": "pystoi 0.4 classic STOI of the mono downmix at the reference rate (speech only)",
            "si_sdr": "aecodec.dsp.si_sdr (dB), mean over channels, at the reference rate",
            "log_mel": "aecodec.dsp.log_mel_distance (64 mels, ~32 ms frames, mean |ln mel energy diff|), "
                       "mean over channels, at the reference rate; lower is better",
            "lag_samples": "cross-correlation lag of decoded vs reference (mono downmix, +-2000 samples); "
                           "0 means aligned",
        },
        "duration_limit": None,
    }
    log(f"audio bench ({kind}): {len(clips)} files ({dataset['seconds']:.1f} s) in {len(subsets)} subset(s) "
        f"from {data}, codecs {', '.join(codecs)}; machine {machine['cpu']}, {machine['cores']} cores, "
        f"load average {load_average}")

    files, documents = {}, {}
    for codec in adapters:
        codec_points = _points_for(codec, points)
        codec.points = codec_points  # the description names the points actually run
        log(f"{codec.name}: {codec.description}; points {codec_points}")
        records = run_codec(codec, clips, codec_points, kind, log)
        errors = sorted({e for r in records for e in r.get("errors", [])})
        documents[codec.name] = {
            "name": codec.name,
            "description": codec.description,
            "results": aggregate(records, codec_points),
            "results_by_subset": {s: aggregate([r for r in records if r["subset"] == s], codec_points)
                                  for s in subsets},
            "settings": {**settings, "codec": codec_settings[codec.name], "points": codec_points},
            "machine": machine,
            "dataset": dataset,
            "notes": [f"metric errors (value None): {e}" for e in errors],
            "per_file": records,
        }
        files[codec.name] = str(write_json(out / f"{codec.name}.json", documents[codec.name]))

    summary = {
        "dataset": dataset,
        "machine": machine,
        "load_average_at_start": load_average,
        "settings": settings,
        "codecs": {name: {"description": doc["description"], "settings": doc["settings"]["codec"],
                          "file": f"{name}.json"} for name, doc in documents.items()},
        "points": {name: doc["results"] for name, doc in documents.items()},
        "points_by_subset": {s: {name: doc["results_by_subset"][s] for name, doc in documents.items()}
                             for s in subsets},
        "comparison": None,
        "comparison_by_subset": None,
        "notes": [],
    }
    if "aec" in documents and "opus" in documents:
        summary["comparison"] = {
            "test": "aec", "anchor": "opus",
            "interpolation": "Opus metric at a bitrate: linear in log(kbps) between its two neighbouring measured "
                             "points; None outside Opus' measured range (no extrapolation); there the nearest "
                             "Opus point ('bound') decides a comparison only when it is conclusive (aec beats "
                             "Opus' lowest point, which has more bits, or loses to its highest, which has fewer), "
                             "else the verdict is None",
            "bd_rate_method": f"bjontegaard.bd_rate, {bdrate.METHOD}, over the quality range both curves cover; "
                              "negative = aec needs fewer bits; log-mel enters negated (higher = better)",
            **compare(documents, kind),
        }
        summary["comparison_by_subset"] = {s: compare(documents, kind, s) for s in subsets}
    else:
        summary["notes"].append("no aec-vs-Opus comparison: it needs both codecs")

    panels = ([("visqol", "ViSQOL MOS-LQO (speech mode, 16 kHz)"), ("stoi", "STOI")] if kind == "speech" else
              [("visqol", "ViSQOL MOS-LQO (audio mode, 48 kHz)"), ("log_mel", "log-mel distance (lower is better)")])
    curves = []
    for index, (name, doc) in enumerate(documents.items()):
        color = f"C{index}"
        curves.append({"name": f"{name} (all {len(clips)} files)", "results": doc["results"],
                       "style": {"color": color, "marker": "o", "linestyle": "-", "linewidth": 2}})
        if len(subsets) > 1:
            for k, s in enumerate(subsets):
                curves.append({"name": f"{name} {s}", "results": doc["results_by_subset"][s],
                               "style": {"color": color, "marker": "xs^v"[k % 4], "linestyle": [":", "--", "-."][k % 3],
                                         "linewidth": 1, "alpha": 0.7}})
    title = f"{dataset['name']} ({kind}, {len(clips)} files, {dataset['seconds']:.0f} s) on {machine['cpu']}"
    files["plot"] = str(plot_rd_panels(curves, panels, out / "rd.png", title))
    files["summary"] = str(out / "summary.json")
    summary["files"] = files
    write_json(out / "summary.json", summary)
    log(f"wrote {', '.join(files.values())}")
    return _json_safe(summary)
