"""One-command image training on a lent GPU machine: pack here, run there, unpack here.

    here:   python -m aecodec.train.device pack --data ../shared/data/images/train --data DIR2 ...
            -> .gpu/ (git-ignored): wheels of CompressAI and pytorch-msssim for the device's
               Python 3.12 (download them first, see ``WHEELS``), and training crops as JPEG q95
               filling what the 64 MiB transfer leaves beside the tracked files (``--budget-mb``)
    there:  device tool, carry [".gpu"], command: bash .gpu/run.sh
            -> installs the wheels into /tmp/site, grows the shipped v6 weights into the v7
               context model, trains all of it on CUDA for ``--minutes`` (batch 16 of 256² crops),
               writes $OUT/model-*.safetensors (fp32 shards of at most 15 MB) and $OUT/train.log
    here:   python -m aecodec.train.device unpack FILES_AT --out runs/image-v7-gpu
            -> runs/image-v7-gpu/init.safetensors, then continue on CPU or ship:
               aecodec train image --arch context --init runs/image-v7-gpu/init.safetensors ...

The run starts from v6 (tracked, so nothing big travels): the tracked files already take about
43 MB of the 64 MiB a device call may send, so a CPU checkpoint of the 10 M-parameter v7
(40 MB in fp32) cannot travel with them.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

PACK = Path(".gpu")
WHEELS = "compressai==1.2.8 pytorch-msssim==1.0.0"  # what the device image lacks (its torch is newer)
TRANSFER_LIMIT = 64 << 20
SHARD_BYTES = 15 << 20

RUN_SH = """#!/usr/bin/env bash
# Runs on the device machine (see aecodec/train/device.py).
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
python3 -m aecodec.train.device run --minutes "${MINUTES:-8}" --out "${OUT:-/tmp/out}"
"""


def tracked_bytes() -> int:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, check=True).stdout.split(b"\0")
    return sum(Path(f.decode()).stat().st_size for f in files if f and Path(f.decode()).is_file())


def pack(data: list[Path], budget_mb: float | None, seed: int = 0) -> None:
    """Fill .gpu/crops with JPEG q95 crops (random order, every source folder) up to the budget."""
    from aecodec.train.image import IMAGE_SUFFIXES

    wheels = sorted((PACK / "whl").glob("*.whl"))
    if not wheels:
        raise SystemExit(f"no wheels in {PACK / 'whl'}: pip download --no-deps --only-binary=:all: --python-version "
                         f"3.12 --implementation cp --platform manylinux_2_34_x86_64 -d {PACK / 'whl'} {WHEELS}")
    used = tracked_bytes() + sum(w.stat().st_size for w in wheels) + 64 * 1024
    budget = int(budget_mb * (1 << 20)) if budget_mb else TRANSFER_LIMIT - used - (2 << 20)
    if budget <= 0:
        raise SystemExit(f"no room for data: tracked files and wheels take {used / 2**20:.1f} MiB of 64")
    crops = PACK / "crops"
    crops.mkdir(parents=True, exist_ok=True)
    for old in crops.glob("*.jpg"):
        old.unlink()
    paths = [p for d in data for p in sorted(Path(d).rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
    rng = np.random.default_rng(seed)
    total = n = 0
    for i in rng.permutation(len(paths)):
        with Image.open(paths[i]) as im:
            buf = io.BytesIO()
            im.convert("RGB").save(buf, "JPEG", quality=95, subsampling=0)
        if total + buf.tell() > budget:
            continue
        (crops / f"{n:05d}.jpg").write_bytes(buf.getvalue())
        total += buf.tell()
        n += 1
    (PACK / "run.sh").write_text(RUN_SH)
    print(f"{PACK}: {n} of {len(paths)} crops ({total / 2**20:.1f} MiB), {len(wheels)} wheels; "
          f"tracked files {used / 2**20:.1f} MiB")


def run(minutes: float, out: Path, steps: int = 1_000_000, batch_size: int = 16, device: str = "auto") -> Path:
    """Grow v6 into v7 and train it for ``minutes``; write fp32 shards and the log to ``out``."""
    import torch
    from safetensors.torch import save_file

    from aecodec import registry
    from aecodec.models.context import ContextHyperprior
    from aecodec.train.common import load_checkpoint
    from aecodec.train.image import ImageTrainConfig, train_image

    out.mkdir(parents=True, exist_ok=True)
    v6 = registry.variant("image-hyperprior-gain-v6")
    cfg = ImageTrainConfig(data=[PACK / "crops"], out=out / "run", steps=steps, batch_size=batch_size, crop=256,
                           lr=1e-4, N=128, M=192, device=device, arch="context", init=registry.weights_path(v6),
                           checkpoint_every=1000, time_limit_s=minutes * 60,
                           precision="bf16" if torch.cuda.is_available() else "fp32")
    ckpt = train_image(cfg)
    net = ContextHyperprior()
    step, _ = load_checkpoint(ckpt, net, None)
    state = {k: v.detach().float().contiguous().cpu() for k, v in net.state_dict().items()}
    shards, current, size = [], {}, 0
    for key, value in state.items():
        nbytes = value.numel() * 4
        if current and size + nbytes > SHARD_BYTES:
            shards.append(current)
            current, size = {}, 0
        current[key], size = value, size + nbytes
    shards.append(current)
    for i, shard in enumerate(shards):
        save_file(shard, str(out / f"model-{i}.safetensors"), metadata={"step": str(step)})
    (out / "train.log").write_bytes((out / "run" / "train.log").read_bytes())
    (out / "run" / "checkpoint.pt").unlink()  # too big to come back; the shards hold the model
    print(f"step {step}: {len(shards)} shards in {out}")
    return out


def unpack(files_at: Path, out: Path) -> Path:
    """Device shards -> one init.safetensors (+ the device's train.log) in ``out``."""
    from safetensors.torch import load_file, save_file

    state: dict = {}
    for shard in sorted(Path(files_at).rglob("model-*.safetensors")):
        state.update(load_file(str(shard)))
    if not state:
        raise SystemExit(f"no model-*.safetensors under {files_at}")
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "init.safetensors"))
    for log in Path(files_at).rglob("train.log"):
        (out / "device-train.log").write_bytes(log.read_bytes())
    print(out / "init.safetensors")
    return out / "init.safetensors"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--data", action="append", required=True, type=Path)
    p.add_argument("--budget-mb", type=float, default=None, help="data size (default: what the transfer leaves)")
    r = sub.add_parser("run")
    r.add_argument("--minutes", type=float, default=8.0)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--steps", type=int, default=1_000_000)
    r.add_argument("--batch-size", type=int, default=16)
    r.add_argument("--device", default="auto")
    u = sub.add_parser("unpack")
    u.add_argument("files_at", type=Path)
    u.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.command == "pack":
        pack(args.data, args.budget_mb)
    elif args.command == "run":
        run(args.minutes, args.out, args.steps, args.batch_size, args.device)
    else:
        unpack(args.files_at, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
