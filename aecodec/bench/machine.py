"""Describe the machine a benchmark ran on (results name it); measure a CLI run in a child process."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time


def describe_machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    mem_gib = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            mem_gib = round(int(f.readline().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": cpu, "cores": cores, "memory_gib": mem_gib, "os": platform.platform(), "python": platform.python_version()}


def run_cli_child(argv: list[str]) -> tuple[float, float]:
    """Run `python -m aecodec ...` in a fresh process; (wall seconds, peak RSS MiB of that process)."""
    code = (
        "import resource, sys\n"
        "from aecodec.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(rc)\n"
    )
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"child failed: {res.stderr[-2000:]}")
    peak = [line for line in res.stderr.splitlines() if line.startswith("PEAK_KIB")][-1]
    return seconds, int(peak.split()[1]) / 1024
