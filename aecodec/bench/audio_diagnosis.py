"""Why is audio quality flat across bitrates? Measurements on a few evaluation files (issue 16).

    python -m aecodec.bench.audio_diagnosis --weights aecodec/weights/audio-speech-v1.safetensors \
        --data ../shared/data/audio/speech/eval --files 8 --json out.json

One torch thread. For each level: the rate (from the model's own likelihoods of the rounded
latents, bits per channel), log-mel distance and STOI of the decoded signal without and with the
band-energy envelope, and the same for:
  * ``unquantized``: g_s(g_a(x)) with no rounding (the decoder's ceiling);
  * ``means only``: every y symbol zero (ŷ = μ from the hyperprior alone, ~0 bits for y);
  * ``other file``: the latents of another file (does the output depend on the latents at all
    once the envelope has rescaled it?);
the loss terms of ``train.audio.SpectralDistortion`` per level, and the decoder's sensitivity to
each latent channel (log-mel change when that channel's symbols are zeroed) against its bits.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from aecodec import dsp, envelope


def _stoi(ref: np.ndarray, test: np.ndarray, rate: int) -> float:
    from pystoi import stoi

    return float(stoi(ref, test, rate, extended=False))


def load_net(weights: Path, family: str):
    """A training-form network (CompressAI entropy models, for likelihoods) from safetensors or a checkpoint."""
    from aecodec.models.audio import build_family

    net = build_family(family)
    if weights.suffix == ".pt":
        state = torch.load(weights, map_location="cpu", weights_only=True)["model"]
        net.load_state_dict(state)
        net.update_tables()
    else:
        from safetensors.torch import load_file

        net.load_state_dict(load_file(str(weights)))
    return net.eval()


def pick_files(data: Path, n: int) -> list[Path]:
    """n files spread over the subsets (sorted, every k-th of each subset)."""
    subsets = sorted(p for p in data.iterdir() if p.is_dir()) or [data]
    out = []
    for s in subsets:
        files = sorted(p for p in s.rglob("*") if p.suffix.lower() in (".flac", ".wav"))
        k = max(1, len(files) // max(1, n // len(subsets)))
        out += files[::k][: max(1, n // len(subsets))]
    return out


def load(path: Path, rate: int) -> np.ndarray:
    import soundfile as sf
    import soxr

    x, r = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if r != rate:
        x = soxr.resample(x, r, rate, quality="HQ").astype(np.float32)
    return x


class Coded:
    """One file through the network at one level, in the codec's order of operations."""

    def __init__(self, net, x: np.ndarray, level: int):
        self.net, self.n = net, len(x)
        pad = (-len(x)) % net.align
        self.x = torch.from_numpy(np.pad(x, (0, pad)))[None, None]
        q = torch.tensor([float(level)])
        self.gain, self.inv_gain = net.gains(q)
        self.y = net.g_a(self.x) * self.gain
        z = net.h_a(self.y)
        med = net._medians()
        z_hat = torch.round(z - med) + med
        _, z_lk = net.entropy_bottleneck(z_hat, training=False)
        self.means, self.scales = net.h_s(z_hat).chunk(2, 1)
        self.symbols = torch.round(self.y - self.means)
        y_hat = self.symbols + self.means
        y_lk = net.gaussian_conditional._likelihood(y_hat, self.scales, self.means)
        y_lk = net.gaussian_conditional.likelihood_lower_bound(y_lk)
        seconds = self.n / net.sample_rate
        self.bits_per_channel = (-torch.log2(y_lk))[0].sum(-1).numpy() / seconds / 1000  # kbps per channel
        self.kbps_y = float(self.bits_per_channel.sum())
        self.kbps_z = float(-torch.log2(z_lk).sum()) / seconds / 1000

    def decode(self, symbols: torch.Tensor | None = None) -> np.ndarray:
        s = self.symbols if symbols is None else symbols
        return self.synth((s + self.means) * self.inv_gain)

    def synth(self, latent: torch.Tensor) -> np.ndarray:
        return self.net.g_s(latent).clamp(-1, 1)[0, 0, : self.n].numpy()

    def unquantized(self) -> np.ndarray:
        return self.synth(self.y * self.inv_gain)


def with_envelope(x_ref: np.ndarray, out: np.ndarray, rate: int) -> np.ndarray:
    q = envelope.decode(envelope.encode(x_ref, rate), len(out), rate)
    return envelope.apply(out.astype(np.float32), q, rate)


def scores(ref: np.ndarray, out: np.ndarray, rate: int) -> dict:
    env = with_envelope(ref, out, rate)
    return {"logmel": dsp.log_mel_distance(ref, out, rate), "stoi": _stoi(ref, out, rate),
            "logmel_env": dsp.log_mel_distance(ref, env, rate), "stoi_env": _stoi(ref, env, rate),
            "si_sdr": dsp.si_sdr(ref, out)}


