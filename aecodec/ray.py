"""Code and score whole corpora on a Ray cluster: Ray Data ``map_batches`` over an actor pool.

    encode_dataset(ds, output=None, ...)   images / audio        -> .aec
    decode_dataset(ds, output=None, ...)   .aec                  -> PNG (or --format) / WAV (or --format)
    score_dataset(ds, ...)                 images / audio        -> anomaly scores (bits per pixel / second)

Rows come in with a ``path`` column (files every worker can read: a shared or network file
system), a ``bytes`` column (``ray.data.read_binary_files(..., include_paths=True)`` reads object
stores too), or both (the bytes are coded, the path names the row); a single ``item`` column of
strings or bytes (``ray.data.from_items``) works as well. Each worker (one Ray actor per CPU by
default) loads its model once and codes row after row, one torch thread per CPU it holds, through
the CLI's own per-file functions (``aecodec.jobs.encode_image_job``, ...) with the options the
CLI parses (``cli_args``): the bytes are those ``aecodec encode|decode`` writes for the same input and options.

Each result row keeps the input's columns (``bytes`` excepted) and adds

    output       the file written (None when nothing was written)
    data         the coded file's bytes, when no output was asked for
    error        one line saying why this row failed (None when it worked); a bad row never fails the job
    error_type   the exception's class name (FormatError, InputError, FileExistsError, UsageError, ...)
    info         JSON: the fields ``aecodec encode|decode --json`` prints for a file, and ``stats``,
                 its stats line (score: the document ``aecodec score --json`` prints)
    score        score_dataset only: bits per pixel (images) or bits per second (audio)

Outputs go to ``output`` (a folder: ``<stem>.aec`` / ``<stem>.png`` / ``<stem>.wav``) or to an
``output`` column's path per row. Each is written to a temporary file in the target folder and
linked into place: a file is whole or absent, never half-written. An existing file is kept (its
row gets a FileExistsError) unless ``force=True`` — also when two rows name one output at the
same time: the first keeps it (with ``force=True`` the last one written stays).

Workers hold ``cpus_per_worker`` CPUs each; a dataset that is read by Ray tasks (``read_binary_files``)
needs CPUs left for those: ``workers`` below the cluster's CPU count (a pool that takes every CPU
waits for reads that never run), or the read's ``ray_remote_args={"num_cpus": 0.25}``.

``aecodec encode|decode|score ... --ray [ADDRESS]`` runs these jobs from the command line; see
``run_cli``. Install with ``pip install 'aecodec[ray]'`` on the driver and on every node.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from pathlib import Path

from aecodec.errors import InputError

__all__ = ["encode_dataset", "decode_dataset", "score_dataset", "write_file", "cli_args", "RESULT_COLUMNS"]

RESULT_COLUMNS = ("output", "data", "error", "error_type", "info")  # and "score" (score_dataset)


def _ray():
    try:
        import ray  # the Ray package (absolute import: this module is aecodec.ray)
        import ray.data  # noqa: F401
    except ImportError:
        raise ImportError("aecodec.ray needs Ray Data: pip install 'aecodec[ray]'") from None
    return ray


# ---------------------------------------------------------------------------------------------
# writing outputs


def _umask() -> int:
    from aecodec.io.files import process_umask

    return process_umask()


def write_file(path: str | os.PathLike, data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` whole or not at all: a temporary file beside it, fsync'd, then
    linked into place (an existing file is kept: FileExistsError, atomically even against another
    worker writing the same name) or, with ``force``, renamed over it. Mode 0666 & ~umask."""
    target = Path(path)
    if not force and target.exists():
        raise FileExistsError(f"{target} exists (use -f / force=True to overwrite)")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:  # name the output, not the temporary file
        raise OSError(exc.errno, exc.strerror, str(target)) from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails if the name exists: no check-then-rename race
            except FileExistsError:
                raise FileExistsError(f"{target} exists (use -f / force=True to overwrite)") from None
            except OSError:  # a file system without hard links
                if target.exists():
                    raise FileExistsError(f"{target} exists (use -f / force=True to overwrite)") from None
                os.replace(tmp, target)
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# one row: the same steps as the CLI's encode_image_job / encode_audio_job / decode / score


