"""Training of the audio models: random mono excerpts, spectral distortion plus rate.

    folder(s) ─read, resample to the model rate (soxr)─> mono signals in memory
        ─random excerpt, channel mix, gain─> batch [B,1,T]
        ─model(x, q ~ U{levels})─> x̂, likelihoods
    loss = D(x̂, x) + mean(β_q · kbps / target_kbps_q) + aux
    D    = multi-resolution STFT (spectral convergence + log magnitude) + log-mel L1 + w·|x̂ − x|

β_q, one per quality level, is steered by a rate controller: after each step
log β_q moves by η·(measured/target − 1), so each level converges to its
target bitrate instead of to whatever a hand-picked λ gives. β lives in the
checkpoint (all ranks apply the same all-reduced update).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from aecodec.io.audio import AUDIO_SUFFIXES
from aecodec.models.audio import AUDIO_FAMILIES, build_family
from aecodec.models.audio_loss import SpectralDistortion, default_fft_sizes  # noqa: F401 - re-exported
from aecodec.train.common import (
    JsonLog,
    all_finite,
    compile_transforms,
    learning_rate,
    load_checkpoint,
    save_checkpoint,
    set_training_precision,
    setup_distributed,
    teardown_distributed,
    wrap_ddp,
)



@dataclass
class AudioTrainConfig:
    data: list[Path]
    out: Path
    family: str = "speech"
    steps: int = 20000
    batch_size: int = 16
    seconds: float = 0.5  # excerpt length
    lr: float = 3e-4
    device: str = "auto"
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 250
    threads: int = 0
    precision: str = "fp32"  # or "bf16": transforms under autocast (see GainedHyperprior._transform)
    compile: bool = False  # torch.compile the transforms (see common.compile_transforms)
    init: Path | None = None
    straight_through_from: float = 0.5
    waveform_weight: float = 5.0
    rate_eta: float = 0.01  # rate controller step on log β
    gain_lr_factor: float = 20.0
    fft_sizes: tuple[int, ...] = field(default=())
    # v2 (issue 16): None keeps v1's loss (terms summed; the log-magnitude term's gradient on x̂
    # is ~40x the mel term's and ~5000x the waveform term's, so it alone steers the decoder).
    # A dict {term: weight} balances the terms' gradients on x̂ instead (EnCodec's balancer).
    balance: dict | None = None
    mel_windows: tuple[int, ...] = field(default=())  # extra multi-scale log-mel terms (DAC style)
    balance_norm: float = 70.0  # norm of the balanced distortion gradient on x̂ (v1's was ~70: keeps β's scale)
    init_log_beta: tuple[float, ...] | None = None  # start of the rate controller (new runs)
    log_beta_min: float = -8.0
    stop_at: int | None = None  # pause the run after this step (checkpointed; the schedule still spans ``steps``)


def load_signals(folders: list[Path], sample_rate: int) -> list[np.ndarray]:
    """Every audio file under the folders as float32 signals at sample_rate, one per channel."""
    import soundfile as sf
    import soxr

    paths = sorted(p for folder in folders for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) under {', '.join(map(str, folders))}")
    signals = []
    for p in paths:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
        if rate != sample_rate:
            data = soxr.resample(data, rate, sample_rate, quality="HQ").astype(np.float32)
        for c in range(data.shape[1]):
            signals.append(np.ascontiguousarray(data[:, c]))
    return signals


class ExcerptDataset:
    """Random excerpts of the loaded signals: random position, random gain, silent ones redrawn."""

    def __init__(self, signals: list[np.ndarray], length: int, seed: int):
        self.signals = [s for s in signals if len(s) >= length]
        if not self.signals:
            raise ValueError(f"no training signal is at least {length} samples long")
        weights = np.array([len(s) for s in self.signals], dtype=np.float64)
        self.p = weights / weights.sum()
        self.length = length
        self.rng = np.random.default_rng(seed)

    def excerpt(self) -> np.ndarray:
        for _ in range(8):
            s = self.signals[self.rng.choice(len(self.signals), p=self.p)]
            i = self.rng.integers(len(s) - self.length + 1)
            x = s[i : i + self.length]
            if np.sqrt(np.mean(x**2)) > 1e-3:
                break
        peak = float(np.max(np.abs(x))) or 1.0
        level = 10 ** (self.rng.uniform(-20.0, 0.0) / 20)  # peak between -20 and 0 dBFS
        return x * (level / peak)

    def batch(self, n: int) -> Tensor:
        return torch.from_numpy(np.stack([self.excerpt() for _ in range(n)]).astype(np.float32))[:, None]


class Balancer:
    """EnCodec's loss balancer (Défossez et al. 2022, §3.4) over the distortion terms.

    Each term's gradient on the decoder output x̂ is rescaled so that its share of the total is its
    weight, whatever its natural scale: g = norm · Σ_i (w_i / Σw) · g_i / EMA(‖g_i‖). Without it the
    summed v1 loss was steered by its log-magnitude term alone (see benchmarks/results/audio/
    diagnosis.md). The norms' running means are all-reduced under DDP so every rank scales alike.
    """

    def __init__(self, weights: dict, norm: float, decay: float = 0.99):
        self.weights = {k: float(v) for k, v in weights.items() if float(v) > 0}
        self.norm, self.decay = float(norm), decay
        self.ema: dict[str, float] = {}

    def gradient(self, terms: dict[str, Tensor], leaf: Tensor, env) -> Tensor:
        grads = [torch.autograd.grad(terms[k], leaf, retain_graph=True)[0] for k in self.weights]
        norms = torch.stack([g.norm() for g in grads])
        if env.world_size > 1:
            dist.all_reduce(norms)
            norms /= env.world_size
        total = sum(self.weights.values())
        out = torch.zeros_like(leaf)
        for (k, w), g, n in zip(self.weights.items(), grads, norms.tolist()):
            self.ema[k] = n if k not in self.ema else self.decay * self.ema[k] + (1 - self.decay) * n
            out += (self.norm * w / total / max(self.ema[k], 1e-12)) * g
        return out


def kbps_per_sample(out: dict, samples: int, sample_rate: int) -> Tensor:
    bits = sum(torch.log(lk).flatten(1).sum(1) for lk in out["likelihoods"].values()) / -math.log(2)
    return bits / (samples / sample_rate) / 1000.0


def _mean_or_none(values: np.ndarray) -> float | None:
    """Mean of the logged values of one level (None when no batch drew that level: JSON has no NaN)."""
    seen = values[~np.isnan(values)]
    return round(float(seen.mean()), 3) if len(seen) else None


def train_audio(cfg: AudioTrainConfig) -> Path:
    """Train (or resume) a run in cfg.out; returns the checkpoint path."""
    if cfg.family not in AUDIO_FAMILIES:
        raise ValueError(f"unknown audio family {cfg.family!r}")
    env = setup_distributed(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + env.rank)
    cfg.out.mkdir(parents=True, exist_ok=True)
    model = build_family(cfg.family).to(env.device)
    set_training_precision(model, cfg.precision)
    if cfg.compile:
        compile_transforms(model)
    sr = model.sample_rate
    length = max(model.align, int(round(cfg.seconds * sr / model.align)) * model.align)
    data = ExcerptDataset(load_signals(cfg.data, sr), length, cfg.seed + 1000 * env.rank)
    fft_sizes = cfg.fft_sizes or default_fft_sizes(sr)
    distortion = SpectralDistortion(sr, fft_sizes, 64 if sr <= 24000 else 80, cfg.waveform_weight,
                                    cfg.mel_windows).to(env.device)
    balancer = Balancer(cfg.balance, cfg.balance_norm) if cfg.balance else None
    quantiles = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    gains = [model.gain, model.inv_gain]
    others = [p for n, p in model.named_parameters() if not n.endswith("quantiles") and n not in ("gain", "inv_gain")]
    # The gains must move from their initial 0.5..2 spread to whatever separates the
    # target rates (often ×10): at the base rate they would take far longer than a run.
    optimizer = torch.optim.Adam([{"params": others}, {"params": quantiles, "lr": 1e-3},
                                  {"params": gains, "lr": cfg.lr * cfg.gain_lr_factor}], lr=cfg.lr, betas=(0.8, 0.99))
    targets = torch.tensor(model.target_kbps, device=env.device)
    log_beta = torch.zeros(model.levels, device=env.device)
    ckpt = cfg.out / "checkpoint.pt"
    step = 0
    if ckpt.exists():
        try:
            step, extra = load_checkpoint(ckpt, model, optimizer)
        except ValueError:  # a checkpoint from before the optimizer gained a group: fresh moments
            step, extra = load_checkpoint(ckpt, model, None)
        log_beta = torch.tensor(extra.get("log_beta", [0.0] * model.levels), device=env.device)
        data.rng = np.random.default_rng(cfg.seed + 1000 * env.rank + step)
    elif cfg.init is not None:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(cfg.init)))
    if not ckpt.exists() and cfg.init_log_beta is not None:  # a new run: the rate controller's start
        log_beta = torch.tensor([float(b) for b in cfg.init_log_beta], device=env.device)
    net = wrap_ddp(model, env)
    log = JsonLog(cfg.out / "train.log", enabled=env.is_main)
    log.write(event="start", family=cfg.family, step=step, steps=cfg.steps, batch_size=cfg.batch_size,
              samples=length, lr=cfg.lr, precision=cfg.precision, compile=cfg.compile, fft_sizes=list(fft_sizes),
              world_size=env.world_size, device=str(env.device),
              **({"balance": cfg.balance, "balance_norm": cfg.balance_norm, "mel_windows": list(cfg.mel_windows),
                  "straight_through_from": cfg.straight_through_from, "init": str(cfg.init)} if cfg.balance else {}))
    t_last, window = time.time(), []
    model.train()
    while step < (min(cfg.steps, cfg.stop_at) if cfg.stop_at else cfg.steps):
        lr = learning_rate(step, cfg.steps, cfg.lr)
        optimizer.param_groups[0]["lr"] = lr
        optimizer.param_groups[2]["lr"] = lr * cfg.gain_lr_factor
        x = data.batch(cfg.batch_size).to(env.device)
        q = torch.randint(0, model.levels, (x.shape[0],), device=env.device)
        out = net(x, q, step >= int(cfg.straight_through_from * cfg.steps))
        kbps = kbps_per_sample(out, length, sr)
        relative = kbps / targets[q]
        rate_loss = (log_beta[q].exp() * relative).mean()
        aux = model.aux_loss()
        optimizer.zero_grad(set_to_none=True)
        if balancer is None:
            d_per_sample = distortion(out["x_hat"], x)
            d = d_per_sample.mean()
            loss = d + rate_loss
            if not all_finite(loss, env):
                log.write(event="skipped non-finite loss", step=step)
                step += 1
                continue
            (loss + aux).backward()
        else:
            x_hat = out["x_hat"]
            leaf = x_hat.detach().requires_grad_(True)
            terms = distortion.terms(leaf, x)
            # logged "distortion": the log-mel term (what the benchmark's log-mel distance tracks)
            d_per_sample = terms["mel"].detach()
            d = d_per_sample.mean()
            loss = d + rate_loss
            if not all_finite(loss + sum(terms[k].mean() for k in balancer.weights), env):
                log.write(event="skipped non-finite loss", step=step)
                step += 1
                continue
            grad = balancer.gradient({k: terms[k].mean() for k in balancer.weights}, leaf, env)
            torch.autograd.backward([x_hat, rate_loss + aux], [grad, None])
        torch.nn.utils.clip_grad_norm_(others, 1.0)
        optimizer.step()
        # rate controller: the same update on every rank
        with torch.no_grad():
            stats = torch.zeros(2, model.levels, device=env.device)
            stats[0].index_add_(0, q, relative.detach())
            stats[1].index_add_(0, q, torch.ones_like(relative))
            if env.world_size > 1:
                dist.all_reduce(stats)
            seen = stats[1] > 0
            ratio = stats[0][seen] / stats[1][seen]
            log_beta[seen] = (log_beta[seen] + cfg.rate_eta * (ratio - 1).clamp(-1, 1)).clamp(cfg.log_beta_min, 8)
        step += 1
        # per level: kbps, then distortion (a level whose distortion does not fall as its
        # rate rises is a decoder that does not use the extra bits)
        per_level = [float("nan")] * (2 * model.levels)
        for lvl in range(model.levels):
            sel = q == lvl
            if sel.any():
                per_level[lvl] = kbps[sel].mean().item()
                per_level[model.levels + lvl] = d_per_sample[sel].mean().item()
        window.append([loss.item(), d.item(), aux.item()] + per_level)
        if step % cfg.log_every == 0 or step == cfg.steps:
            w = np.array(window)
            log.write(step=step, loss=round(float(w[:, 0].mean()), 5), distortion=round(float(w[:, 1].mean()), 5),
                      aux=round(float(w[:, 2].mean()), 3),
                      kbps=[_mean_or_none(w[:, 3 + i]) for i in range(model.levels)],
                      distortion_per_level=[_mean_or_none(w[:, 3 + model.levels + i]) for i in range(model.levels)],
                      beta=[round(float(b), 4) for b in log_beta.exp()], lr=lr,
                      s_per_step=round((time.time() - t_last) / len(window), 4))
            window, t_last = [], time.time()
        if env.is_main and (step % cfg.checkpoint_every == 0 or step in (cfg.steps, cfg.stop_at)):
            save_checkpoint(ckpt, model, optimizer, step, {"family": cfg.family, "log_beta": log_beta.tolist()})
    teardown_distributed(env)
    return ckpt


def main(argv=None) -> int:
    """``python -m aecodec.train.audio``: the v2 options the CLI does not expose (balancer, mel scales)."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description="train an audio model (v2 options)")
    ap.add_argument("--data", type=Path, action="append", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--family", default="speech")
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--init", type=Path)
    ap.add_argument("--init-log-beta", type=float, nargs="+")
    ap.add_argument("--straight-through-from", type=float, default=0.5)
    ap.add_argument("--balance", type=json.loads, help='JSON {term: weight}, terms: sc logmag mel waveform multimel')
    ap.add_argument("--balance-norm", type=float, default=70.0)
    ap.add_argument("--mel-windows", type=int, nargs="*", default=[])
    ap.add_argument("--rate-eta", type=float, default=0.01)
    ap.add_argument("--log-beta-min", type=float, default=-8.0)
    ap.add_argument("--checkpoint-every", type=int, default=250)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--stop-at", type=int)
    ap.add_argument("--export", type=Path)
    a = ap.parse_args(argv)
    cfg = AudioTrainConfig(data=a.data, out=a.out, family=a.family, steps=a.steps, batch_size=a.batch_size,
                           seconds=a.seconds, lr=a.lr, threads=a.threads, precision=a.precision, init=a.init,
                           init_log_beta=tuple(a.init_log_beta) if a.init_log_beta else None,
                           straight_through_from=a.straight_through_from, balance=a.balance,
                           balance_norm=a.balance_norm, mel_windows=tuple(a.mel_windows), rate_eta=a.rate_eta,
                           log_beta_min=a.log_beta_min, checkpoint_every=a.checkpoint_every,
                           log_every=a.log_every, stop_at=a.stop_at)
    ckpt = train_audio(cfg)
    if a.export:
        from aecodec.train.export import export_checkpoint

        export_checkpoint(ckpt, a.export)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
