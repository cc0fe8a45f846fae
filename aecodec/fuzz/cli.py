"""Fuzzing harness for the container parser and full decoding of images and audio.

    python benchmarks/fuzz.py --cases 100000 --seed 0 --target container,image \\
        --out benchmarks/results/fuzz/fuzz_image.json [--corpus tests/fuzz_corpus]
    python benchmarks/fuzz.py --cases 100000 --seed 0 --target audio \\
        --out benchmarks/results/fuzz/fuzz_audio.json [--corpus tests/fuzz_corpus]
    python benchmarks/fuzz.py --seed S --replay I [--dump FILE] [--limit-memory]

args -> the seed pool (``--vectors``) -> supervise (worker processes) -> the result JSON at
``--out`` (crash reproducers beside it, in <out>_crashes/) and, with ``--corpus``, the corpus.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path

from aecodec.fuzz.cases import MUTATORS, make_case
from aecodec.fuzz.corpus import CORPUS_PREFIX, run_key, select_corpus, write_corpus
from aecodec.fuzz.runner import HANG_SECONDS, MEMORY_HEADROOM, CaseMemory, supervise
from aecodec.fuzz.targets import (
    MODEL_OF_TARGET,
    TARGET_DESCRIPTIONS,
    TARGETS,
    TINY_MODEL_NAMES,
    build_pool,
    model_weights,
    outcome_of,
)


def parser(root: Path) -> argparse.ArgumentParser:
    """The options; ``--vectors`` defaults to ``root``/bitstream/vectors."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", default="container,image", help=f"comma-separated: {', '.join(TARGETS)}")
    ap.add_argument("--out", default="benchmarks/results/fuzz/fuzz_image.json",
                    help="result JSON (crash reproducers beside it)")
    ap.add_argument("--corpus", default=None, help="write interesting cases + manifest.json to this folder")
    ap.add_argument("--vectors", type=Path, default=root / "bitstream" / "vectors",
                    help="golden vectors used as seed files (default: the checkout's bitstream/vectors)")
    ap.add_argument("--hard-timeout", type=float, default=120.0,
                    help="wall seconds without progress before a worker is killed")
    ap.add_argument("--max-seconds", type=float, default=None, help="stop after this long, reporting what completed")
    ap.add_argument("--replay", type=int, default=None, metavar="I",
                    help="rebuild case I, run it here, print the outcome")
    ap.add_argument("--dump", default=None, metavar="FILE", help="with --replay: also write the case's bytes")
    ap.add_argument("--limit-memory", action="store_true",
                    help="with --replay: warm up, then run the case as a worker does (address space + 1 GiB)")
    return ap


def main(argv: list[str] | None = None, *, root: Path | None = None) -> int:
    """The command line -> exit status 1 on a crash or hang. ``root``: the checkout whose
    bitstream/vectors/ are the default ``--vectors`` and against which reproducer paths are
    recorded (default: the current folder)."""
    root = Path.cwd() if root is None else Path(root)
    ap = parser(root)
    args = ap.parse_args(argv)
    targets = [t.strip() for t in args.target.split(",") if t.strip()]
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {unknown}; known: {', '.join(TARGETS)}")

    import torch

    torch.set_num_threads(1)
    pool = build_pool(targets, args.vectors)
    if args.replay is not None:
        return replay_case(args, targets, pool)

    named = [(s.name, s.data) for s in pool]
    out = Path(args.out)
    t0 = time.perf_counter()
    total, info = supervise(args.cases, args.seed, targets, named, args.hard_timeout, args.max_seconds,
                            out.parent / (out.stem + "_crashes"), log=lambda m: print(m, file=sys.stderr, flush=True),
                            root=root)
    elapsed = time.perf_counter() - t0
    result = result_json(args, sys.argv[1:] if argv is None else argv, targets, named, total, info, elapsed)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    if args.corpus:
        key = run_key(targets)
        entries = select_corpus(info["interesting"], prefix=CORPUS_PREFIX.get(key, key.replace(",", "+") + "-"))
        written = write_corpus(Path(args.corpus), entries, targets, args.seed)
        print(f"corpus: {written} files in {args.corpus}", file=sys.stderr)
    r = result["results"]
    print(f"{r['cases']} cases, {r['crashes']} crashes, {r['hangs']} hangs, max case {r['max_case_cpu_seconds']} s CPU "
          f"({r['max_case_wall_seconds']} s wall), peak RSS {r['peak_rss_mib']} MiB, {r['cases_per_second']} cases/s "
          f"-> {out}",
          file=sys.stderr)
    return 1 if r["crashes"] or r["hangs"] else 0


