"""Command line: encode, decode, info, compare, bench, train — thin over the Python API.

Exit status: 0 success, 1 runtime error (bad input, bad file, I/O), 2 usage error.
Outputs are written to a temporary file beside the target and renamed into place
(never a half-written file) with the permissions the umask gives (0666 & ~umask, like
cwebp or cp); existing files are kept unless ``-f`` is given. In batch mode each file's
line is printed as it finishes (``[n/N]`` on a terminal), then a summary.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aecodec import registry
from aecodec.effort import MAX_EFFORT
from aecodec.errors import AecError, InputError
from aecodec.io import formats
from aecodec.io.formats import AUDIO_FORMATS, AUDIO_SUFFIXES, IMAGE_FORMATS  # noqa: F401 - cli.IMAGE_FORMATS

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
IMAGE_QUALITY_MAX = int(registry.BY_NAME[registry.DEFAULT_IMAGE_MODEL].qualities[1])
IMAGE_DEFAULT_QUALITY = registry.BY_NAME[registry.DEFAULT_IMAGE_MODEL].default_quality
IMAGE_INPUTS = formats.IMAGE_SUFFIXES
DECODE_FORMATS = formats.IMAGE_OUTPUTS


class UsageError(Exception):
    """Wrong arguments: exit status 2."""


def describe(exc: BaseException, path: str | None = None) -> str:
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


# ---------------------------------------------------------------------------------------------
# output handling


def _umask() -> int:
    """The process umask, read without changing it where the OS tells it (Linux); else set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: str, data_writer, force: bool) -> None:
    """Call data_writer(fileobj) on a temporary file, then rename it to path ('-' = stdout).

    The file gets 0666 & ~umask (an overwritten file keeps its mode), as open() would give."""
    if path == "-":
        buf = io.BytesIO()
        data_writer(buf)
        sys.stdout.buffer.write(buf.getvalue())
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists (use -f to overwrite)")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = target.stat().st_mode & 0o7777 if target.is_file() else 0o666 & ~_umask()
    except OSError:
        mode = 0o666 & ~_umask()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:  # name the output, not the temporary file
        raise OSError(exc.errno, exc.strerror, str(target)) from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            data_writer(f)
            f.flush()
            os.fsync(f.fileno())
        if target.exists() and not force:  # appeared meanwhile
            raise FileExistsError(f"{target} exists (use -f to overwrite)")
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


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
    (``-o -``), so the two never mix."""
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
            info = {"input": job.src, "output": job.dst, "ok": False, "error": describe(exc), "usage": True}
        except Exception as exc:  # noqa: BLE001 - any failure of one file: report it, code the others
            info = {"input": job.src, "output": job.dst, "ok": False, "error": describe(exc, job.dst)}
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


# ---------------------------------------------------------------------------------------------
# commands


def _not_for(args, options: dict[str, bool], kind: str, warnings_out: list) -> None:
    """Options given that do not apply to this kind of file: a warning each, once per run."""
    said = args.__dict__.setdefault("_warned", set())
    for flag, given in options.items():
        if given and flag not in said:
            said.add(flag)
            warnings_out.append(f"{flag} does not apply to {kind}; ignored")


is_audio_input = formats.is_audio  # audio by suffix, or (stdin) by the first bytes


def cmd_encode(args) -> int:
    from aecodec import image as image_api

    if args.quality is not None and args.target_bpp is not None:
        raise UsageError("-q and --target-bpp exclude each other")
    if args.quality is not None and args.bitrate is not None:
        raise UsageError("-q and -b exclude each other")
    if args.strip and args.keep_metadata:
        raise UsageError("--strip and --keep-metadata exclude each other")
    if args.target_bpp is not None and not (args.target_bpp > 0 and math.isfinite(args.target_bpp)):
        raise UsageError("--target-bpp must be a positive number")
    if args.bitrate is not None and not (0 < args.bitrate <= 1000 and math.isfinite(args.bitrate)):
        raise UsageError("-b must be a bitrate in kbps, in (0, 1000]")
    if args.quality is not None and not (1 <= args.quality <= IMAGE_QUALITY_MAX and math.isfinite(args.quality)):
        raise UsageError(f"-q must be between 1 and {IMAGE_QUALITY_MAX} (audio: 1 and 3), got {args.quality:g}")
    if args.tile is not None and not (64 <= args.tile <= image_api.MAX_TILE and args.tile % 64 == 0):
        raise UsageError(f"--tile must be a multiple of 64 in [64, {image_api.MAX_TILE}], got {args.tile}")
    if not 0 <= args.effort <= MAX_EFFORT:
        raise UsageError(f"--effort must be an integer from 0 to {MAX_EFFORT}, got {args.effort}")
    jobs = plan_jobs(args.inputs, args.output, ".aec", IMAGE_INPUTS | AUDIO_SUFFIXES, args.recursive)

    def work(job: Job) -> dict:
        if job.dst != "-" and Path(job.dst).exists() and not args.force:
            raise FileExistsError(f"{job.dst} exists (use -f to overwrite)")
        raw = read_input(job.src) if job.src == "-" else None
        if is_audio_input(job.src, raw[:16] if raw is not None else None):
            return encode_audio_job(job, raw, args)
        return encode_image_job(job, raw, args, image_api)

    if args.ray is not None:  # --ray [ADDRESS]: the same jobs on a Ray cluster (aecodec.ray)
        from aecodec import ray as ray_jobs

        return ray_jobs.run_cli("encode", jobs, args)
    return run_jobs(jobs, work, args.jobs, args.json, args.quiet)


@contextmanager
def effort_progress(args, tiles: int):
    """A progress bar of refinement steps (tqdm, stderr) for --effort on a terminal, else None."""
    if not args.effort or args.quiet or args.json or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    from aecodec.effort import EFFORT_STEPS

    lock = threading.Lock()
    total = None if args.target_bpp is not None else EFFORT_STEPS[args.effort] * tiles
    with tqdm(total=total, unit="step", desc=f"effort {args.effort}", file=sys.stderr, leave=False) as bar:
        def progress(n: int) -> None:
            with lock:
                bar.update(n)

        yield progress


def encode_image_job(job: Job, raw: bytes | None, args, image_api) -> dict:
    from aecodec import coding
    from aecodec.bench.metrics import psnr_rgb
    from aecodec.io import image as image_io

    if args.bitrate is not None:
        raise UsageError("-b (kbps) is for audio; images take -q or --target-bpp")
    notes: list[str] = []
    _not_for(args, {"--no-envelope": args.no_envelope}, "images", notes)
    loaded = coding.resolve_model(args.model)  # loaded (once, cached) before the clock starts
    t0 = time.perf_counter()
    image = image_io.open_image(raw if raw is not None else job.src)
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        notes.append(f"{image.format or 'image'} with {frames} frames: only the first frame is coded")
    policy = "none" if args.strip else "all" if args.keep_metadata else "default"
    removed = image_io.apply_metadata_policy(image, policy)
    if removed:
        notes.append(f"{removed} removed (--keep-metadata keeps it)")
    tile = args.tile or image_api.DEFAULT_TILE
    q = image_api.DEFAULT_QUALITY if args.quality is None else args.quality
    with effort_progress(args, len(image_api.tile_grid(*image.size, tile))) as progress:
        if args.target_bpp is not None:
            result = image_api.compress_image_to_target(image, args.target_bpp, model=loaded, tile=tile,
                                                        independent_tiles=args.independent_tiles, effort=args.effort)
            data, q = result.data, result.quality
            if result.warning:
                notes.append(result.warning)
        else:
            data = image_api.compress_image(image, q, model=loaded, tile=tile,
                                            independent_tiles=args.independent_tiles, effort=args.effort,
                                            progress=progress)
    write_atomically(job.dst, lambda f: f.write(data), args.force)
    seconds = time.perf_counter() - t0
    w, h = image.size
    info = {"modality": "image", "bytes": len(data), "bpp": round(8 * len(data) / (w * h), 5), "width": w,
            "height": h, "quality": q, "encode_seconds": round(seconds, 4)}
    if args.target_bpp is not None:
        info["target_bpp"] = args.target_bpp
    line = f"{job.src} -> {job.dst}: {len(data)} bytes, {info['bpp']:.4f} bpp, q {q:g}, {seconds:.2f} s"
    if args.psnr:
        decoded = image_api.decompress_image(data, model=loaded)
        ref = image_io.to_planes(image).rgb
        info["psnr_rgb"] = round(psnr_rgb(ref, image_io.to_planes(decoded).rgb), 4)
        line += f", PSNR {info['psnr_rgb']:.2f} dB"
    info["line"] = line
    if notes:
        info["warnings"] = notes
    return info


def encode_audio_job(job: Job, raw: bytes | None, args) -> dict:
    from aecodec import audio
    from aecodec.io import audio as audio_io

    if args.target_bpp is not None:
        raise UsageError("--target-bpp is for images; audio takes -b KBPS or -q 1..3")
    notes: list[str] = []
    _not_for(args, {"--psnr": args.psnr, "--tile": args.tile is not None,
                    "--independent-tiles": args.independent_tiles, "--effort": bool(args.effort)}, "audio", notes)
    source = audio_io.open_audio(raw if raw is not None else job.src)
    try:
        choice = audio.choose(source, args.bitrate, args.model)  # named, else by channels, bitrate, content
        loaded = choice.loaded
        lo, hi = loaded.variant.qualities
        if args.quality is not None and not lo <= args.quality <= hi:
            raise UsageError(f"-q must be between {lo:g} and {hi:g} for audio ({loaded.variant.name}), "
                             f"got {args.quality:g}")
        if args.strip:
            source.tags = {}
        t0 = time.perf_counter()  # after the model is loaded: the real-time factor is the coding's
        stats: list = []
        write_atomically(job.dst, lambda f: stats.append(
            audio.encode(source, f, args.bitrate, quality=args.quality, model=loaded,
                         envelope_on=False if args.no_envelope else None)), args.force)
    finally:
        source.close()
    st = stats[0]
    if st.warning:
        notes.append(st.warning)
    seconds = time.perf_counter() - t0
    speed = st.seconds_audio / seconds if seconds > 0 else float("inf")
    info = {"modality": "audio", "bytes": st.bytes, "kbps": round(st.kbps, 3), "duration": round(st.seconds_audio, 3),
            "sample_rate": source.sample_rate, "channels": source.channels, "model": st.model,
            "model_choice": choice.by, "speech_probability": choice.speech_probability,
            "quality": st.quality, "encode_seconds": round(seconds, 4), "realtime_factor": round(speed, 2)}
    if args.bitrate is not None:
        info["requested_kbps"] = args.bitrate
    info["line"] = (f"{job.src} -> {job.dst}: {st.bytes} bytes, {st.kbps:.2f} kbps, {st.seconds_audio:.2f} s "
                    f"{source.sample_rate} Hz ×{source.channels}, {st.model} ({choice.describe()}) q {st.quality:g}, "
                    f"{seconds:.2f} s "
                    f"({speed:.1f}× real time)")
    if notes:
        info["warnings"] = notes
    return info


def _output_format(dst: str, fmt: str | None) -> str:
    try:
        return formats.image_output_format(dst, fmt)
    except InputError as exc:  # the option's fault: a usage error
        raise UsageError(str(exc)) from None


def cmd_decode(args) -> int:
    from aecodec import container
    from aecodec import image as image_api
    from aecodec.io import image as image_io

    suffix = "." + (args.format or "png").lower()
    jobs = plan_jobs(args.inputs, args.output, suffix, {".aec"}, args.recursive)

    def work(job: Job) -> dict:
        data = read_input(job.src)
        modality = container.ContainerReader(data).header.get("modality")
        if modality == "audio":
            if job.auto_name and not args.format:
                job.dst = str(Path(job.dst).with_suffix(".wav"))
            return decode_audio_job(job, data, args)
        if args.rate is not None:
            raise UsageError("--rate is for audio files")
        if args.format and args.format.upper() not in IMAGE_FORMATS:
            raise UsageError(f"--format {args.format} is an audio format; "
                             "images decode to png, webp, tiff, bmp or jpeg")
        t0 = time.perf_counter()
        fmt = _output_format(job.dst, args.format)
        if job.dst != "-" and Path(job.dst).exists() and not args.force:
            raise FileExistsError(f"{job.dst} exists (use -f to overwrite)")
        image = image_api.decompress_image(data, model=args.model)
        write_atomically(job.dst, lambda f: image_io.save_image(image, f, fmt), args.force)
        seconds = time.perf_counter() - t0
        w, h = image.size
        line = f"{job.src} -> {job.dst}: {w}×{h} {image.mode}, {len(data)} bytes, {8 * len(data) / (w * h):.4f} bpp, {seconds:.2f} s"
        return {"modality": "image", "width": w, "height": h, "mode": image.mode, "bytes": len(data),
                "decode_seconds": round(seconds, 4), "line": line}

    if args.ray is not None:  # --ray [ADDRESS]: the same jobs on a Ray cluster (aecodec.ray)
        from aecodec import ray as ray_jobs

        return ray_jobs.run_cli("decode", jobs, args)
    return run_jobs(jobs, work, args.jobs, args.json, args.quiet)


def decode_audio_job(job: Job, data: bytes, args) -> dict:
    from aecodec import audio
    from aecodec.io import audio as audio_io

    audio.read_info(data)  # a damaged header is the file's fault (exit 1), before the options' (exit 2)
    if args.format and args.format.upper() not in AUDIO_FORMATS:
        raise UsageError(f"--format {args.format} is an image format; audio decodes to wav, flac, ogg or aiff")
    if job.dst != "-" and not args.format and Path(job.dst).suffix.lower() not in formats.AUDIO_OUTPUTS:
        raise UsageError(f"cannot tell the audio output format from {job.dst!r}; use .wav, .flac, .ogg or .aiff")
    fmt = formats.audio_output_format(job.dst, args.format)
    if job.dst != "-" and Path(job.dst).exists() and not args.force:
        raise FileExistsError(f"{job.dst} exists (use -f to overwrite)")
    rate = None
    if args.rate == "model":
        rate = audio.read_info(data).model_rate
    elif args.rate is not None:
        try:
            rate = int(args.rate)
        except ValueError:
            raise UsageError(f"--rate must be a number of Hz or 'model', got {args.rate!r}") from None
        if not audio_io.MIN_RATE <= rate <= audio_io.MAX_RATE:
            raise UsageError(f"--rate must be in [{audio_io.MIN_RATE}, {audio_io.MAX_RATE}] Hz, got {rate}")
    dec = audio.decode(data, sample_rate=rate, model=args.model)
    t0 = time.perf_counter()  # after the model is loaded
    frames = 0

    def write_blocks(f):
        nonlocal frames
        with audio_io.open_writer(f, dec.sample_rate, dec.info.channels, fmt, dec.info.subtype, dec.tags) as out:
            for block in dec.blocks:
                out.write(block)
                frames += len(block)

    write_atomically(job.dst, write_blocks, args.force)
    seconds = time.perf_counter() - t0
    duration = frames / dec.sample_rate
    speed = duration / seconds if seconds > 0 else float("inf")
    kbps = 8 * len(data) / 1000 / dec.info.duration if dec.info.frames else 0.0
    line = (f"{job.src} -> {job.dst}: {duration:.2f} s {dec.sample_rate} Hz ×{dec.info.channels}, {len(data)} bytes, "
            f"{kbps:.2f} kbps, {seconds:.2f} s ({speed:.1f}× real time)")
    return {"modality": "audio", "frames": frames, "sample_rate": dec.sample_rate, "channels": dec.info.channels,
            "bytes": len(data), "kbps": round(kbps, 3), "decode_seconds": round(seconds, 4),
            "realtime_factor": round(speed, 2), "subtype": audio_io.output_subtype(fmt, dec.info.subtype),
            "line": line}


def verify_file(data: bytes) -> None:
    """Decode the whole file without writing anything: every chunk CRC, the index and trailer,
    and every tile's or segment's CRC of decoded symbols; raises on the first problem."""
    from aecodec import audio, container
    from aecodec import image as image_api

    modality = container.ContainerReader(data).header.get("modality")
    if modality == "audio":
        for _ in audio.decode(data).blocks:
            pass
    else:
        image_api.decompress_image(data)


def describe_file(name: str, data: bytes) -> dict:
    from aecodec import container

    reader = container.ContainerReader(data)
    chunks = reader.index()  # bytes in memory: random access works for stdin too
    counts: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for c in chunks:
        counts[c.tag] = counts.get(c.tag, 0) + 1
        sizes[c.tag] = sizes.get(c.tag, 0) + c.length
    doc = {"file": name, "bytes": len(data), "version": f"{reader.major}.{reader.minor}", "header": reader.header,
           "header_bytes": reader.header_bytes,
           "header_deflated": bool(reader.flags & container.FLAG_DEFLATE_HEADER),
           "chunks": {t: {"count": counts[t], "bytes": sizes[t]} for t in sorted(counts)}}
    doc.update(_rates(reader.header, len(data)))
    return doc


def _rates(header: dict, n_bytes: int) -> dict:
    """Images: bits per pixel; audio: duration and kbps, from the header as read_info validates it
    (nothing when it does not validate: the header is still described)."""
    from aecodec import audio
    from aecodec import image as image_api

    try:
        if header.get("modality") == "audio":
            info = audio.parse_audio_header(header)
            if not info.frames:
                return {}
            duration = round(info.duration, 4)
            return {"duration": duration, "kbps": round(8 * n_bytes / 1000 / duration, 4)}
        info = image_api.parse_image_header(header)
        return {"bpp": round(8 * n_bytes / (info.width * info.height), 5)}
    except AecError:
        return {}


def print_description(doc: dict) -> None:
    h = doc["header"]
    img, aud = h.get("image"), h.get("audio")
    stored = "deflated" if doc["header_deflated"] else "JSON"
    print(f"{doc['file']}: aec {doc['version']}, {doc['bytes']} bytes, modality {h.get('modality')}, "
          f"header {doc['header_bytes']} bytes ({stored})" + (", verified" if doc.get("verified") else ""))
    if isinstance(h.get("model"), dict):
        m = h["model"]
        print(f"  model   {m.get('name')} (id {m.get('id')}, weights {m.get('weights')}), quality {h.get('quality')}")
    if isinstance(h.get("coder"), dict):
        print(f"  coder   {h['coder'].get('name')}, precision {h['coder'].get('precision')}")
    if isinstance(img, dict):
        print(f"  image   {img.get('width')}×{img.get('height')} {img.get('mode')} {img.get('bit_depth', 8)}-bit, "
              f"tile {img.get('tile')}" + (f", {doc['bpp']} bpp" if "bpp" in doc else ""))
    if isinstance(aud, dict):
        print(f"  audio   {aud.get('sample_rate')} Hz ×{aud.get('channels')} ({aud.get('coding')}), "
              f"{aud.get('frames')} frames" + (f" = {doc['duration']} s, {doc['kbps']} kbps" if "kbps" in doc else "")
              + f", model rate {aud.get('model_rate')} Hz, segment {aud.get('segment')}"
              + (f", envelope {aud['envelope']}" if "envelope" in aud else "")
              + (f", scale {aud['scale']}" if "scale" in aud else ""))
    for tag, c in doc["chunks"].items():
        print(f"  chunk   {tag} ×{c['count']}, {c['bytes']} bytes")


def cmd_info(args) -> int:
    if args.inputs.count("-") > 1:
        raise UsageError("stdin ('-') can be read once")
    docs, failed = [], 0
    for name in args.inputs:
        try:
            data = read_input(name)
            doc = describe_file(name, data)
            if args.verify:
                verify_file(data)
                doc["verified"] = True
        except (BrokenPipeError, KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - one bad file: report it, describe the others
            failed += 1
            print(f"aecodec: error: {name}: {describe(exc, name)}", file=sys.stderr)
            docs.append({"file": name, "ok": False, "error": describe(exc, name)})
            continue
        doc["ok"] = True
        docs.append(doc)
        if not args.json:
            print_description(doc)
    if args.json:
        print(json.dumps(docs[0] if len(docs) == 1 else {"files": docs, "failed": failed}, indent=2, sort_keys=True))
    return EXIT_ERROR if failed else EXIT_OK


def cmd_compare(args) -> int:
    """How close a decode is to its original: PSNR and MS-SSIM for images, log-mel distance,
    STOI and SI-SDR for audio (the benchmark's metrics)."""

    paths = [args.original, args.decoded]
    if "-" in paths:
        raise UsageError("compare reads files, not stdin")
    audio_side = [_aec_modality(p) == "audio" if Path(p).suffix.lower() == ".aec" else is_audio_input(p)
                  for p in paths]
    if audio_side[0] != audio_side[1]:
        raise UsageError("compare takes two images or two audio files")
    if audio_side[0] or Path(args.original).suffix.lower() in AUDIO_SUFFIXES:
        doc = _compare_audio(*paths)
        line = (f"{args.decoded} vs {args.original}: log-mel distance {doc['log_mel']:.3f}, "
                f"STOI {doc['stoi']:.3f}, SI-SDR {doc['si_sdr']:.2f} dB")
    else:
        doc = _compare_images(*paths)
        line = (f"{args.decoded} vs {args.original}: PSNR-RGB {doc['psnr_rgb']:.2f} dB"
                + (f", MS-SSIM {doc['ms_ssim_rgb']:.4f}" if doc["ms_ssim_rgb"] is not None else
                   ", MS-SSIM n/a (a side under 161 pixels)"))
    print(json.dumps(doc, indent=2, sort_keys=True) if args.json else line)
    return EXIT_OK


def _aec_modality(path: str) -> str | None:
    from aecodec import container

    with open(path, "rb") as f:
        return container.ContainerReader(f).header.get("modality")


def _load_for_compare(path: str):
    from aecodec import image as image_api
    from aecodec.io import image as image_io

    if Path(path).suffix.lower() == ".aec":
        return image_api.decompress_image(Path(path).read_bytes())
    return image_io.open_image(path)


def _compare_images(original: str, decoded: str) -> dict:
    from aecodec.bench.metrics import ms_ssim_rgb, psnr_rgb
    from aecodec.io import image as image_io

    a, b = (image_io.to_planes(_load_for_compare(p)).rgb for p in (original, decoded))
    if a.shape != b.shape:
        raise InputError(f"the images differ in size: {a.shape[1]}×{a.shape[0]} and {b.shape[1]}×{b.shape[0]}")
    psnr = psnr_rgb(a, b)
    return {"modality": "image", "original": original, "decoded": decoded, "width": a.shape[1], "height": a.shape[0],
            "psnr_rgb": round(psnr, 4) if math.isfinite(psnr) else None, "ms_ssim_rgb": ms_ssim_rgb(a, b)}


def _compare_audio(original: str, decoded: str) -> dict:
    import numpy as np

    from aecodec.bench import audio_metrics
    from aecodec.io import audio as audio_io

    def load(path):
        if Path(path).suffix.lower() == ".aec":  # an aec file: its decode at the original rate
            from aecodec import audio

            return audio.read(path)
        src = audio_io.open_audio(path)
        try:
            data = np.concatenate(list(src.blocks()) or [np.zeros((0, src.channels), np.float32)])
        finally:
            src.close()
        return data, src.sample_rate

    (a, ra), (b, rb) = load(original), load(decoded)
    if a.shape[1] != b.shape[1]:
        raise InputError(f"the files differ in channels: {a.shape[1]} and {b.shape[1]}")
    if rb != ra:
        b = audio_metrics.resample(b, rb, ra)
    n = min(len(a), len(b))
    if n < ra // 4:
        raise InputError("too short to compare (under 0.25 s)")
    a, b = a[:n], b[:n]
    return {"modality": "audio", "original": original, "decoded": decoded, "sample_rate": ra, "frames": n,
            "log_mel": round(audio_metrics.log_mel(a, b, ra), 4), "stoi": round(audio_metrics.stoi(a, b, ra), 4),
            "si_sdr": round(audio_metrics.si_sdr(a, b), 3)}


def _codec_list(text: str | None, default: tuple[str, ...]) -> list[str]:
    """--codecs as a list; when not given, every codec of that benchmark."""
    return list(default) if text is None else [c.strip() for c in text.split(",") if c.strip()]


def cmd_bench(args) -> int:
    if args.what == "coder":
        from aecodec.bench import coder as coder_bench

        return coder_bench.main(["--n", str(args.n)] + (["--out", str(args.out)] if args.out else []))
    if args.what == "image":
        from aecodec.bench.codecs import CODEC_NAMES
        from aecodec.bench.image import run_image_bench

        if not args.data or not Path(args.data).is_dir():
            raise UsageError("bench image needs --data DIR (a folder of PNG images)")
        codecs = _codec_list(args.codecs, CODEC_NAMES)
        out = Path(args.out or f"benchmarks/results/image/{Path(args.data).name}")
        qualities = None
        if args.qualities:
            try:
                levels = [float(q) for q in args.qualities.split(",")]
            except ValueError:
                raise UsageError(f"--qualities must be comma-separated numbers, got {args.qualities!r}") from None
            qualities = {c: levels for c in codecs if c == "aec" or c.startswith("aec-e")}
        from aecodec.bench.codecs import get_codec

        for name in codecs:
            try:
                get_codec(name)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        run_image_bench(Path(args.data), codecs, out, qualities=qualities, limit=args.limit)
        return EXIT_OK
    if args.what == "audio":
        from aecodec.bench.audio import run_audio_bench

        if not args.data or not Path(args.data).is_dir():
            raise UsageError("bench audio needs --data DIR (a folder of audio files, sub-folders are subsets)")
        from aecodec.bench.audio_codecs import AUDIO_CODEC_NAMES

        codecs = _codec_list(args.codecs, AUDIO_CODEC_NAMES)
        points = [float(p) for p in args.points.split(",")] if args.points else None
        out = Path(args.out or f"benchmarks/results/audio/{Path(args.data).name}")
        run_audio_bench(Path(args.data), codecs, out, kind=args.kind, limit=args.limit, points=points)
        return EXIT_OK
    if args.what == "anomaly":
        from aecodec.bench.anomaly import DEFAULT_SETS, run_anomaly_bench

        folders = [Path(d) for d in args.data.split(",")] if args.data else list(DEFAULT_SETS)
        for d in folders:
            if not d.is_dir():
                raise UsageError(f"bench anomaly: {d} is not a folder of images (--data DIR[,DIR...])")
        out = Path(args.out or "benchmarks/results/anomaly")
        run_anomaly_bench(folders, out, model=args.model, limit=args.limit)
        return EXIT_OK
    raise UsageError(f"unknown benchmark {args.what!r}")


def _score_files(items: list[str], suffixes: set[str]) -> list[str]:
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


def cmd_score(args) -> int:
    """Anomaly scores: bits per pixel (audio: per second) the model needs; heatmaps; thresholds."""
    from aecodec import analysis, modelfile
    from aecodec.io import image as image_io

    if args.fpr is not None and not 0 <= args.fpr < 1:
        raise UsageError("--fpr must be a fraction in [0, 1)")
    if args.quality is not None and not (args.quality > 0 and math.isfinite(args.quality)):
        raise UsageError("-q must be a positive number")
    if args.tile % 64 or not 64 <= args.tile <= 1024:
        raise UsageError("--tile must be a multiple of 64 in [64, 1024]")
    if args.vmax is not None and not (args.vmax > 0 and math.isfinite(args.vmax)):
        raise UsageError("--vmax must be a positive number of bits per pixel")
    if args.overlay and not args.heatmap:
        raise UsageError("--overlay needs --heatmap DIR")
    files = _score_files(args.inputs, IMAGE_INPUTS | AUDIO_SUFFIXES)
    if args.ray is not None:  # --ray [ADDRESS]: the same scores on a Ray cluster (aecodec.ray)
        from aecodec import ray as ray_jobs

        return ray_jobs.run_cli_score(files, args)
    model = args.model
    if model is not None and modelfile.is_model_file(model):
        model = modelfile.load_model_file(model)  # once, and a bad file is one error (exit 1)
    heat = Path(args.heatmap) if args.heatmap else None
    results, failed = [], 0

    def emit(doc: dict) -> None:
        if args.json:
            print(json.dumps(doc, sort_keys=True), flush=True)
        else:
            unit = "bpp" if doc["modality"] == "image" else "bit/s"
            value = doc["bits_per_pixel"] if doc["modality"] == "image" else doc["bits_per_second"]
            flag = "  ANOMALOUS" if doc.get("anomalous") else ""
            print(f"{value:12.4f} {unit:5s} {doc['file']}{flag}", flush=True)

    for f in files:
        try:
            if Path(f).suffix.lower() in AUDIO_SUFFIXES:
                sc = analysis.score_audio(f, quality=args.quality, model=model)
                doc = {"file": f, "modality": "audio", **sc.to_dict()}
                value = sc.bits_per_second
                if heat is not None:
                    rows = "".join(f"{k / sc.frame_rate:.4f},{b * sc.frame_rate:.1f}\n" for k, b in enumerate(sc.bits_per_frame))
                    target = heat / (Path(f).stem + ".csv")
                    write_atomically(str(target), lambda fo: fo.write(("time_s,bits_per_second\n" + rows).encode()), args.force)
                    doc["heatmap"] = str(target)
            else:
                image = image_io.open_image(f)
                sc = analysis.score_image(image, args.quality, model=model, tile=args.tile)
                doc = {"file": f, "modality": "image", **sc.to_dict(), "hottest_64": list(sc.hottest_window(64))}
                value = sc.bits_per_pixel
                if heat is not None:
                    target = heat / (Path(f).stem + ".png")
                    gray = analysis.heatmap_image(sc, args.vmax)
                    write_atomically(str(target), lambda fo: gray.save(fo, "PNG"), args.force)
                    doc["heatmap"] = str(target)
                    doc["heatmap_max_bpp"] = round(float(args.vmax or sc.bpp_map().max()), 5)
                    if args.overlay:
                        over = analysis.overlay_image(image, sc, args.vmax)
                        target = heat / (Path(f).stem + ".overlay.png")
                        write_atomically(str(target), lambda fo: over.save(fo, "PNG"), args.force)
                        doc["overlay"] = str(target)
            if args.threshold is not None:
                doc["anomalous"] = bool(value > args.threshold)
        except (AecError, OSError) as exc:
            failed += 1
            print(f"aecodec: error: {f}: {' '.join(str(exc).split())}", file=sys.stderr)
            continue
        results.append((doc, value))
        if not args.sort:
            emit(doc)
    if args.sort:
        for doc, _ in sorted(results, key=lambda r: (r[0]["modality"], -r[1])):
            emit(doc)
    if args.fpr is not None:
        for modality, unit in (("image", "bpp"), ("audio", "bit/s")):
            scores = [v for d, v in results if d["modality"] == modality]
            if not scores:
                continue
            t = analysis.suggest_threshold(scores, args.fpr)
            doc = {"suggested_threshold": round(t, 6), "fpr": args.fpr, "n": len(scores), "modality": modality}
            if args.json:
                print(json.dumps(doc, sort_keys=True))
            else:
                note = " (fewer scores than 1/FPR: the largest score)" if args.fpr * len(scores) < 1 else ""
                print(f"suggested threshold at {100 * args.fpr:g} % false positives over {len(scores)} held-out normal "
                      f"{modality} files: {t:.4f} {unit}{note}; flag scores above it")
    return EXIT_ERROR if failed else EXIT_OK


def cmd_train(args) -> int:
    init = Path(args.init) if args.init else None
    if args.what == "image":
        from aecodec.train.image import ImageTrainConfig, train_image

        widths = {"hyperprior": (96, 160), "context": (128, 192)}[args.arch]
        cfg = ImageTrainConfig(data=[Path(d) for d in args.data], out=Path(args.out), steps=args.steps,
                               batch_size=args.batch_size or 8, crop=args.crop, lr=args.lr or 2e-4,
                               device=args.device, N=args.N or widths[0], M=args.M or widths[1], init=init,
                               threads=args.threads, precision=args.precision, compile=args.compile,
                               arch=args.arch, context_only=args.context_only)
        ckpt = train_image(cfg)
    elif args.what == "audio":
        from aecodec.train.audio import AudioTrainConfig, train_audio

        cfg = AudioTrainConfig(data=[Path(d) for d in args.data], out=Path(args.out), family=args.family,
                               steps=args.steps, batch_size=args.batch_size or 16, seconds=args.seconds,
                               lr=args.lr or 3e-4, device=args.device, init=init, threads=args.threads,
                               precision=args.precision, compile=args.compile)
        ckpt = train_audio(cfg)
    else:
        raise UsageError(f"unknown training target {args.what!r}")
    print(f"checkpoint: {ckpt}", file=sys.stderr)
    if args.export:
        from aecodec.train.export import export_checkpoint

        path = export_checkpoint(ckpt, Path(args.export))
        print(f"exported: {path}", file=sys.stderr)
    return EXIT_OK


# ---------------------------------------------------------------------------------------------


# --ray [ADDRESS] (encode, decode, score): the same job on a Ray cluster, through aecodec.ray
RAY_OPTION = dict(nargs="?", const="local", default=None, metavar="ADDRESS",
                  help="run on a Ray cluster (pip install 'aecodec[ray]'): ADDRESS is auto, HOST:PORT or "
                       "ray://HOST:PORT; without one, a local cluster (or RAY_ADDRESS's). Put it after the "
                       "inputs or write --ray=ADDRESS; with -j N, N workers (default: one per CPU)")


def build_parser() -> argparse.ArgumentParser:
    from aecodec import __version__

    ap = argparse.ArgumentParser(prog="aecodec", description="Learned image and audio compression with checked bitstreams.")
    ap.add_argument("--version", action="version", version=f"aecodec {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    ap.subcommands = sub.choices  # main() reports a mistyped flag with the subcommand's usage

    def common(p, what):
        p.add_argument("inputs", nargs="+", metavar="IN", help=f"{what} files or directories; '-' reads stdin")
        p.add_argument("-o", "--output", metavar="OUT", help="output file, '-' for stdout, or DIR/ for batch mode")
        p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
        p.add_argument("-j", "--jobs", type=int, default=1, metavar="N", help="parallel workers in batch mode")
        p.add_argument("-r", "--recursive", action="store_true",
                       help="batch: also code the files in sub-folders (mirrored under OUT/); "
                            "names starting with '.' are skipped")
        p.add_argument("--json", action="store_true",
                       help="machine-readable summary on stdout (on stderr when -o - puts the coded file on stdout)")
        p.add_argument("--quiet", action="store_true", help="no stats line on stderr")
        p.add_argument("--model", default=None,
                       help="model variant; audio: speech or music (default: speech for mono ≤ 24 kHz, else music)")
        p.add_argument("--ray", **RAY_OPTION)

    enc = sub.add_parser("encode", help="compress images or audio to .aec")
    common(enc, "image or audio")
    enc.add_argument("-q", "--quality", type=float, default=None,
                     help=f"quality, fractions allowed: images 1 (smallest) .. {IMAGE_QUALITY_MAX}, default {IMAGE_DEFAULT_QUALITY:g}; "
                          "audio 1 .. 3, default 2")
    enc.add_argument("-b", "--bitrate", type=float, default=None, metavar="KBPS",
                     help="audio: target total bitrate in kbps, as opusenc's --bitrate (speech model ≈ 4–9, music ≈ "
                          "17–120); outside the model's range the nearest quality is used with a warning")
    enc.add_argument("--no-envelope", action="store_true",
                     help="audio: do not send the band-energy envelope (on by default; ~1.4 kbps per channel of speech)")
    enc.add_argument("--target-bpp", type=float, default=None, metavar="B", help="highest quality with at most B bits per pixel")
    enc.add_argument("--effort", type=int, default=0, metavar="0-9",
                     help="images: encode time spent to save bits (default 0: the plain encoder, fastest; higher "
                          "efforts refine the latents, smaller files at the same quality; 9 takes minutes per "
                          "photo). Decoding is unchanged")
    enc.add_argument("--tile", type=int, default=None,
                     help="images: tile size in pixels (multiple of 64, 64..1024; default 1024): a memory bound "
                          "only, tiles are synthesised with overlap and do not show")
    enc.add_argument("--independent-tiles", action="store_true",
                     help="images: code each tile alone, as aecodec <= 0.2 did (its decoders read the file; "
                          "tile borders can show)")
    enc.add_argument("--psnr", action="store_true", help="images: also decode and report PSNR-RGB")
    enc.add_argument("--strip", action="store_true",
                     help="drop all metadata (EXIF, ICC profile; audio: text tags)")
    enc.add_argument("--keep-metadata", action="store_true",
                     help="keep all metadata as it is, GPS location included (default: EXIF without its GPS "
                          "block, ICC profile, audio tags)")
    enc.set_defaults(func=cmd_encode)

    dec = sub.add_parser("decode", help="decompress .aec files (images to .png, audio to .wav by default)")
    common(dec, ".aec")
    dec.add_argument("--format", choices=["png", "webp", "tiff", "bmp", "jpeg", "wav", "flac", "ogg", "aiff"],
                     help="output format (default from suffix)")
    dec.add_argument("--rate", default=None, metavar="HZ|model",
                     help="audio: output sample rate (default: the original rate; 'model' skips resampling)")
    dec.set_defaults(func=cmd_decode)

    info = sub.add_parser("info", help="describe .aec files (header, chunks, rate)")
    info.add_argument("inputs", nargs="+", metavar="FILE", help="aec files; '-' reads stdin")
    info.add_argument("--verify", action="store_true",
                      help="also decode everything (nothing written) and check every CRC: exit 1 if a file is damaged")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_info)

    cmp = sub.add_parser("compare", help="how close a decoded file is to its original (PSNR, MS-SSIM; log-mel, STOI)")
    cmp.add_argument("original", metavar="ORIGINAL")
    cmp.add_argument("decoded", metavar="DECODED", help="the decoded file (an .aec image is decoded first)")
    cmp.add_argument("--json", action="store_true")
    cmp.set_defaults(func=cmd_compare)

    bench = sub.add_parser("bench", help="benchmarks: rate-distortion and coder speed")
    bench.add_argument("what", choices=["image", "audio", "coder", "anomaly"])
    bench.add_argument("--model", default=None, help="anomaly: model name or model file (default: the shipped image model)")
    bench.add_argument("--data", help="folder of images (bench image) or audio files (bench audio); anomaly: "
                       "DIR[,DIR...] (default: ../shared/data Kodak and McMaster18)")
    bench.add_argument("--codecs", default=None, help="comma-separated; default image: aec,jpeg,webp,avif (aec-eN: "
                       "aecodec at --effort N, reported against aec in summary.json's efforts); audio: aec,opus")
    bench.add_argument("--qualities", default=None, help="image: comma-separated aecodec qualities (aec and aec-eN)")
    bench.add_argument("--kind", choices=["speech", "music"], default=None, help="audio: model family (default: guessed)")
    bench.add_argument("--points", default=None, help="audio: comma-separated kbps targets for every codec")
    bench.add_argument("--out", help="output folder (image) or JSON file (coder)")
    bench.add_argument("--limit", type=int, default=None, help="only the first N images (audio: files per subset)")
    bench.add_argument("--n", type=int, default=2_000_000, help="symbols (bench coder)")
    bench.set_defaults(func=cmd_bench)

    score = sub.add_parser("score", help="anomaly scores: bits per pixel (audio: per second) the model needs; heatmaps",
                           description="For each image, the bits per pixel the model needs for it (audio: bits per "
                                       "second) from its likelihoods, without writing a file: a model trained on normal "
                                       "data spends more bits on what it finds surprising.")
    score.add_argument("inputs", nargs="+", metavar="IN", help="image or audio files, or folders of them")
    score.add_argument("--model", default=None,
                       help="registry name, 'speech'/'music', or a model file (.safetensors from train --export)")
    score.add_argument("-q", "--quality", type=float, default=None, help="quality level to score at (default: the model's default)")
    score.add_argument("--json", action="store_true", help="one JSON object per file on stdout (file, bits_per_pixel / bits_per_second, ...)")
    score.add_argument("--heatmap", metavar="DIR", help="write DIR/<stem>.png: 8-bit grayscale, brightness ∝ bits per pixel "
                                                        "(audio: DIR/<stem>.csv, bits per second per latent frame)")
    score.add_argument("--overlay", action="store_true", help="with --heatmap: also DIR/<stem>.overlay.png, in colour over the image")
    score.add_argument("--vmax", type=float, default=None, metavar="BPP", help="heatmap: bits per pixel shown as white (default: each map's maximum)")
    score.add_argument("--sort", action="store_true", help="rank by score, highest first")
    score.add_argument("--fpr", type=float, default=None, metavar="P",
                       help="treat the inputs as held-out normal data: print the threshold that flags at most a fraction P of them")
    score.add_argument("--threshold", type=float, default=None, metavar="T", help="mark files scoring above T as anomalous")
    score.add_argument("--tile", type=int, default=1024, help="images: window size (multiple of 64, 64..1024)")
    score.add_argument("-f", "--force", action="store_true", help="overwrite existing heatmaps")
    score.add_argument("--ray", **RAY_OPTION)
    score.set_defaults(func=cmd_score)

    train = sub.add_parser("train", help="train a model (resumes from OUT/checkpoint.pt)")
    train.add_argument("what", choices=["image", "audio"])
    train.add_argument("--data", required=True, action="append",
                       help="folder of training images / audio files (audio: may be repeated)")
    train.add_argument("--out", required=True, help="run directory (checkpoint, train.log)")
    train.add_argument("--steps", type=int, default=20000)
    train.add_argument("--batch-size", type=int, default=None, help="default 8 (image), 16 (audio)")
    train.add_argument("--lr", type=float, default=None, help="default 2e-4 (image), 3e-4 (audio)")
    train.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    train.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    train.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                       help="bf16: the conv transforms run under autocast (about 2x faster on CPUs with AVX512-BF16); "
                            "entropy models stay fp32")
    train.add_argument("--compile", action="store_true",
                       help="torch.compile the transforms (needs a C++ compiler; ~1.7x faster CPU steps after ~40 s)")
    train.add_argument("--init", metavar="WEIGHTS", help="start a new run from exported .safetensors weights")
    train.add_argument("--export", metavar="FILE", help="write the trained weights as safetensors when done")
    train.add_argument("--crop", type=int, default=128, help="image: crop size")
    train.add_argument("--arch", default="context", choices=["context", "hyperprior"],
                       help="image: context (v7: channel groups + checkerboard; --init with hyperprior weights "
                            "grows them) or hyperprior (v6)")
    train.add_argument("--context-only", action="store_true",
                       help="image, context arch: train only the context networks (transforms and hyperprior "
                            "fixed), on latents computed once (a fraction of a full step's cost)")
    train.add_argument("--N", type=int, default=None, help="image: hidden channels (default 128 context, 96 hyperprior)")
    train.add_argument("--M", type=int, default=None, help="image: latent channels (default 192 context, 160 hyperprior)")
    train.add_argument("--family", default="speech", choices=["speech", "music"], help="audio: model family")
    train.add_argument("--seconds", type=float, default=0.5, help="audio: excerpt length")
    train.set_defaults(func=cmd_train)
    return ap


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra:  # a mistyped flag: the subcommand's usage, not the top-level one
            parser.subcommands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if getattr(args, "jobs", 1) < 1:
        print("aecodec: error: -j must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    import signal
    import warnings

    if not sys.warnoptions:  # torch deprecations, Pillow's notes: not for CLI users (-W brings them back)
        warnings.simplefilter("ignore")
    old_term = None
    if threading.current_thread() is threading.main_thread():
        old_term = signal.signal(signal.SIGTERM, _interrupt)  # unwind like Ctrl-C: no *.part file left
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"aecodec: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # whoever read stdout stopped (`| head`): quiet, like cat or grep
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return EXIT_ERROR
    except (AecError, OSError) as exc:
        print(f"aecodec: error: {describe(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("aecodec: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - never a traceback for users; AECODEC_TRACEBACK=1 shows it
        if os.environ.get("AECODEC_TRACEBACK"):
            raise
        print(f"aecodec: error: {describe(exc)}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
