"""Running cases: in this process (``fuzz``, the tests' short runs) or in worker processes under
limits, supervised (``supervise``, the long runs).

    supervise -> spawn worker(cases [acked, stop), skip) -> per case: CaseMemory.before,
                 run_case (every target, outcome_of) -> Stats, CaseMemory.after
              <- "ready" | "crash" (with the bytes) | "stats" deltas every 250 cases | "done"
    a dead worker or one without progress for ``hard_timeout`` s: its case is a crash / hang,
    a new worker starts after it

Before each case a worker caps its address space at its current size plus ``MEMORY_HEADROOM``
(``RLIMIT_AS``): allocating over 1 GB in one case becomes a MemoryError, a crash. A case over
``HANG_SECONDS`` of CPU time is a hang. Workers are spawned, so they import ``worker`` from here.
"""

from __future__ import annotations

import re
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from aecodec import coding
from aecodec.fuzz.cases import make_case
from aecodec.fuzz.corpus import MAX_CORPUS_BYTES
from aecodec.fuzz.targets import Seed, load_pool, outcome_of

HANG_SECONDS = 5.0  # CPU seconds of one case
MEMORY_HEADROOM = 1 << 30  # bytes of address space a case may add to the warmed-up worker
MAX_REPROS_PER_KIND = 5  # crash reproducer files (and full tracebacks) kept per kind of crash


def _prefix(message: str) -> str:
    """A message with its numbers and quoted parts blanked: cases that differ only there are alike."""
    text = re.sub(r"b?'[^']*'|\"[^\"]*\"|\([^)]*\)", "…", message.split("\n")[0])
    text = re.sub(r"[-+]?\d[\d.e+x×]*", "#", text)
    return " ".join(text.split()[:6])


@dataclass
class Stats:
    """What a run found; merged across worker restarts."""

    cases: int = 0
    crashes: list = field(default_factory=list)  # dicts: case, mutator, target, type, message, file
    hangs: list = field(default_factory=list)
    max_cpu: float = 0.0
    max_wall: float = 0.0
    slowest: dict = field(default_factory=dict)
    rss_jump: dict = field(default_factory=dict)  # the case whose peak RSS rose most above its start
    slow_wall_cases: int = 0  # over HANG_SECONDS of wall time but not of CPU time (a busy machine)
    cpu_seconds: float = 0.0
    mutators: Counter = field(default_factory=Counter)
    outcomes: dict = field(default_factory=dict)  # target -> Counter(class)
    interesting: dict = field(default_factory=dict)  # key -> (len, case, mutator, outcomes, data)

    def merge(self, other: Stats) -> None:
        self.cases += other.cases
        self.crashes += other.crashes
        self.hangs += other.hangs
        if other.max_cpu > self.max_cpu:
            self.max_cpu, self.slowest = other.max_cpu, other.slowest
        if other.rss_jump.get("mib", 0) > self.rss_jump.get("mib", 0):
            self.rss_jump = other.rss_jump
        self.max_wall = max(self.max_wall, other.max_wall)
        self.slow_wall_cases += other.slow_wall_cases
        self.cpu_seconds += other.cpu_seconds
        self.mutators.update(other.mutators)
        for t, c in other.outcomes.items():
            self.outcomes.setdefault(t, Counter()).update(c)
        for k, v in other.interesting.items():
            if k not in self.interesting or v[0] < self.interesting[k][0]:
                self.interesting[k] = v


