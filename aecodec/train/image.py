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

from aecodec.models.context import CONTEXT_LAMBDAS, ContextHyperprior, grow_from_hyperprior, latent_order_by_rate
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


# Architectures a run can train: name -> (class, λ per level).
ARCHITECTURES = {
    "hyperprior": (GainedMeanScaleHyperprior, IMAGE_LAMBDAS),
    "context": (ContextHyperprior, CONTEXT_LAMBDAS),
}


@dataclass
class ImageTrainConfig:
    data: Path | list[Path]
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
    arch: str = "hyperprior"  # a key of ARCHITECTURES; "context" grows from hyperprior weights given as init
    time_limit_s: float | None = None  # stop (with a checkpoint) after this long, e.g. a lent GPU's minutes
    context_only: bool = False  # context arch: train only the context networks, on cached latents
    straight_through_from: float = 0.75  # fraction of the run after which the synthesis sees rounded latents


class CropDataset:
    """All images of one or more folders held in memory as uint8 arrays; draws random crops with flips."""

    def __init__(self, folders: Path | list[Path], crop: int, seed: int):
        folders = [Path(f) for f in (folders if isinstance(folders, (list, tuple)) else [folders])]
        paths = sorted(p for folder in folders for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {', '.join(map(str, folders))}")
        self.images = []
        for p in paths:
            with Image.open(p) as im:
                arr = np.asarray(im.convert("RGB"))
            if min(arr.shape[:2]) >= crop:
                self.images.append(arr)
        if not self.images:
            raise ValueError(f"no image under {', '.join(map(str, folders))} is at least {crop}×{crop}")
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
    if cfg.arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, not {cfg.arch!r}")
    model_class, lambdas = ARCHITECTURES[cfg.arch]
    model = model_class(N=cfg.N, M=cfg.M).to(env.device)
    set_training_precision(model, cfg.precision)
    if cfg.compile:
        compile_transforms(model)
    if cfg.context_only:
        if not isinstance(model, ContextHyperprior):
            raise ValueError("context_only trains the context networks of the context architecture")
        # Transforms, gains and hyperprior stay as grown: the context corrections start at zero,
        # so the rate can only improve on the hyperprior's (updating a pretrained hyperprior
        # together with fresh context nets made the rate worse first: +4 % at level 0 after
        # 1,500 steps). The latents are computed once; a step costs a small fraction of a full one.
        for name, p in model.named_parameters():
            if not name.startswith("context."):
                p.requires_grad_(False)
    quantiles = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
    others = [p for n, p in model.named_parameters() if not n.endswith("quantiles") and p.requires_grad]
    optimizer = torch.optim.Adam([{"params": others}, {"params": quantiles, "lr": 1e-3}], lr=cfg.lr)
    ckpt = cfg.out / "checkpoint.pt"
    step = 0
    if ckpt.exists():
        step, extra = load_checkpoint(ckpt, model, optimizer)
        data.rng = np.random.default_rng(cfg.seed + 1000 * env.rank + step)
    elif cfg.init is not None:
        from safetensors.torch import load_file

        state = load_file(str(cfg.init))
        if "latent_order" in state:  # a context snapshot: v6 grown in its order + its context nets
            state = _from_snapshot(state, model)
        elif isinstance(model, ContextHyperprior) and not any(k.startswith("context.") for k in state):
            state = _grown(state, model, data)
        model.load_state_dict(state)
    latents = LatentDataset(model, data, cfg.out / "latents.npy", cfg.seed + step) if cfg.context_only else None
    # Each level's rate relative to its rate before the context learned anything (as BD-rate weighs
    # levels): the raw sum is dominated by the high levels' bits (~16x level 0's).
    level_bpp = reference_rates(model, latents) if latents is not None else None
    net = wrap_ddp(model, env)
    log = JsonLog(cfg.out / "train.log", enabled=env.is_main)
    lambdas_all = torch.tensor(lambdas, device=env.device)
    log.write(event="start", step=step, steps=cfg.steps, batch_size=cfg.batch_size, crop=cfg.crop,
              arch=cfg.arch, context_only=cfg.context_only, images=len(data.images), N=cfg.N, M=cfg.M, lr=cfg.lr, precision=cfg.precision, compile=cfg.compile, world_size=env.world_size,
              device=str(env.device))
    t_last, window = time.time(), []
    deadline = time.time() + cfg.time_limit_s if cfg.time_limit_s else math.inf
    model.train()
    while step < cfg.steps and time.time() < deadline:
        lr = learning_rate(step, cfg.steps, cfg.lr)
        optimizer.param_groups[0]["lr"] = lr
        q = torch.randint(0, model.levels, (cfg.batch_size,), device=env.device)
        if latents is not None:
            rd = rate_only(model.entropy_forward(latents.batch(cfg.batch_size).to(env.device), q, rounded=True),
                           level_bpp[q])
        else:
            x = data.batch(cfg.batch_size).to(env.device)
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
        if env.is_main and (step % cfg.checkpoint_every == 0 or step == cfg.steps or time.time() >= deadline):
            save_checkpoint(ckpt, model, optimizer, step, {"N": cfg.N, "M": cfg.M, "arch": cfg.arch,
                                                           "context_only": cfg.context_only})
    teardown_distributed(env)
    return ckpt


def rate_only(out: dict, reference: torch.Tensor | None = None) -> dict:
    """bpp of latents alone (16×16 pixels per latent position); loss = mean(bpp / reference) when
    each sample's level has a reference rate, else mean(bpp). The MSE entry is a placeholder of
    the log's PSNR column: the transforms are fixed, so it is not measured."""
    y = out["likelihoods"]["y"]
    num_pixels = y.shape[2] * y.shape[3] * 256
    bits = sum(torch.log(lk).flatten(1).sum(1) for lk in out["likelihoods"].values()) / -math.log(2)
    bpp = bits / num_pixels
    loss = (bpp / reference).mean() if reference is not None else bpp.mean()
    return {"loss": loss, "bpp": bpp.mean(), "mse": torch.tensor(1.0)}


def reference_rates(model: ContextHyperprior, latents: "LatentDataset", n: int = 16) -> torch.Tensor:
    """Rounded rate (bpp) per level on n latents, as the model codes them now (no gradients)."""
    y = latents.batch(n)
    with torch.no_grad():
        rates = [rate_only(model.entropy_forward(y, torch.full((n,), float(q)), rounded=True))["bpp"]
                 for q in range(model.levels)]
    return torch.stack(rates).clamp_min(1e-4)


class LatentDataset:
    """g_a's latents of every training image (the transforms are fixed), computed once and
    cached in the run directory; draws whole latents under the eight flips and transposes."""

    def __init__(self, model: ContextHyperprior, crops: CropDataset, cache: Path, seed: int, size: int = 256):
        size = min(size, min(min(img.shape[:2]) for img in crops.images)) // 64 * 64
        if size < 64:
            raise ValueError("context-only training needs images of at least 64×64")
        shape = (len(crops.images), model.M, size // 16, size // 16)
        if cache.exists() and np.load(cache, mmap_mode="r").shape == shape:
            self.latents = np.load(cache)
        else:
            self.latents = np.empty(shape, np.float16)
            with torch.no_grad():
                model.g_a.eval()
                for i, img in enumerate(crops.images):
                    h, w = img.shape[:2]
                    top, left = (h - size) // 2, (w - size) // 2
                    x = torch.from_numpy(np.ascontiguousarray(img[top : top + size, left : left + size]))
                    self.latents[i] = model.g_a(x.permute(2, 0, 1)[None].float().div(255.0))[0].numpy()
            tmp = cache.with_suffix(".tmp.npy")
            np.save(tmp, self.latents)
            tmp.replace(cache)
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> torch.Tensor:
        idx = self.rng.integers(len(self.latents), size=n)
        out = []
        for i in idx:
            y = self.latents[i]
            k = self.rng.integers(8)
            if k & 1:
                y = y[:, :, ::-1]
            if k & 2:
                y = y[:, ::-1]
            if k & 4:
                y = y.transpose(0, 2, 1)
            out.append(np.ascontiguousarray(y))
        return torch.from_numpy(np.stack(out)).float()


def _grown(state: dict, model: ContextHyperprior, data: CropDataset) -> dict:
    """A plain hyperprior's weights grown into the context model (function-preserving; its
    latent channels ordered by their bits on 16 training crops at the middle level)."""
    old = GainedMeanScaleHyperprior(N=state["g_a.0.weight"].shape[0], M=state["g_a.6.weight"].shape[0],
                                    levels=state["gain"].shape[0])
    old.load_state_dict(state)
    old.eval()
    crops = [data.batch(1) for _ in range(16)]
    order = latent_order_by_rate(old, crops, old.levels // 2)
    return grow_from_hyperprior(state, model.state_dict(), order)


SNAPSHOT_BASE = "image-hyperprior-gain-v6"


def write_context_snapshot(checkpoint: Path, out: Path) -> Path:
    """A context-only run in a few MB: its context networks (fp16) and the latent channel order
    it grew v6 with (read back from g_a's last layer). ``--init`` with the snapshot rebuilds the
    same model from the shipped v6 weights; the optimizer state is not kept."""
    from safetensors.torch import load_file, save_file

    from aecodec import registry

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    base = load_file(str(registry.weights_path(registry.variant(SNAPSHOT_BASE))))["g_a.6.weight"]
    grown = state["g_a.6.weight"][:, : base.shape[1]]
    order = [int(torch.nonzero((base == row).flatten(1).all(1))[0]) for row in grown[: base.shape[0]]]
    tensors = {k: v.half().contiguous() for k, v in state.items() if k.startswith("context.")}
    tensors["latent_order"] = torch.tensor(order, dtype=torch.int64)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out), metadata={"base": SNAPSHOT_BASE, "step": str(torch.load(
        checkpoint, map_location="cpu", weights_only=True)["step"])})
    return out


def _from_snapshot(snapshot: dict, model: ContextHyperprior) -> dict:
    from safetensors.torch import load_file

    from aecodec import registry

    base = load_file(str(registry.weights_path(registry.variant(SNAPSHOT_BASE))))
    state = grow_from_hyperprior(base, model.state_dict(), snapshot["latent_order"].numpy())
    state.update({k: v.float() for k, v in snapshot.items() if k.startswith("context.")})
    return state