def replay_case(args, targets: list[str], pool) -> int:
    """--replay I: rebuild case I, run it here (under a worker's memory cap with --limit-memory)."""
    mutator, data = make_case(args.seed, args.replay, pool)
    if args.dump:
        Path(args.dump).write_bytes(data)
    memory = None
    if args.limit_memory:
        for s in pool:
            for t in targets:
                outcome_of(t, s.data)
        memory = CaseMemory(MEMORY_HEADROOM)
        memory.before()
    outcomes = {t: outcome_of(t, data) for t in targets}
    for t, (cls, message) in outcomes.items():
        print(f"case {args.replay} ({mutator}, {len(data)} bytes) {t}: {cls} {message}")
    if memory is not None:
        print(f"peak RSS {memory.after() / 2**20:.0f} MiB above the case's start")
    return 1 if any(cls.startswith("CRASH") for cls, _ in outcomes.values()) else 0


def result_json(args, argv: list[str], targets: list[str], named, total, info: dict, elapsed: float) -> dict:
    """The result file: what ran (command, machine, config, seeds) and what it found."""
    from aecodec.bench.machine import describe_machine

    worker = info.get("worker", {})
    return {
        "name": "fuzz",
        "description": "Mutated, truncated, spliced and random bytes through "
                       + " and ".join(TARGET_DESCRIPTIONS[t] for t in targets) + ". "
                       "A crash is any exception outside aecodec.errors.AecError "
                       "(a MemoryError from the 1 GiB address-space headroom included); a hang is a case over "
                       f"{HANG_SECONDS:g} s of CPU time or a worker killed after {args.hard_timeout:g} s "
                       "without progress.",
        "command": "python benchmarks/fuzz.py " + " ".join(argv),
        "machine": describe_machine(),
        "config": {
            "cases_requested": args.cases, "seed": args.seed, "targets": targets, "hang_cpu_seconds": HANG_SECONDS,
            "memory_headroom_bytes": MEMORY_HEADROOM, "worker": worker,
            **{("tiny_model" if t == "image" else f"tiny_{t}_model"): {"name": TINY_MODEL_NAMES[t],
                                                                      "weights": model_weights(t)}
               for t in targets if t in MODEL_OF_TARGET},
            "seeds": [{"name": n, "bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()[:16]} for n, d in named],
            "mutators": {k: w for k, (_, w) in MUTATORS.items()},
        },
        "results": {
            "cases": total.cases,
            "completed_all": total.cases >= args.cases and not info["stopped_early"],
            "crashes": len(total.crashes),
            "hangs": len(total.hangs),
            "max_case_cpu_seconds": round(total.max_cpu, 4),
            "max_case_wall_seconds": round(total.max_wall, 4),
            "cases_over_5s_wall_not_cpu": total.slow_wall_cases,
            "slowest_case": total.slowest,
            "largest_case_peak_rss_increase": total.rss_jump,
            "peak_rss_mib": round(info["peak_rss"] / 2**20, 1),
            "rss_after_warmup_mib": round(worker.get("rss_after_warmup", 0) / 2**20, 1),
            "allocation_limit": "before each case RLIMIT_AS = the worker's VmSize + 1 GiB "
                                f"(VmSize after warm-up {worker.get('vm_bytes', 0) / 2**20:.0f} MiB)",
            "elapsed_seconds": round(elapsed, 1),
            "worker_cpu_seconds": round(total.cpu_seconds, 1),
            "cases_per_second": round(total.cases / elapsed, 2),
            "cases_per_cpu_second": round(total.cases / max(total.cpu_seconds, 1e-9), 2),
            "worker_restarts": info["worker_restarts"],
            "distinct_outcomes": len(info["interesting"]),
            "per_mutator": dict(sorted(total.mutators.items())),
            "outcomes": {t: dict(sorted(c.items(), key=lambda kv: -kv[1])) for t, c in total.outcomes.items()},
            "crash_kinds": dict(Counter(c.get("kind", c["type"]) for c in total.crashes).most_common()),
            "crash_details": total.crashes,
            "hang_details": total.hangs,
        },
    }
