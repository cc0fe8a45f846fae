"""Batches of files: which input goes to which output, running the work, reporting each file.

    plan_jobs(inputs, output, suffix, ...)   inputs (files, folders, '-') -> [Job(src, dst)]; collisions refused
    run_jobs(jobs, work, workers, ...)       work(job) -> dict for each, in threads; one failure stops nothing
    Reporter                                 each file's line as it finishes ([n/N] on a terminal), the summary
    score_inputs(items, suffixes)            the files ``score`` reads: the named ones and those in named folders
    describe_error(exc, path)                an exception as one line for a user

No torch at import (``run_jobs`` sets torch's threads only for parallel workers). The exit
statuses are the command line's: 0 success, 1 a file failed, 2 a usage error.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from aecodec.errors import AecError, UsageError

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def describe_error(exc: BaseException, path: str | None = None) -> str:
    """One line for a user: the message, without Python class names or temporary file names."""
    if isinstance(exc, OSError) and not isinstance(exc, AecError) and exc.strerror:
        name = exc.filename
        if name is None or str(name).endswith(".part"):
            name = path
        return f"{name}: {exc.strerror}" if name else exc.strerror
    text = " ".join(str(exc).split())
    if isinstance(exc, (AecError, UsageError, OSError)) and text:
        return text
    return f"unexpected error: {text}" if text else f"unexpected error ({type(exc).__name__})"


def warn(text: str) -> None:
    print(f"aecodec: warning: {text}", file=sys.stderr)


@dataclass
class Job:
    src: str
    dst: str
    auto_name: bool = False  # dst was derived from src (decode may still pick the suffix by modality)


def _listing(folder: Path, in_suffixes: set[str] | None, recursive: bool) -> list[Path]:
    """Input files of a folder, sorted; names starting with '.' (files and folders) are skipped."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(files):
            f = Path(root) / name
            if not name.startswith(".") and (in_suffixes is None or f.suffix.lower() in in_suffixes):
                found.append(f)
    return found


def plan_jobs(inputs: list[str], output: str | None, out_suffix: str, in_suffixes: set[str] | None,
              recursive: bool = False) -> list[Job]:
    """Map inputs to outputs. Several inputs, a directory input or an output ending in '/' ->
    DIR/<stem><suffix> (with -r, DIR/<sub-folders>/<stem><suffix>). Outputs that would collide are
    refused before anything is coded."""
    expanded: list[tuple[str, Path | None]] = []  # (file, the folder it was found in)
    for item in inputs:
        p = Path(item)
        if item != "-" and p.is_dir():
            files = _listing(p, in_suffixes, recursive)
            if not files:
                hint = "" if recursive else " (-r goes into sub-folders)"
                raise UsageError(f"no input files in directory {p}{hint}")
            expanded.extend((str(f), p) for f in files)
        else:
            expanded.append((item, None))
    srcs = [s for s, _ in expanded]
    batch = len(expanded) > 1 or any(Path(i).is_dir() for i in inputs if i != "-")
    if output is None:
        if "-" in srcs:
            raise UsageError("reading stdin needs -o (a file or '-')")
        jobs = [Job(src, str(Path(src).with_suffix(out_suffix)), True) for src in srcs]
    elif batch or output.endswith(("/", os.sep)) or (Path(output).is_dir() and output != "-"):
        if output == "-":
            raise UsageError("several inputs cannot all go to stdout")
        if "-" in srcs:
            raise UsageError("stdin cannot be combined with other inputs")
        if batch and Path(output).suffix and not output.endswith(("/", os.sep)) and not Path(output).is_dir():
            raise UsageError(f"several inputs need an output folder, not the file name {output!r} "
                             f"(write {output}/ to make a folder of that name)")
        out_dir = Path(output)
        jobs = []
        for src, folder in expanded:
            rel = Path(src).relative_to(folder).parent if folder is not None else Path()
            jobs.append(Job(src, str(out_dir / rel / (Path(src).stem + out_suffix)), True))
    else:
        jobs = [Job(srcs[0], output)]
    _refuse_collisions(jobs)
    return jobs


