"""Encode-time latent refinement (``--effort``): spend encode time to save bits, same decoder.

    tile ─g_a─> y ─×gain─> y_q ─h_a─> z ─round─> ẑ  (kept: it fixes the hyper-parameters)
    repeat steps(effort) times, the model frozen (Adam on y_q only):
        ŷ = μ + soft_round(y_q − μ, τ)     stochastic Gumbel annealing (Yang, Bamler & Mandt,
                                           "Improving Inference for Neural Image Compression", 2020)
        cost = net.refinement_loss(x, level)(bits(ŷ), g_s(ŷ))
             images: bits / pixels + λ(level)·255²·MSE (the training loss);
             audio:  kbps + AUDIO_LAMBDA·D, D the training's spectral distortion
    y symbols = round(y_q − μ), coded exactly as the default encoder codes its own

The model supplies the differentiable terms (``net.refinement(z_symbols, level)``, from its y
codec) and the loss, so this works for any model that has them (image tiles, audio segments). The encoder keeps the refined latent only if its
hard-rounded cost is below the starting one, so an effort never makes the estimate worse.
Results depend on the input, the effort and the torch thread count (the seed is fixed).
"""

from __future__ import annotations

import math
import threading
from typing import Callable

import numpy as np

# Optimisation steps per effort level 0 … 9 (0: today's encoder, no refinement). Tuned on three
# 256² Kodak crops at quality 6 (v6, rate–distortion cost of the real files against effort 0):
# 20 steps −2.2 %, 40 −3.2 %, 80 −4.6 %, 160 −5.4 %; learning rates 0.01–0.03 and a cosine decay
# differ by under 0.5 %. Refining ẑ too (jointly with y) measured −4.8…−5.0 % at 150 steps
# against y alone's −5.4 %, and is slower: ẑ stays the default encoder's.
EFFORT_STEPS = (0, 5, 10, 15, 20, 30, 45, 70, 100, 150)
MAX_EFFORT = len(EFFORT_STEPS) - 1
LEARNING_RATE = 0.02
TAU_START, TAU_END = 0.5, 0.1  # annealing temperature of the soft rounding
LR_FLOOR = 1.0  # the learning rate decays (cosine) to this fraction of LEARNING_RATE


class Cancelled(Exception):
    """The refinement was stopped (another tile failed, or the user pressed Ctrl-C)."""


def check_effort(effort) -> int:
    from aecodec.errors import InputError

    if isinstance(effort, bool) or not isinstance(effort, (int, np.integer)) or not 0 <= effort <= MAX_EFFORT:
        raise InputError(f"effort must be an integer from 0 to {MAX_EFFORT}, got {effort!r}")
    return int(effort)


def rd_lambda(lambdas, level: float) -> float:
    """λ of a fractional 0-based level: geometric interpolation between the model's levels."""
    logs = np.log(np.asarray(lambdas, np.float64))
    return float(np.exp(np.interp(level, np.arange(len(logs)), logs)))


def soft_round(residual, tau: float, generator):
    """Stochastic Gumbel annealing: a relaxed sample of floor or ceil, the nearer one likelier;
    as τ → 0 it becomes rounding. Gradients flow through the relaxation."""
    import torch

    fl = torch.floor(residual)
    frac = (residual - fl).clamp(1e-6, 1 - 1e-6)
    logits = torch.stack([-torch.atanh(frac), -torch.atanh(1 - frac)]) / tau
    u = torch.rand(logits.shape, generator=generator).clamp_(1e-10, 1.0)
    weights = torch.softmax((logits - torch.log(-torch.log(u))) / tau, dim=0)
    return fl + weights[1]


def refine_latent(net, x, y_q, z_symbols: np.ndarray, level: float, effort: int, *,
                  progress: Callable[[int], None] | None = None, cancel: threading.Event | None = None,
                  steps: int | None = None, lr: float = LEARNING_RATE, tau: tuple[float, float] = (TAU_START, TAU_END),
                  lr_floor: float = LR_FLOOR):
    """Scaled latent y_q [1, M, ...] of the tile or segment x (image [1, 3, 16h, 16w] in [0, 1],
    audio [1, 1, T]) -> the refined y_q, for the model's ``refinement_loss``.

    ``progress(n)`` is called after each step; ``cancel`` (set by another thread) stops the loop
    with ``Cancelled``. ``steps``, ``lr``, ``tau``: override the effort's schedule (experiments)."""
    import torch

    steps = EFFORT_STEPS[effort] if steps is None else steps
    if not steps:
        return y_q
    objective = net.refinement_loss(x, level)
    terms = net.refinement(z_symbols, level)

    def cost(latent, round_fn):
        return objective(*terms(latent, round_fn))

    start = y_q.detach().float()
    y = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([y], lr=lr)
    generator = torch.Generator().manual_seed(0)
    with torch.enable_grad():
        for t in range(steps):
            if cancel is not None and cancel.is_set():
                raise Cancelled("refinement cancelled")
            done = t / max(1, steps - 1)
            temperature = tau[0] * math.exp(math.log(tau[1] / tau[0]) * done)
            # cosine decay to lr_floor·lr: large moves first, fine ones as the rounding hardens
            optimizer.param_groups[0]["lr"] = lr * (lr_floor + (1 - lr_floor) * 0.5 * (1 + math.cos(math.pi * done)))
            loss = cost(y, lambda r: soft_round(r, temperature, generator))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if progress is not None:
                progress(1)
    with torch.no_grad():
        refined = y.detach()
        if cost(refined, torch.round) >= cost(start, torch.round):
            return y_q
    return refined