class _NamedBytes(io.BytesIO):
    """Bytes read as a file that error messages name by its path (Pillow shows the file object's repr)."""

    def __init__(self, data: bytes, name: str | None):
        super().__init__(data)
        self.label = name or "<bytes>"

    def __repr__(self) -> str:
        return repr(self.label)

    def __getitem__(self, key):  # raw[:16]: the first bytes, as the CLI sniffs stdin
        return self.getvalue()[key]


def cli_args(verb: str, flags=()) -> argparse.Namespace:
    """The options of ``aecodec <verb> <flags>`` as the CLI parses them (every default included)."""
    from aecodec.cli import build_parser

    try:
        return build_parser().parse_args([verb, "-", *map(str, flags)])
    except SystemExit:  # argparse has printed what is wrong
        raise ValueError(f"invalid aecodec {verb} options: {' '.join(map(str, flags))}") from None


def _is_audio(name: str | None, raw) -> bool:
    from aecodec.io.formats import is_audio

    if name is not None and Path(name).suffix:
        return is_audio(name)  # by suffix, as the CLI goes by a file's name
    return raw is not None and is_audio("-", raw[:16])  # no suffix to go by: the first bytes say


def _through_cli(run, tmp: str, suffix: str) -> tuple[bytes, dict, str]:
    """Run one of the CLI's per-file jobs into a scratch file; (its bytes, its --json fields, its name)."""
    from aecodec.batch import Job

    job = Job("", os.path.join(tmp, "out" + suffix))
    info = run(job)
    try:
        return Path(job.dst).read_bytes(), info, job.dst
    finally:
        os.unlink(job.dst)


def encode_one(args: argparse.Namespace, name: str | None, data: bytes | None) -> tuple[bytes, dict]:
    """(aec bytes, the CLI's --json fields) for one image or audio file: the file ``name`` when
    ``data`` is None, else ``data`` (``name`` then only says what it is). The CLI's own encode_image_job /
    encode_audio_job do the work, so the bytes are those ``aecodec encode`` writes with ``args``."""
    from aecodec import jobs

    raw = None if data is None else _NamedBytes(data, name)
    args._warned = set()  # notes about options that do not apply: for each file
    with tempfile.TemporaryDirectory(prefix="aecodec-ray-") as tmp:
        def run(job):
            job.src = name if name is not None else "-"
            if _is_audio(name, raw):
                return jobs.encode_audio_job(job, raw, args)
            return jobs.encode_image_job(job, raw, args)

        out, info, scratch = _through_cli(run, tmp, ".aec")
    return out, _cleaned(info, scratch)


def decode_one(args: argparse.Namespace, data: bytes, fmt_from: str | None = None) -> tuple[bytes, dict, str]:
    """(decoded file's bytes, the CLI's --json fields, its suffix) for one aec file, as
    ``aecodec decode`` with ``args`` writes it. The format: ``args.format``, else ``fmt_from``'s
    suffix (an output path), else PNG for images and WAV for audio."""
    from aecodec import container, jobs
    from aecodec import image as image_api
    from aecodec.errors import UsageError
    from aecodec.io import image as image_io
    from aecodec.io.formats import IMAGE_FORMATS

    modality = container.ContainerReader(data).header.get("modality")
    if modality == "audio":
        if fmt_from is not None and not args.format:
            suffix = Path(fmt_from).suffix
        else:
            suffix = ".wav" if not args.format else "." + args.format.lower()
        with tempfile.TemporaryDirectory(prefix="aecodec-ray-") as tmp:
            out, info, scratch = _through_cli(lambda job: jobs.decode_audio_job(job, data, args), tmp, suffix)
        return out, _cleaned(info, scratch), suffix
    # images: jobs.decode_image_job's steps, into memory
    if args.rate is not None:
        raise UsageError("--rate is for audio files")
    if args.format and args.format.upper() not in IMAGE_FORMATS:
        raise UsageError(f"--format {args.format} is an audio format; "
                             "images decode to png, webp, tiff, bmp or jpeg")
    fmt = jobs.image_output_format(fmt_from or "x." + (args.format or "png").lower(), args.format)
    t0 = time.perf_counter()
    image = image_api.decompress_image(data, model=args.model)
    buf = io.BytesIO()
    image_io.save_image(image, buf, fmt)
    seconds = time.perf_counter() - t0
    w, h = image.size
    info = {"modality": "image", "width": w, "height": h, "mode": image.mode, "bytes": len(data),
            "decode_seconds": round(seconds, 4),
            "stats": f"{w}×{h} {image.mode}, {len(data)} bytes, {8 * len(data) / (w * h):.4f} bpp, {seconds:.2f} s"}
    return buf.getvalue(), info, "." + (args.format or "png").lower() if fmt_from is None else Path(fmt_from).suffix


