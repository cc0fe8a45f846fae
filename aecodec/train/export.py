"""Export a training checkpoint to shipped weights, and write the weights manifest.

    checkpoint.pt ─load (weights_only)─> model ─update_tables()─> state dict ─> .safetensors

The quantized CDF tables are computed here, once, and shipped inside the
safetensors file: encoder and decoder then use the very same integer tables
on every machine (recomputing them from float parameters could differ).

    python -m aecodec.train.export runs/image/checkpoint.pt aecodec/weights/image-hyperprior-gain-v6.safetensors
    python -m aecodec.train.export --manifest      # rewrite aecodec/weights/manifest.json from the registry
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from aecodec import registry
from aecodec.modelfile import file_metadata
from aecodec.models.audio import build_family
from aecodec.models.image import GainedMeanScaleHyperprior
from aecodec.train.common import load_checkpoint


def network_for_checkpoint(extra: dict):
    """The untrained network a checkpoint's parameters belong to (its 'extra' names the kind)."""
    if "family" in extra:
        return build_family(str(extra["family"]))
    if extra.get("arch") == "context":
        from aecodec.models.context import ContextHyperprior

        return ContextHyperprior(N=int(extra["N"]), M=int(extra["M"]))
    return GainedMeanScaleHyperprior(N=int(extra.get("N", 96)), M=int(extra.get("M", 160)))


def export_checkpoint(checkpoint: Path, out: Path) -> Path:
    """checkpoint.pt (image or audio run) -> safetensors with the quantized CDF tables."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    extra = state.get("extra", {})
    net = network_for_checkpoint(extra)
    load_checkpoint(checkpoint, net, None)
    net.update_tables()
    tensors = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    metadata = {"step": str(state.get("step")), "architecture": type(net).__name__, "N": str(net.N), "M": str(net.M)}
    if "family" in extra:
        metadata["family"] = str(extra["family"])
    # format, architecture and kwargs: the file loads on its own (aecodec.modelfile, `score --model FILE`)
    metadata.update(file_metadata(net, family=str(extra["family"]) if "family" in extra else None))
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(out)
    return out


def manifest() -> dict:
    """The manifest is derived from the registry (its single source of truth)."""
    return {
        "models": [
            {"name": v.name, "id": v.id, "modality": v.modality, "file": v.weights, "sha256": v.sha256,
             "description": v.description}
            for v in registry.VARIANTS
        ]
    }


def write_manifest() -> Path:
    path = registry.weights_path(registry.VARIANTS[0]).parent / "manifest.json"
    path.write_text(json.dumps(manifest(), indent=2, sort_keys=True) + "\n")
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="export a checkpoint to safetensors / write the manifest")
    ap.add_argument("checkpoint", nargs="?", type=Path)
    ap.add_argument("out", nargs="?", type=Path)
    ap.add_argument("--manifest", action="store_true")
    args = ap.parse_args(argv)
    if args.checkpoint and args.out:
        path = export_checkpoint(args.checkpoint, args.out)
        print(f"{path}  sha256 {registry.sha256_file(path)}  {path.stat().st_size} bytes")
    if args.manifest:
        print(write_manifest())
    return 0


if __name__ == "__main__":
    sys.exit(main())
