"""Peak memory and speed of encoding and decoding one hour of audio (default: 16 kHz mono speech).

    speech clips of ../shared/data (or a synthetic signal) repeated ─soundfile, block-wise─> 1 h FLAC
        ─child: aecodec encode -b KBPS─> .aec ─child: aecodec decode─> .wav
    peak RSS of each child (getrusage ru_maxrss), wall time, × real time

    python benchmarks/audio_memory.py --out benchmarks/results/audio/memory_1h.json
    python benchmarks/audio_memory.py --rate 48000 --channels 2 --kbps 24 --out benchmarks/results/audio/memory_1h_music.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from aecodec.bench.machine import describe_machine, run_cli_child

DEFAULT_CLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "audio" / "speech" / "eval"
LIMIT_MIB = 1024


def source_material(clips: Path, rate: int, seconds: float = 120.0) -> np.ndarray:
    """A couple of minutes of real speech (resampled), or a synthetic signal when no data is there."""
    import soxr

    files = sorted(clips.rglob("*.flac"))[:40] if clips.is_dir() else []
    parts, total = [], 0
    for f in files:
        x, r = sf.read(str(f), dtype="float32")
        if x.ndim > 1:
            x = x.mean(axis=1)
        parts.append(soxr.resample(x, r, rate).astype(np.float32))
        total += len(parts[-1])
        if total >= seconds * rate:
            break
    if parts:
        return np.concatenate(parts)
    from aecodec.testing import gliding_tone  # noqa: PLC0415 - synthetic fallback

    return gliding_tone(seconds, rate)


def write_long_file(path: Path, material: np.ndarray, rate: int, channels: int, seconds: float) -> int:
    """Repeat the material block by block (never the whole hour in memory)."""
    frames = int(seconds * rate)
    with sf.SoundFile(str(path), "w", rate, channels, format="FLAC", subtype="PCM_16") as f:
        done = 0
        while done < frames:
            n = min(len(material), frames - done)
            block = material[:n]
            if channels == 2:
                block = np.stack([block, np.roll(block, 97) * 0.8], axis=1)
            f.write(block)
            done += n
    return frames


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3600.0)
    ap.add_argument("--rate", type=int, default=16000)
    ap.add_argument("--channels", type=int, default=1, choices=[1, 2])
    ap.add_argument("--kbps", default="6")
    ap.add_argument("--clips", type=Path, default=DEFAULT_CLIPS, help="folder of speech FLAC files to repeat")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "long.flac"
        frames = write_long_file(src, source_material(args.clips, args.rate), args.rate, args.channels, args.seconds)
        enc_s, enc_mib = run_cli_child(["encode", str(src), "-o", str(tmp / "long.aec"), "-b", args.kbps, "--quiet"])
        size = (tmp / "long.aec").stat().st_size
        dec_s, dec_mib = run_cli_child(["decode", str(tmp / "long.aec"), "-o", str(tmp / "out.wav"), "--quiet"])
        info = sf.info(str(tmp / "out.wav"))
        assert (info.frames, info.samplerate, info.channels) == (frames, args.rate, args.channels)
    seconds = frames / args.rate
    doc = {
        "name": "audio_memory", "description": __doc__.splitlines()[0], "machine": describe_machine(),
        "seconds": seconds, "sample_rate": args.rate, "channels": args.channels, "kbps_requested": float(args.kbps),
        "bytes": size, "kbps": round(8 * size / 1000 / seconds, 3),
        "encode_seconds": round(enc_s, 2), "encode_realtime_factor": round(seconds / enc_s, 1),
        "encode_peak_rss_mib": round(enc_mib, 1),
        "decode_seconds": round(dec_s, 2), "decode_realtime_factor": round(seconds / dec_s, 1),
        "decode_peak_rss_mib": round(dec_mib, 1), "limit_mib": LIMIT_MIB,
        "note": "wall times of whole CLI processes (start-up and model loading included), default torch threads",
    }
    print(json.dumps(doc, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return 0 if max(enc_mib, dec_mib) < LIMIT_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