def score_one(args: argparse.Namespace, name: str | None, data: bytes | None, model=None) -> tuple[float, dict]:
    """(bits per pixel or per second, the document ``aecodec score --json`` prints) for one file."""
    from aecodec import analysis
    from aecodec.io import audio as audio_io
    from aecodec.io import image as image_io

    src = name if data is None else _NamedBytes(data, name)
    model = args.model if model is None else model
    if _is_audio(name, src if data is not None else None):
        source = audio_io.open_audio(src)
        try:
            sc = analysis.score_audio(source, quality=args.quality, model=model)
        finally:
            source.close()
        return sc.bits_per_second, {"file": name, "modality": "audio", **sc.to_dict()}
    image = image_io.open_image(src)
    sc = analysis.score_image(image, args.quality, model=model, tile=args.tile)
    doc = {"file": name, "modality": "image", **sc.to_dict(), "hottest_64": list(sc.hottest_window(64))}
    return sc.bits_per_pixel, doc


def _cleaned(info: dict, scratch: str) -> dict:
    """The CLI's fields; of its line "IN -> OUT: stats" the stats (OUT was a scratch file)."""
    info = dict(info)
    line = info.pop("line", "")
    info["stats"] = line.split(f"{scratch}: ", 1)[-1]
    return info


# ---------------------------------------------------------------------------------------------
# the actor


def _describe(exc: BaseException, path: str | None) -> str:
    from aecodec.batch import describe_error

    return describe_error(exc, path)


class _Worker:
    """One Ray actor: loads its model once, then codes batch after batch (a pyarrow Table each).

    Every row's failure is caught and recorded in its ``error`` / ``error_type`` columns."""

    def __init__(self, verb: str, args: argparse.Namespace, output: str | None, threads: int = 1):
        import torch

        from aecodec import analysis, coding, modelfile

        torch.set_num_threads(max(1, threads))
        coding.CODING_THREADS = max(1, threads)  # tiles / segments in parallel: no more threads than CPUs held
        self.verb, self.args, self.output, self.force = verb, args, output, bool(getattr(args, "force", False))
        self.model = None
        if verb == "score" and args.model is not None and modelfile.is_model_file(args.model):
            self.model = modelfile.load_model_file(args.model)
        elif args.model is None:
            analysis.resolve_model(None, "image")  # warm the registry's cache: loaded once per worker

    def __call__(self, batch):
        import pyarrow as pa

        names = batch.column_names
        paths = _column(batch, "path")
        blobs = _column(batch, "bytes")
        if "item" in names and paths is None and blobs is None:
            items = batch.column("item").to_pylist()
            if any(isinstance(i, (bytes, bytearray)) for i in items):
                blobs = items
            else:
                paths = items
        targets = _column(batch, "output")
        auto = _column(batch, "auto_suffix")
        n = batch.num_rows
        cols: dict[str, list] = {"output": [None] * n, "data": [None] * n, "error": [None] * n,
                                 "error_type": [None] * n, "info": [None] * n}
        if self.verb == "score":
            cols["score"] = [None] * n
        for i in range(n):
            name = paths[i] if paths is not None else None
            target = targets[i] if targets is not None else None
            t0 = time.perf_counter()
            try:
                data = blobs[i] if blobs is not None else None
                if data is None and name is None:
                    raise InputError("the row has neither a path nor bytes")
                result, info, written = self._one(name, data, target, bool(auto[i]) if auto is not None else False)
                info["seconds"] = round(time.perf_counter() - t0, 4)
                if self.verb == "score":
                    cols["score"][i] = float(result)
                elif written is not None:
                    cols["output"][i] = written
                else:
                    cols["data"][i] = result
                cols["info"][i] = json.dumps(info, sort_keys=True)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - this row's failure: record it, code the others
                cols["error"][i] = _describe(exc, target or name)
                cols["error_type"][i] = type(exc).__name__
        kept = [c for c in names if c not in ("bytes", *cols)]
        table = batch.select(kept)
        types = {"output": pa.string(), "data": pa.binary(), "error": pa.string(), "error_type": pa.string(),
                 "info": pa.string(), "score": pa.float64()}
        for key, values in cols.items():
            table = table.append_column(pa.field(key, types[key]), pa.array(values, types[key]))
        return table

    def _one(self, name: str | None, data: bytes | None, target: str | None, auto_suffix: bool):
        """(result, info, the path written or None). ``auto_suffix``: ``target`` was derived from the
        input's name (the CLI's DIR/<stem>.png), so audio decodes to .wav unless a format is given."""
        if self.verb == "score":
            value, doc = score_one(self.args, name, data, self.model)
            return value, doc, None
        base = None  # output folder given: <folder>/<stem> + the suffix of what comes out
        if target is None and self.output is not None:
            if name is None:
                raise InputError("a row without a path cannot be named in the output folder")
            base = str(Path(self.output) / Path(name).stem)
        if self.verb == "encode":
            target = base + ".aec" if base is not None else target
            _refuse_existing(target, self.force)
            out, info = encode_one(self.args, name, data)
        else:
            _refuse_existing(target, self.force)
            if data is None:
                data = Path(name).read_bytes()
            out, info, suffix = decode_one(self.args, data, target if target and not auto_suffix else None)
            if base is not None:
                target = base + suffix
            elif target is not None and auto_suffix and info["modality"] == "audio" and not self.args.format:
                target = str(Path(target).with_suffix(".wav"))
        if target is None:
            return out, info, None
        write_file(target, out, self.force)
        return out, info, target