def _refuse_collisions(jobs: list[Job]) -> None:
    """Two inputs that would write one output (a.wav and a.png -> a.aec): a usage error, before coding.
    Derived names are compared without their suffix (decode picks .wav or .png by the file's kind)."""
    seen: dict[str, str] = {}
    for job in jobs:
        if job.dst == "-":
            continue
        key = os.path.normcase(os.path.abspath(job.dst))
        if job.auto_name:
            key = os.path.splitext(key)[0]
        if key in seen:
            raise UsageError(f"{seen[key]} and {job.src} would both be written to {job.dst}; "
                             "rename one or code them into different folders")
        seen[key] = job.src


def score_inputs(items: list[str], suffixes: set[str]) -> list[str]:
    """Files to score: the named ones, and the image/audio files directly inside named folders."""
    files: list[str] = []
    for item in items:
        if item == "-":
            raise UsageError("score reads files, not stdin")
        p = Path(item)
        if p.is_dir():
            found = sorted(str(f) for f in p.iterdir()
                           if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in suffixes)
            if not found:
                raise UsageError(f"no image or audio files in {p}")
            files.extend(found)
        else:
            files.append(item)
    return files


class Reporter:
    """Prints each file's line as it finishes ([n/N] on a terminal in batch mode), keeps the results."""

    def __init__(self, total: int, as_json: bool, quiet: bool):
        self.total, self.as_json, self.quiet = total, as_json, quiet
        self.done = self.failed = self.usage = 0
        self.tty = sys.stderr.isatty()
        self.lock = threading.Lock()
        self.t0 = time.perf_counter()

    def report(self, info: dict) -> None:
        with self.lock:
            self.done += 1
            prefix = f"[{self.done}/{self.total}] " if self.tty and self.total > 1 else ""
            for text in info.get("warnings", []):  # kept in the JSON document too
                warn(f"{info['input']}: {text}")
            line = info.pop("line", None)
            if not info["ok"]:
                self.failed += 1
                self.usage += info.pop("usage", False)
                text = info["error"]
                if not text.startswith(f"{info['input']}: "):  # an OSError's text names the file already
                    text = f"{info['input']}: {text}"
                print(f"{prefix}aecodec: error: {text}", file=sys.stderr, flush=True)
            elif not self.quiet and not self.as_json and line:
                print(prefix + line, file=sys.stderr, flush=True)
            info.pop("usage", None)

    def summary(self) -> None:
        if self.total > 1 and not self.quiet and not self.as_json:
            ok = self.done - self.failed
            print(f"aecodec: {ok} of {self.total} files done" + (f", {self.failed} failed" if self.failed else "")
                  + f" in {time.perf_counter() - self.t0:.1f} s", file=sys.stderr, flush=True)


def run_jobs(jobs: list[Job], work, workers: int, as_json: bool, quiet: bool) -> int:
    """Run work(job) -> dict for each job; report each as it finishes; failures do not stop the others.

    ``--json`` prints the summary document on stdout, or on stderr when stdout carries a coded file
    (``-o -``), so the two never mix. Returns the exit status."""
    reporter = Reporter(len(jobs), as_json, quiet)
    results: list[dict | None] = [None] * len(jobs)

    def one(job: Job) -> dict:
        t0 = time.perf_counter()
        try:
            info = work(job)
            info.update(input=job.src, output=job.dst, ok=True, seconds=round(time.perf_counter() - t0, 4))
        except (BrokenPipeError, KeyboardInterrupt, MemoryError):  # not this file's failure: stop
            raise
        except UsageError as exc:
            info = {"input": job.src, "output": job.dst, "ok": False, "error": describe_error(exc), "usage": True}
        except Exception as exc:  # noqa: BLE001 - any failure of one file: report it, code the others
            info = {"input": job.src, "output": job.dst, "ok": False, "error": describe_error(exc, job.dst)}
        return info

    if workers > 1 and len(jobs) > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
        pool = ThreadPoolExecutor(workers)
        try:
            futures = {pool.submit(one, job): i for i, job in enumerate(jobs)}
            for fut in as_completed(futures):
                info = fut.result()
                reporter.report(info)
                results[futures[fut]] = info
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        for i, job in enumerate(jobs):
            results[i] = one(job)
            reporter.report(results[i])
    reporter.summary()
    if as_json:
        doc = results[0] if len(results) == 1 else {"files": results, "failed": reporter.failed}
        to_stderr = any(job.dst == "-" for job in jobs)
        print(json.dumps(doc, indent=2, sort_keys=True), file=sys.stderr if to_stderr else sys.stdout)
    if reporter.usage:
        return EXIT_USAGE
    return EXIT_ERROR if reporter.failed else EXIT_OK