class CaseMemory:
    """Per-case memory in a worker: cap the address space at its current size + headroom, reset
    the peak RSS, and afterwards report how far the peak rose above the RSS the case started at."""

    def __init__(self, headroom: int):
        self.headroom = headroom
        self.rss0 = 0
        self.peak = self.status()["VmHWM"]  # of the worker, over all cases

    @staticmethod
    def status() -> dict[str, int]:
        out = {}
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(("VmSize:", "VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1]) * 1024
        return out

    def before(self) -> None:
        st = self.status()
        resource.setrlimit(resource.RLIMIT_AS, (st["VmSize"] + self.headroom, resource.RLIM_INFINITY))
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")  # VmHWM := VmRSS
        self.rss0 = st["VmRSS"]

    def after(self) -> int:
        hwm = self.status()["VmHWM"]
        self.peak = max(self.peak, hwm)
        return hwm - self.rss0


def run_case(stats: Stats, i: int, mutator: str, data: bytes, targets: list[str],
             memory: CaseMemory | None = None) -> list[dict]:
    """Run one case through every target, recording it in stats; returns the crashes it caused."""
    crashes = []
    outcomes = {}
    key_parts = []
    if memory is not None:
        memory.before()
    t0, c0 = time.perf_counter(), time.process_time()
    for t in targets:
        cls, message = outcome_of(t, data)
        outcomes[t] = cls
        stats.outcomes.setdefault(t, Counter())[cls] += 1
        key_parts.append(f"{t}={cls}:{_prefix(message)}" if cls != "ok" else f"{t}=ok")
        if cls.startswith("CRASH:"):
            crashes.append({"case": i, "mutator": mutator, "target": t, "type": cls[6:], "message": message[:2000]})
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    jump = memory.after() / 2**20 if memory is not None else 0.0
    if jump > stats.rss_jump.get("mib", 0):
        stats.rss_jump = {"case": i, "mutator": mutator, "mib": round(jump, 1), "outcomes": outcomes}
    stats.cases += 1
    stats.cpu_seconds += cpu
    stats.mutators[mutator.split("+")[0]] += 1
    stats.max_wall = max(stats.max_wall, wall)
    if cpu > stats.max_cpu:
        stats.max_cpu = cpu
        stats.slowest = {"case": i, "mutator": mutator, "cpu_seconds": round(cpu, 4), "wall_seconds": round(wall, 4),
                         "outcomes": outcomes}
    if cpu > HANG_SECONDS:
        stats.hangs.append({"case": i, "mutator": mutator, "cpu_seconds": round(cpu, 3), "wall_seconds": round(wall, 3),
                            "outcomes": outcomes})
    elif wall > HANG_SECONDS:
        stats.slow_wall_cases += 1
    stats.crashes += crashes
    if len(data) <= MAX_CORPUS_BYTES:
        key = " | ".join(key_parts)
        if all(v == "ok" for v in outcomes.values()):  # decodable files: one per kind of mutation
            key += f" | {mutator.split('+')[0]}"
        old = stats.interesting.get(key)
        if old is None or len(data) < old[0]:
            stats.interesting[key] = (len(data), i, mutator, outcomes, data)
    return crashes


def fuzz(cases: int, seed: int = 0, targets=("container", "image"), start: int = 0, *,
         pool: list[Seed]) -> Stats:
    """Run cases [start, start + cases) in this process (no limits): the test suite's short fuzz.
    ``pool``: ``build_pool(targets, vectors)``."""
    targets = list(targets)
    stats = Stats()
    for i in range(start, start + cases):
        mutator, data = make_case(seed, i, pool)
        run_case(stats, i, mutator, data, targets)
    return stats


# ---------------------------------------------------------------------------------------------
# worker process with limits, supervised


def worker(conn, progress, seed: int, targets: list[str], named: list[tuple[str, bytes]], start: int, stop: int,
           skip: set[int], headroom: int) -> None:
    """A worker process (spawned: it gets the seed files as bytes): warm up, then run cases
    [start, stop) but ``skip`` under CaseMemory(headroom); ``progress`` holds the case it is on,
    ``conn`` gets "ready", each crash, stats deltas every 250 cases and "done"."""
    import torch

    torch.set_num_threads(1)
    # tiles and segments one after another (run_image/run_audio also say so): with parallel decoding,
    # whether a bad tile or a bad chunk read ahead of it is reported first depends on the number of
    # cores, and the corpus records outcomes that must be the same on every machine
    with coding.coding_threads(1):
        _work(conn, progress, seed, targets, named, start, stop, skip, headroom)


def _work(conn, progress, seed, targets, named, start, stop, skip, headroom) -> None:
    pool = load_pool(named)
    for s in pool:  # warm up: imports, Numba kernels, models
        for t in targets:
            outcome_of(t, s.data)
    rss_warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    memory = CaseMemory(headroom)
    conn.send(("ready", {"vm_bytes": memory.status()["VmSize"], "rss_after_warmup": rss_warm}))
    stats = Stats()
    for i in range(start, stop):
        progress.value = i
        if i in skip:
            continue
        mutator, data = make_case(seed, i, pool)
        crashes = run_case(stats, i, mutator, data, targets, memory)
        for c in crashes:
            conn.send(("crash", dict(c, data=data)))
        if (i + 1 - start) % 250 == 0:  # a delta: the supervisor merges them
            conn.send(("stats", i + 1, _strip(stats), memory.peak))
            stats = Stats()
    conn.send(("stats", stop, _strip(stats), memory.peak))
    conn.send(("done", {"peak_rss": memory.peak}))


def _strip(stats: Stats) -> Stats:
    stats.crashes = [{k: v for k, v in c.items() if k != "data"} for c in stats.crashes]
    return stats


def supervise(cases: int, seed: int, targets: list[str], named, hard_timeout: float, max_seconds: float | None,
              out_dir: Path, log=print, root: Path | None = None) -> tuple[Stats, dict]:
    """Run cases [0, cases) in worker processes; restart after a dead or stuck worker.

    ``named``: the seed files, (name, bytes); crash reproducers go to ``out_dir``/crashes, recorded
    relative to ``root`` when they are under it."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    total = Stats()
    interesting: dict = {}
    info: dict = {"worker_restarts": 0, "peak_rss": 0, "stopped_early": False}
    pool = load_pool(named)
    acked, skip = 0, set()
    reported: set = set()  # (case, target): cases re-run after a worker restart report again
    kinds: Counter = Counter()  # crashes per kind (target, type, message with numbers blanked)
    t_start = time.perf_counter()
    while acked < cases:
        progress = ctx.Value("q", acked, lock=False)
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=worker, args=(child, progress, seed, targets, named, acked, cases, set(skip),
                                                 MEMORY_HEADROOM), daemon=True)
        proc.start()
        child.close()
        last_value, last_change, ready = progress.value, time.perf_counter(), False
        done = False
        while True:
            if parent.poll(0.5):
                try:
                    kind, *payload = parent.recv()
                except EOFError:
                    kind, payload = "eof", []
                if kind == "ready":
                    ready = True
                    info.setdefault("worker", payload[0])
                    last_change = time.perf_counter()
                elif kind == "crash":
                    rec = payload[0]
                    data = rec.pop("data")
                    if (rec["case"], rec["target"]) in reported:
                        continue
                    reported.add((rec["case"], rec["target"]))
                    rec["kind"] = f"{rec['target']}: {rec['type']}: {_prefix(rec['message'])}"
                    kinds[rec["kind"]] += 1
                    if kinds[rec["kind"]] <= MAX_REPROS_PER_KIND:  # one bug found again and again: a few files
                        rec["file"] = _save_repro(out_dir, rec, data, root)
                        log(f"CRASH case {rec['case']} ({rec['mutator']}) {rec['target']}: {rec['type']}: "
                            f"{rec['message'].splitlines()[0][:200]}")
                    else:
                        rec["message"] = rec["message"].splitlines()[0][:200]
                    total.crashes.append(rec)
                elif kind == "stats":
                    end, st, peak = payload
                    info["peak_rss"] = max(info["peak_rss"], peak)
                    acked = end
                    for k, v in st.interesting.items():
                        if k not in interesting or v[0] < interesting[k][0]:
                            interesting[k] = v
                    st.interesting = {}
                    st.crashes = []  # reported one by one above
                    total.merge(st)
                    elapsed = time.perf_counter() - t_start
                    if acked % 5000 < 250 or acked == cases:
                        log(f"{acked}/{cases} cases, {len(total.crashes)} crashes, {len(total.hangs)} hangs, "
                            f"{acked / elapsed:.1f} cases/s, max case {total.max_cpu:.2f} s CPU")
                    if max_seconds and elapsed > max_seconds and acked < cases:
                        info["stopped_early"] = True
                        proc.kill()
                        proc.join()
                        return total, {**info, "interesting": interesting, "completed": acked}
                elif kind == "done":
                    info["peak_rss"] = max(info["peak_rss"], payload[0]["peak_rss"])
                    done = True
                    break
                elif kind == "eof":
                    pass
            if progress.value != last_value:
                last_value, last_change = progress.value, time.perf_counter()
            stuck = ready and time.perf_counter() - last_change > hard_timeout
            if not proc.is_alive() or stuck:
                break
        proc.join(timeout=5 if done else 0.1)
        if done:
            break
        # the worker died or hung on case `progress.value`
        culprit = progress.value
        if proc.is_alive():
            proc.kill()
            proc.join()
        mutator, data = make_case(seed, culprit, pool)
        rec = {"case": culprit, "mutator": mutator, "target": ",".join(targets)}
        if stuck:
            rec.update(cpu_seconds=None, wall_seconds=round(time.perf_counter() - last_change, 1),
                       note=f"killed after {hard_timeout:g} s without progress")
            rec["file"] = _save_repro(out_dir, {**rec, "type": "hang"}, data, root)
            total.hangs.append(rec)
        else:
            rec.update(type=f"WorkerDied(exit {proc.exitcode})", message="the worker process died")
            rec["file"] = _save_repro(out_dir, rec, data, root)
            total.crashes.append(rec)
        log(f"worker {'hung' if stuck else 'died'} on case {culprit}: restarting after it")
        info["worker_restarts"] += 1
        skip.add(culprit)
        total.cases += 1
        total.mutators[mutator.split("+")[0]] += 1
        # cases between the last report and the culprit are re-run by the next worker
        acked = min(acked, culprit)
        if acked == culprit:
            acked += 1
    return total, {**info, "interesting": interesting, "completed": acked}


def _save_repro(out_dir: Path, rec: dict, data: bytes, root: Path | None) -> str:
    d = out_dir / "crashes"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"case{rec['case']:07d}-{rec.get('type', 'x').split('(')[0].replace(':', '_')}.bin"
    path.write_bytes(data)
    try:
        return str(path.relative_to(root)) if root is not None else str(path)
    except ValueError:
        return str(path)