def _refuse_existing(target: str | None, force: bool) -> None:
    if target is not None and not force and Path(target).exists():
        raise FileExistsError(f"{target} exists (use -f / force=True to overwrite)")


def _column(batch, name: str):
    return batch.column(name).to_pylist() if name in batch.column_names else None


# ---------------------------------------------------------------------------------------------
# the jobs


def _run(ds, verb: str, args: argparse.Namespace, output, workers, cpus_per_worker: float, batch_size: int):
    ray = _ray()
    if output is not None and str(output) == "-":
        raise ValueError("output must be a folder (shared by the workers), not stdout")
    if workers is not None and workers < 1:
        raise ValueError("workers must be at least 1")
    if workers is None:  # as many as the cluster's CPUs allow, started as work arrives
        cpus = int(ray.cluster_resources().get("CPU", 1)) if ray.is_initialized() else (os.cpu_count() or 1)
        compute = ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, int(cpus // cpus_per_worker)))
    else:
        compute = ray.data.ActorPoolStrategy(size=int(workers))
    return ds.map_batches(_Worker, batch_format="pyarrow", batch_size=batch_size, compute=compute,
                          num_cpus=cpus_per_worker,
                          fn_constructor_kwargs={"verb": verb, "args": args, "threads": max(1, int(cpus_per_worker)),
                                                 "output": None if output is None else str(output)})


def encode_dataset(ds, output: str | os.PathLike | None = None, *, quality: float | None = None,
                   target_bpp: float | None = None, bitrate: float | None = None, tile: int | None = None,
                   metadata: str = "default", envelope: bool = True, model: str | None = None, force: bool = False,
                   flags=(), workers: int | None = None, cpus_per_worker: float = 1, batch_size: int = 1):
    """Encode every row's image or audio file to aec (lazy: a Dataset of results, see the module).

    ``output``: a folder (``<stem>.aec`` in it), or None: the aec bytes in the ``data`` column (or
    a per-row ``output`` column of paths). Options as ``aecodec encode``'s: ``quality`` (-q),
    ``target_bpp``, ``bitrate`` (-b, audio kbps), ``tile``, ``metadata`` ("default", "none" =
    --strip, "all" = --keep-metadata), ``envelope=False`` (--no-envelope), ``model`` (a registry
    name), ``flags``: any further ``aecodec encode`` options as words (``["--independent-tiles"]``).
    ``workers``: actors in the pool (default: up to one per ``cpus_per_worker`` CPUs of the cluster)."""
    if metadata not in ("default", "none", "all"):
        raise ValueError(f"metadata must be 'default', 'none' or 'all', got {metadata!r}")
    words = list(flags)
    for flag, value in (("-q", quality), ("--target-bpp", target_bpp), ("-b", bitrate), ("--tile", tile),
                        ("--model", model)):
        if value is not None:
            words += [flag, str(value)]
    words += {"none": ["--strip"], "all": ["--keep-metadata"], "default": []}[metadata]
    words += [] if envelope else ["--no-envelope"]
    words += ["-f"] if force else []
    return _run(ds, "encode", _checked_encode_args(cli_args("encode", words)), output, workers, cpus_per_worker,
                batch_size)


def _checked_encode_args(args: argparse.Namespace) -> argparse.Namespace:
    """The checks cmd_encode makes before any file (the others are made per file, as error rows)."""
    if args.quality is not None and args.target_bpp is not None:
        raise ValueError("quality and target_bpp exclude each other")
    if args.quality is not None and args.bitrate is not None:
        raise ValueError("quality and bitrate exclude each other")
    if args.psnr:
        raise ValueError("--psnr is not available on a cluster")
    effort = getattr(args, "effort", 0)
    if effort:
        from aecodec.effort import MAX_EFFORT

        if not 0 <= effort <= MAX_EFFORT:
            raise ValueError(f"effort must be an integer from 0 to {MAX_EFFORT}, got {effort}")
    return args


def decode_dataset(ds, output: str | os.PathLike | None = None, *, format: str | None = None,
                   rate: int | str | None = None, model: str | None = None, force: bool = False, flags=(),
                   workers: int | None = None, cpus_per_worker: float = 1, batch_size: int = 1):
    """Decode every row's aec file (lazy: a Dataset of results, see the module).

    ``output``: a folder (``<stem>.png`` for images, ``<stem>.wav`` for audio, or ``format``'s
    suffix), or None: the decoded file's bytes in the ``data`` column. ``rate``: audio output rate
    (Hz, or "model"); ``flags``: further ``aecodec decode`` options as words."""
    words = list(flags)
    for flag, value in (("--format", format), ("--rate", rate), ("--model", model)):
        if value is not None:
            words += [flag, str(value)]
    words += ["-f"] if force else []
    return _run(ds, "decode", cli_args("decode", words), output, workers, cpus_per_worker, batch_size)


def score_dataset(ds, *, quality: float | None = None, tile: int = 1024, model: str | None = None, flags=(),
                  workers: int | None = None, cpus_per_worker: float = 1, batch_size: int = 1):
    """Anomaly-score every row's image or audio file (lazy: a Dataset of results, see the module):
    a ``score`` column (bits per pixel, audio: bits per second) and ``info`` (``aecodec score --json``'s
    document). ``model``: a registry name, 'speech' / 'music', or a model file every worker can read."""
    import math

    if quality is not None and not (quality > 0 and math.isfinite(quality)):
        raise ValueError("quality must be a positive number")
    if tile % 64 or not 64 <= tile <= 1024:
        raise ValueError("tile must be a multiple of 64 in [64, 1024]")
    words = list(flags) + ["--tile", str(tile)]
    for flag, value in (("-q", quality), ("--model", model)):
        if value is not None:
            words += [flag, str(value)]
    return _run(ds, "score", cli_args("score", words), None, workers, cpus_per_worker, batch_size)


# ---------------------------------------------------------------------------------------------
# the command line: aecodec encode|decode|score ... --ray [ADDRESS]


def _address(value: str) -> str | None:
    """--ray's ADDRESS: None for a local cluster (or RAY_ADDRESS's), else what ray.init takes."""
    from aecodec.errors import UsageError

    if value in ("", "local"):
        return None
    if value == "auto" or "://" in value:
        return value
    host, _, port = value.rpartition(":")
    if host and port.isdigit() and not Path(value).exists():
        return value
    raise UsageError(f"--ray took {value!r} as the cluster address; an address is auto, HOST:PORT or "
                     "ray://HOST:PORT (put the inputs before --ray, or write --ray=ADDRESS)")


def _connect(address: str | None) -> bool:
    """Start or join a cluster unless this process has one; True when this call started it."""
    import logging

    from aecodec.errors import UsageError

    try:
        ray = _ray()
    except ImportError as exc:
        raise UsageError(f"--ray: {exc}") from None
    if ray.is_initialized():
        return False
    try:
        if address is None:
            ray.init(logging_level=logging.WARNING, log_to_driver=False, include_dashboard=False)
        else:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConnectionError(f"cannot start or reach the Ray cluster {address or '(local)'}: "
                              f"{' '.join(str(exc).split())}") from None
    return True


def _dataset(rows: list[dict]):
    ray = _ray()
    return ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 10_000)))


