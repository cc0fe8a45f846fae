"""Does encode-time latent refinement (the image codec's ``--effort``) pay for speech? (issue 15)

    file ─resample─> x ─g_a·gain─> y_q ─h_a─> ẑ (kept) ─h_s─> (μ, σ)
    Adam on y_q, model frozen, stochastic soft rounding (aecodec.effort.soft_round) for
        cost = kbps(ŷ) + λ · D(g_s(ŷ · inv_gain), x)     D: the training distortion (train.audio.SpectralDistortion)
    y symbols = round(y_q − μ) ─aecodec range coder─> real y bytes
    decoded as the codec decodes (envelope applied) ─> log-mel distance, STOI; same files at effort 0

Rates are y's real coded bytes (z is unchanged by refinement, the envelope too). One torch thread.
``--end-to-end``: the shipped path instead, ``aecodec.audio.compress(kbps, effort=e)`` for each
effort (whole files: real file bytes, headers and envelope included; decoded by the codec).

    python benchmarks/audio_effort.py --files 4 --steps 60 --out benchmarks/results/audio/effort.json
    python benchmarks/audio_effort.py --files 4 --end-to-end --kbps 6 --efforts 0,3,5,9 \
        --out benchmarks/results/audio/effort_end_to_end.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from aecodec import coding, effort, registry
from aecodec.bench.audio_diagnosis import _stoi, load, pick_files, with_envelope
from aecodec.bench.machine import describe_machine
from aecodec.dsp import log_mel_distance
from aecodec.models.hyperprior import gaussian_bits

EVAL = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "audio" / "speech" / "eval"


def refine(net, x: torch.Tensor, y_q: torch.Tensor, z_sym: np.ndarray, level: float, lam: float, steps: int,
           distortion) -> torch.Tensor:
    """y_q refined for kbps + λ·D (the image refinement's loop with the audio model's distortion)."""
    indexes, means = net.hyper_decode(z_sym)
    mu = means.float()
    sigma = net.gaussian_conditional.scale_table.float()[torch.from_numpy(indexes).long()][None]
    _, inv_gain = net.gains(torch.tensor([float(level)]))
    seconds = x.shape[-1] / net.sample_rate

    def cost(latent, round_fn):
        r = round_fn(latent - mu)
        x_hat = net.g_s((mu + r) * inv_gain)
        return gaussian_bits(r, sigma).sum() / seconds / 1000 + lam * distortion(x_hat, x).mean()

    start = y_q.detach().float()
    y = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=effort.LEARNING_RATE)
    gen = torch.Generator().manual_seed(0)
    with torch.enable_grad():
        for t in range(steps):
            tau = effort.TAU_START * math.exp(math.log(effort.TAU_END / effort.TAU_START) * t / max(1, steps - 1))
            loss = cost(y, lambda r: effort.soft_round(r, tau, gen))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        return y.detach() if cost(y.detach(), torch.round) < cost(start, torch.round) else start


def code_and_decode(net, y_q: torch.Tensor, z_sym: np.ndarray, level: float, n: int) -> tuple[int, np.ndarray]:
    """Real y bytes of the latent and the waveform the decoder makes of them (no envelope yet)."""
    z, y_sym, y_idx = net.quantize(y_q, z_sym, level)
    payload = coding.encode_latents(net, z, y_sym, y_idx, net.z_tables().precision, 0)
    z_len, y_len, _ = coding.LATENT_HEAD.unpack_from(payload)
    _, means = net.hyper_decode(z)
    with torch.no_grad():
        out = net.synthesize(y_sym, means, level)[0, 0, :n].numpy()
    return y_len, out


def end_to_end(files: list[Path], kbps: float, efforts: list[int]) -> list[dict]:
    """Whole files through aecodec.audio.compress / decompress at each effort (same run)."""
    import soundfile as sf

    from aecodec import audio

    rows = []
    for e in efforts:
        total = {"bytes": 0, "seconds": 0.0, "logmel": 0.0, "stoi": 0.0, "encode_s": 0.0, "decode_s": 0.0}
        for path in files:
            x, rate = sf.read(str(path), dtype="float32")
            t0 = time.perf_counter()
            blob = audio.compress(x, rate, kbps, effort=e, threads=1)
            t1 = time.perf_counter()
            out = audio.decompress(blob)[0].reshape(-1)
            total["decode_s"] += time.perf_counter() - t1
            total["encode_s"] += t1 - t0
            s = len(x) / rate
            total["bytes"] += len(blob)
            total["seconds"] += s
            total["logmel"] += log_mel_distance(x, out, rate) * s
            total["stoi"] += _stoi(x, out, rate) * s
        s = total["seconds"]
        rows.append({"kbps_requested": kbps, "effort": e, "files": len(files), "seconds_audio": round(s, 2),
                     "kbps": round(8 * total["bytes"] / s / 1000, 3), "logmel": round(total["logmel"] / s, 4),
                     "stoi": round(total["stoi"] / s, 4), "encode_seconds": round(total["encode_s"], 1),
                     "encode_realtime_factor": round(s / total["encode_s"], 2),
                     "decode_seconds": round(total["decode_s"], 2)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=EVAL)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--levels", default="0,1")
    ap.add_argument("--lambdas", default="2,8")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--end-to-end", action="store_true")
    ap.add_argument("--kbps", type=float, default=6.0)
    ap.add_argument("--efforts", default="0,3,5,9")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.end_to_end:
        files = pick_files(args.data, args.files)
        rows = end_to_end(files, args.kbps, [int(v) for v in args.efforts.split(",")])
        doc = {"name": "audio_effort_end_to_end", "description": __doc__.splitlines()[0],
               "machine": describe_machine(), "files": [p.name for p in files], "rows": rows}
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(doc, indent=1) + "\n")
        return 0
    from aecodec.train.audio import SpectralDistortion, default_fft_sizes

    loaded = registry.load("audio-speech-v1")
    net, rate = loaded.net, loaded.net.sample_rate
    distortion = SpectralDistortion(rate, default_fft_sizes(rate), 64, 5.0)  # v1's training distortion
    files = pick_files(args.data, args.files)
    rows = []
    for level in (float(v) for v in args.levels.split(",")):
        for lam in [0.0] + [float(v) for v in args.lambdas.split(",")]:  # λ 0 marks effort 0 (no refinement)
            total = {"y_bytes": 0, "seconds": 0.0, "logmel_env": 0.0, "stoi_env": 0.0, "encode_s": 0.0}
            for path in files:
                ref = load(path, rate)
                pad = (-len(ref)) % net.align
                x = torch.from_numpy(np.pad(ref, (0, pad)))[None, None]
                t0 = time.perf_counter()
                with torch.no_grad():
                    y_q, z_sym = net.scaled_latent(net.g_a(x), level)
                if lam:
                    y_q = refine(net, x, y_q, z_sym, level, lam, args.steps, distortion)
                total["encode_s"] += time.perf_counter() - t0
                y_bytes, out = code_and_decode(net, y_q, z_sym, level, len(ref))
                env = with_envelope(ref, out, rate)
                total["y_bytes"] += y_bytes
                total["seconds"] += len(ref) / rate
                total["logmel_env"] += log_mel_distance(ref, env, rate) * len(ref) / rate
                total["stoi_env"] += _stoi(ref, env, rate) * len(ref) / rate
            s = total["seconds"]
            row = {"level": level, "lambda": lam, "steps": args.steps if lam else 0, "files": len(files),
                   "seconds_audio": round(s, 2), "y_kbps": round(8 * total["y_bytes"] / s / 1000, 3),
                   "logmel_env": round(total["logmel_env"] / s, 4), "stoi_env": round(total["stoi_env"] / s, 4),
                   "encode_seconds": round(total["encode_s"], 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    doc = {"name": "audio_effort", "description": __doc__.splitlines()[0], "machine": describe_machine(),
           "model": "audio-speech-v1", "files": [p.name for p in files], "rows": rows}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