def loss_terms(x_hat: np.ndarray, x: np.ndarray, rate: int, waveform_weight: float = 5.0) -> dict:
    """The training distortion's terms (train.audio.SpectralDistortion) separately, on 0.5 s excerpts."""
    from aecodec.train.audio import SpectralDistortion, default_fft_sizes

    sizes = default_fft_sizes(rate)
    d = SpectralDistortion(rate, sizes, 64, waveform_weight)
    L = int(0.48 * rate)
    n = len(x) // L
    a = torch.from_numpy(np.ascontiguousarray(x_hat[: n * L].reshape(n, 1, L)))
    b = torch.from_numpy(np.ascontiguousarray(x[: n * L].reshape(n, 1, L)))
    out = {"sc": 0.0, "logmag": 0.0}
    for s in sizes:
        ma, mb = d._mag(a, s), d._mag(b, s)
        out["sc"] += float((torch.linalg.norm(ma - mb, dim=(1, 2)) / torch.linalg.norm(mb, dim=(1, 2))).mean()) / len(sizes)
        out["logmag"] += float((ma.log() - mb.log()).abs().mean()) / len(sizes)
        if s == max(sizes):
            mel_a = torch.log(torch.einsum("mf,bft->bmt", d.mel, ma.pow(2)) + 1e-5)
            mel_b = torch.log(torch.einsum("mf,bft->bmt", d.mel, mb.pow(2)) + 1e-5)
            out["mel"] = float((mel_a - mel_b).abs().mean())
    out["waveform_x5"] = waveform_weight * float((a - b).abs().mean())
    out["waveform_x5_if_silent"] = waveform_weight * float(b.abs().mean())  # what x̂ = 0 would score
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, default=Path("aecodec/weights/audio-speech-v1.safetensors"))
    ap.add_argument("--family", default="speech")
    ap.add_argument("--data", type=Path, default=Path("../shared/data/audio/speech/eval"))
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--sensitivity", action="store_true", help="per-channel decoder sensitivity (slower)")
    ap.add_argument("--quick", action="store_true", help="levels' log-mel/STOI only (for checkpoints)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    net = load_net(args.weights, args.family)
    rate = net.sample_rate
    files = pick_files(args.data, args.files)
    signals = [load(p, rate) for p in files]
    rows: dict[str, list[dict]] = {}
    terms: dict[str, list[dict]] = {}
    per_channel_bits = {}
    sensitivity = []

    def add(key, ref, out, with_terms=False):
        rows.setdefault(key, []).append(scores(ref, out, rate))
        if with_terms and not args.quick:
            terms.setdefault(key, []).append(loss_terms(out, ref, rate))

    with torch.no_grad():
        for i, x in enumerate(signals):
            for level in range(net.levels):
                c = Coded(net, x, level)
                add(f"level {level}", x, c.decode(), True)
                rows[f"level {level}"][-1].update(kbps_y=c.kbps_y, kbps_z=c.kbps_z)
                per_channel_bits.setdefault(level, []).append(c.bits_per_channel)
                if args.quick:
                    continue
                add(f"level {level} unquantized", x, c.unquantized(), True)
                if level == 0:
                    add("means only (y symbols 0)", x, c.decode(torch.zeros_like(c.symbols)), True)
                    other = signals[(i + 1) % len(signals)]
                    o = Coded(net, np.resize(other, len(x)), level)
                    add("other file's latents", x, o.decode(), False)
                if args.sensitivity and level == net.levels - 1 and i < 3:
                    base = dsp.log_mel_distance(x, c.decode(), rate)
                    sens = []
                    for ch in range(net.M):
                        s = c.symbols.clone()
                        s[:, ch] = 0
                        sens.append(dsp.log_mel_distance(x, c.decode(s), rate) - base)
                    sensitivity.append(sens)
    summary = {"weights": str(args.weights), "files": [str(p) for p in files],
               "rows": {k: {m: round(float(np.mean([r[m] for r in v])), 4) for m in v[0]} for k, v in rows.items()},
               "loss_terms": {k: {m: round(float(np.mean([r[m] for r in v])), 4) for m in v[0]} for k, v in terms.items()}}
    bits = {lvl: np.mean(v, axis=0) for lvl, v in per_channel_bits.items()}
    summary["rate_allocation"] = {
        f"level {lvl}": {"kbps_y": round(float(b.sum()), 3),
                         "channels_over_0.05kbps": int((b > 0.05).sum()),
                         "top8_share": round(float(np.sort(b)[::-1][:8].sum() / max(b.sum(), 1e-9)), 3),
                         "kbps_per_channel_sorted": [round(float(v), 3) for v in np.sort(b)[::-1][:16]]}
        for lvl, b in bits.items()}
    if sensitivity:
        sens = np.mean(sensitivity, axis=0)
        b = bits[net.levels - 1]
        order = np.argsort(-b)
        summary["sensitivity_top_level"] = {
            "corr_bits_vs_logmel_increase": round(float(np.corrcoef(b, sens)[0, 1]), 3),
            "by_bits_rank": [{"channel": int(ch), "kbps": round(float(b[ch]), 3),
                              "logmel_increase_if_zeroed": round(float(sens[ch]), 4)} for ch in order[:12]],
            "channels_mattering(>0.005)": int((sens > 0.005).sum()),
            "bits_on_channels_that_do_not_matter_kbps": round(float(b[sens <= 0.005].sum()), 3)}
    text = json.dumps(summary, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