def _workers(args) -> int | None:
    jobs = getattr(args, "jobs", 1)
    return jobs if jobs > 1 else None  # -j N: N workers; else as many as the cluster has CPUs


def run_cli(verb: str, jobs: list, args) -> int:
    """``aecodec encode|decode`` with ``--ray``: the planned jobs (batch.plan_jobs) on a Ray cluster;
    each file's line as it finishes, the summary and ``--json`` document as the local run prints them."""
    from aecodec.batch import EXIT_ERROR, EXIT_OK, EXIT_USAGE, Reporter
    from aecodec.errors import UsageError

    address = _address(args.ray)
    if any(job.src == "-" or job.dst == "-" for job in jobs):
        raise UsageError("--ray reads and writes files, not stdin or stdout")
    if getattr(args, "psnr", False):
        raise UsageError("--psnr is not available with --ray")
    rows = [{"job": i, "path": os.path.abspath(job.src), "output": os.path.abspath(job.dst),
             "auto_suffix": bool(job.auto_name)} for i, job in enumerate(jobs)]
    args = _checked_encode_args(args) if verb == "encode" else args
    started = _connect(address)
    try:
        out = _run(_dataset(rows), verb, args, None, _workers(args), 1, 1)
        reporter = Reporter(len(jobs), args.json, args.quiet)
        results: list[dict | None] = [None] * len(jobs)
        usage = 0
        for row in out.iter_rows():
            job = jobs[row["job"]]
            if row["error"] is None:
                info = json.loads(row["info"])
                dst = job.dst if row["output"] == os.path.abspath(job.dst) else \
                    str(Path(job.dst).with_suffix(Path(row["output"]).suffix))  # decode: audio to .wav
                info.update(input=job.src, output=dst, ok=True, line=f"{job.src} -> {dst}: {info.pop('stats')}")
            else:
                usage += row["error_type"] == "UsageError"
                info = {"input": job.src, "output": job.dst, "ok": False, "error": row["error"]}
            results[row["job"]] = dict(info)
            results[row["job"]].pop("line", None)
            reporter.report(info)
    finally:
        if started:
            _ray().shutdown()
    reporter.summary()
    if args.json:
        doc = results[0] if len(results) == 1 else {"files": results, "failed": reporter.failed}
        print(json.dumps(doc, indent=2, sort_keys=True))
    if usage:
        return EXIT_USAGE
    return EXIT_ERROR if reporter.failed else EXIT_OK


