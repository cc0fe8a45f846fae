"""Training of the image model: random crops of a folder of images, rate–distortion loss.

    folder ─load once (RGB uint8)─> random crop + flips ─> batch [B,3,c,c] in [0,1]
           ─model(x, q ~ U{levels})─> loss = mean(λ_q·255²·MSE + bpp) + aux

Every sample in a batch draws its own quality level, so one run trains all
rates of the variable-rate model.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from aecodec.models.image import IMAGE_LAMBDAS, GainedMeanScaleHyperprior
from aecodec.train.common import (
    all_finite,
    compile_transforms,
    JsonLog,
    learning_rate,
    load_checkpoint,
    save_checkpoint,
    set_training_precision,
    setup_distributed,
    teardown_distributed,
    wrap_ddp,
)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


@dataclass
class ImageTrainConfig:
    data: Path
    out: Path
    steps: int = 20000
    batch_size: int = 8
    crop: int = 128
    lr: float = 2e-4
    N: int = 96
    M: int = 160
    device: str = "auto"
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 500
    threads: int = 0
    precision: str = "fp32"  # or "bf16": transforms under autocast (see GainedHyperprior._transform)
    compile: bool = False  # torch.compile the transforms (see common.compile_transforms)
    init: Path | None = None  # start from exported weights (safetensors) when no checkpoint exists
    straight_through_from: float = 0.75  # fraction of the run after which the synthesis sees rounded latents


class CropDataset:
    """All images of a folder held in memory as uint8 arrays; draws random crops with flips."""

    def __init__(self, folder: Path, crop: int, seed: int):
        paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
        self.images = []
        for p in paths:
            with Image.open(p) as im:
                arr = np.asarray(im.convert("RGB"))
            if min(arr.shape[:2]) >= crop:
                self.images.append(arr)
        if not self.images:
            raise ValueError(f"no image under {folder} is at least {crop}×{crop}")
        self.crop = crop
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> torch.Tensor:
        out = np.empty((n, self.crop, self.crop, 3), np.uint8)
        for i in range(n):
            img = self.images[self.rng.integers(len(self.images))]
            y = self.rng.integers(img.shape[0] - self.crop + 1)
            x = self.rng.integers(img.shape[1] - self.crop + 1)
            patch = img[y : y + self.crop, x : x + self.crop]
            if self.rng.random() < 0.5:
                patch = patch[:, ::-1]
            if self.rng.random() < 0.5:
                patch = patch[::-1]
            out[i] = patch
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div_(255.0)


def rate_distortion(out: dict, x: torch.Tensor, lambdas: torch.Tensor) -> dict:
    """Per-sample bpp and MSE; loss = mean(λ·255²·MSE + bpp)."""
    num_pixels = x.shape[2] * x.shape[3]
    bits = sum(torch.log(lk).flatten(1).sum(1) for lk in out["likelihoods"].values()) / -math.log(2)
    bpp = bits / num_pixels
    mse = (out["x_hat"] - x).pow(2).flatten(1).mean(1)
    loss = (lambdas * 255**2 * mse + bpp).mean()
    return {"loss": loss, "bpp": bpp.mean(), "mse": mse.mean()}


def train_image(cfg: ImageTrainConfig) -> Path:
    """Train (or resume) a run in cfg.out; returns the checkpoint path."""
    env = setup_distributed(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed + env.rank)
    cfg.out.mkdir(parents=True, exist_ok=True)
    data = CropDataset(cfg.data, cfg.crop, cfg.seed + 1000 * env.rank)
    model = GainedMeanScaleHyperprior(N=cfg.N, M=cfg.M).to(env.device)
    set_training_precision(model, cfg.precision)
    if cfg.compile:
        compile_transforms(model)
    quantiles = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    others = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    optimizer = torch.optim.Adam([{"params": others}, {"params": quantiles, "lr": 1e-3}], lr=cfg.lr)
    ckpt = cfg.out / "checkpoint.pt"
    step = 0
    if ckpt.exists():
        step, extra = load_checkpoint(ckpt, model, optimizer)
        data.rng = np.random.default_rng(cfg.seed + 1000 * env.rank + step)
    elif cfg.init is not None:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(cfg.init)))
    net = wrap_ddp(model, env)
    log = JsonLog(cfg.out / "train.log", enabled=env.is_main)
    lambdas_all = torch.tensor(IMAGE_LAMBDAS, device=env.device)
    log.write(event="start", step=step, steps=cfg.steps, batch_size=cfg.batch_size, crop=cfg.crop,
              N=cfg.N, M=cfg.M, lr=cfg.lr, precision=cfg.precision, compile=cfg.compile, world_size=env.world_size,
              device=str(env.device))
    t_last, window = time.time(), []
    model.train()
    while step < cfg.steps:
        lr = learning_rate(step, cfg.steps, cfg.lr)
        optimizer.param_groups[0]["lr"] = lr
        x = data.batch(cfg.batch_size).to(env.device)
        q = torch.randint(0, model.levels, (x.shape[0],), device=env.device)
        out = net(x, q, step >= int(cfg.straight_through_from * cfg.steps))
        rd = rate_distortion(out, x, lambdas_all[q])
        aux = model.aux_loss()
        optimizer.zero_grad(set_to_none=True)
        if not all_finite(rd["loss"], env):
            log.write(event="skipped non-finite loss", step=step)
            step += 1
            continue
        (rd["loss"] + aux).backward()
        torch.nn.utils.clip_grad_norm_(others, 1.0)
        optimizer.step()
        step += 1
        window.append((rd["loss"].item(), rd["bpp"].item(), rd["mse"].item(), aux.item()))
        if step % cfg.log_every == 0 or step == cfg.steps:
            loss, bpp, mse, aux_v = np.mean(window, axis=0)
            log.write(step=step, loss=round(loss, 5), bpp=round(bpp, 5), psnr=round(10 * math.log10(1 / mse), 3),
                      aux=round(aux_v, 3), lr=lr, s_per_step=round((time.time() - t_last) / len(window), 4))
            window, t_last = [], time.time()
        if env.is_main and (step % cfg.checkpoint_every == 0 or step == cfg.steps):
            save_checkpoint(ckpt, model, optimizer, step, {"N": cfg.N, "M": cfg.M})
    teardown_distributed(env)
    return ckpt
