"""Encode a corpus of 200 Kodak-size images through the local CLI (-j 2) and through Ray (2 workers).

    Kodak / McMaster / Urban100 photos ─rescale, crop 768×512, flip─> 200 PNGs
        child: aecodec encode DIR -o OUT/ -j 2            wall time, peak RSS of the process
        aecodec.ray.encode_dataset(..., workers=2)        job time on a running local cluster,
                                                          peak RSS (VmHWM) of each worker process
        child: aecodec encode DIR -o OUT/ --ray -j 2      wall time with the cluster's start and stop
    and the outputs compared byte for byte.

    python benchmarks/ray_corpus.py --data ../shared/data/images --out benchmarks/results/ray
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from aecodec.bench.machine import describe_machine, run_cli_child

SIZE = (768, 512)
SOURCES = ("kodak", "eval/mcmaster18", "eval/urban100")


def make_corpus(data: Path, out: Path, n: int, seed: int) -> dict:
    """n PNGs of 768×512: each a source photo (landscape; portrait ones turned), rescaled by a random
    factor so that it covers 768×512 at least, cropped at random and flipped with probability 1/2."""
    files = [p for s in SOURCES if (data / s).is_dir() for p in sorted((data / s).iterdir())
             if p.suffix.lower() in (".png", ".jpg", ".webp")]
    if not files:
        raise SystemExit(f"no source images under {data} ({', '.join(SOURCES)})")
    rng = np.random.default_rng(seed)
    used: dict[str, int] = {}
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        src = files[i % len(files)]
        im = Image.open(src).convert("RGB")
        if im.height > im.width:
            im = im.transpose(Image.ROTATE_90)
        cover = max(SIZE[0] / im.width, SIZE[1] / im.height)
        scale = cover * rng.uniform(1.0, 1.5)
        im = im.resize((max(SIZE[0], round(im.width * scale)), max(SIZE[1], round(im.height * scale))), Image.LANCZOS)
        x = int(rng.integers(0, im.width - SIZE[0] + 1))
        y = int(rng.integers(0, im.height - SIZE[1] + 1))
        im = im.crop((x, y, x + SIZE[0], y + SIZE[1]))
        if rng.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        im.save(out / f"img{i:03d}.png", compress_level=1)
        key = src.parent.name
        used[key] = used.get(key, 0) + 1
    return used


class WorkerMemory:
    """Polls /proc for Ray's worker processes (title ray::MapWorker(MapBatches(_Worker))): the peak
    resident set (VmHWM) of each, and the largest sum of resident sets of every Ray process."""

    def __init__(self, pattern: str = "MapBatches(_Worker)", every: float = 0.5):
        self.pattern, self.every = pattern, every
        self.peaks: dict[int, float] = {}
        self.ray_total_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        me = os.getpid()
        while not self._stop.is_set():
            total = 0.0
            for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
                if pid == me:
                    continue
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                if "ray" not in cmd:
                    continue
                fields = dict(re.findall(r"^(\w+):\s+(\d+) kB", status, re.M))
                total += int(fields.get("VmRSS", 0)) / 1024
                if self.pattern in cmd:
                    self.peaks[pid] = max(self.peaks.get(pid, 0.0), int(fields.get("VmHWM", 0)) / 1024)
            self.ray_total_mib = max(self.ray_total_mib, total)
            self._stop.wait(self.every)


def run_ray_api(src: Path, out: Path, workers: int) -> dict:
    import ray

    from aecodec import ray as aec_ray

    t0 = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    started = time.perf_counter() - t0
    try:
        files = sorted(str(p) for p in src.iterdir())
        ds = ray.data.from_items([{"path": f} for f in files], override_num_blocks=len(files))
        with WorkerMemory() as mem:
            t0 = time.perf_counter()
            rows = aec_ray.encode_dataset(ds, out, workers=workers).select_columns(["path", "error"]).take_all()
            seconds = time.perf_counter() - t0
    finally:
        ray.shutdown()
    errors = [r for r in rows if r["error"] is not None]
    return {"seconds": round(seconds, 2), "cluster_start_seconds": round(started, 2), "images": len(rows),
            "failed": len(errors), "images_per_second": round(len(rows) / seconds, 3),
            "peak_rss_mib_per_worker": sorted(round(v, 1) for v in mem.peaks.values()),
            "ray_processes_peak_rss_mib": round(mem.ray_total_mib, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "images")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--note", default="", help="what else ran on the machine meanwhile")
    ap.add_argument("--out", type=Path, help="folder for the results JSON (named by the machine's CPU count)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        used = make_corpus(args.data, tmp / "in", args.n, args.seed)
        print(f"corpus: {args.n} images {SIZE[0]}×{SIZE[1]} from {used}", file=sys.stderr)
        local_s, local_mib = run_cli_child(["encode", str(tmp / "in"), "-o", f"{tmp}/local/", "-j", str(args.workers),
                                            "--quiet"])
        print(f"local CLI -j {args.workers}: {local_s:.1f} s", file=sys.stderr)
        ray_api = run_ray_api(tmp / "in", tmp / "ray", args.workers)
        print(f"Ray API: {ray_api}", file=sys.stderr)
        cli_s, _ = run_cli_child(["encode", str(tmp / "in"), "-o", f"{tmp}/ray_cli/", "-j", str(args.workers),
                                  "--quiet", "--ray"])
        print(f"Ray CLI: {cli_s:.1f} s", file=sys.stderr)
        names = sorted(p.name for p in (tmp / "local").iterdir())
        same_api = sum((tmp / "local" / n).read_bytes() == (tmp / "ray" / n).read_bytes() for n in names
                       if (tmp / "ray" / n).exists())
        same_cli = sum((tmp / "local" / n).read_bytes() == (tmp / "ray_cli" / n).read_bytes() for n in names
                       if (tmp / "ray_cli" / n).exists())
        total_bytes = sum((tmp / "local" / n).stat().st_size for n in names)
    machine = describe_machine()
    doc = {
        "name": "ray_corpus", "description": __doc__.splitlines()[0], "machine": machine, "note": args.note,
        "images": args.n, "width": SIZE[0], "height": SIZE[1], "sources": used, "seed": args.seed,
        "quality": "default", "mean_bpp": round(8 * total_bytes / (args.n * SIZE[0] * SIZE[1]), 4),
        "local_cli": {"command": f"aecodec encode DIR -o OUT/ -j {args.workers}", "seconds": round(local_s, 2),
                      "images_per_second": round(args.n / local_s, 3), "peak_rss_mib": round(local_mib, 1),
                      "peak_rss_note": f"one process, {args.workers} coding threads"},
        "ray_api": {"call": f"aecodec.ray.encode_dataset(ds, OUT, workers={args.workers}) on a running local cluster",
                    **ray_api},
        "ray_cli": {"command": f"aecodec encode DIR -o OUT/ -j {args.workers} --ray",
                    "seconds_with_cluster_start_and_stop": round(cli_s, 2),
                    "images_per_second": round(args.n / cli_s, 3)},
        "identical_to_local": {"ray_api": same_api, "ray_cli": same_cli, "of": len(names)},
    }
    print(json.dumps(doc, indent=2))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"corpus{args.n}_{machine['cores']}cpu.json"
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        print(f"wrote {path}", file=sys.stderr)
    return 0 if same_api == same_cli == len(names) == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