def run_cli_score(files: list[str], args) -> int:
    """``aecodec score`` with ``--ray``: the same lines / JSON documents, --sort, --threshold and --fpr."""
    import sys

    from aecodec import jobs
    from aecodec.batch import EXIT_ERROR, EXIT_OK
    from aecodec.errors import UsageError

    address = _address(args.ray)
    if args.heatmap:
        raise UsageError("--heatmap is not available with --ray")
    started = _connect(address)
    try:
        out = _run(_dataset([{"job": i, "path": os.path.abspath(f)} for i, f in enumerate(files)]), "score", args,
                   None, _workers(args), 1, 1)
        rows = sorted(out.iter_rows(), key=lambda r: r["job"])  # the local order: as the files were named
    finally:
        if started:
            _ray().shutdown()
    results, failed = [], 0
    for row in rows:
        f = files[row["job"]]
        if row["error"] is not None:
            failed += 1
            print(f"aecodec: error: {f}: {row['error']}", file=sys.stderr)
            continue
        doc = json.loads(row["info"])
        doc.pop("seconds", None)
        doc["file"] = f
        if args.threshold is not None:
            doc["anomalous"] = bool(row["score"] > args.threshold)
        results.append((doc, row["score"]))
    if args.sort:
        results.sort(key=lambda r: (r[0]["modality"], -r[1]))
    for doc, _ in results:
        print(jobs.score_line(doc, args.json), flush=True)
    if args.fpr is not None:
        for line in jobs.threshold_lines(results, args.fpr, args.json):
            print(line)
    return EXIT_ERROR if failed else EXIT_OK
