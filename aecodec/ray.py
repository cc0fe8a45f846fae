"""Code and score whole corpora on a Ray cluster: Ray Data ``map_batches`` over an actor pool.

    encode_dataset(ds, output=None, ...)   images / audio        -> .aec
    decode_dataset(ds, output=None, ...)   .aec                  -> PNG (or --format) / WAV (or --format)
    score_dataset(ds, ...)                 images / audio        -> anomaly scores (bits per pixel / second)

Rows come in with a ``path`` column (files every worker can read: a shared or network file
system), a ``bytes`` column (``ray.data.read_binary_files(..., include_paths=True)`` reads object
stores too), or both (the bytes are coded, the path names the row); a single ``item`` column of
strings or bytes (``ray.data.from_items``) works as well. Each worker (one Ray actor per CPU by
default) loads its model once and codes row after row with the public API, one torch thread per
CPU it holds: the bytes are those the local API and ``aecodec encode`` write for the same input.

Each result row keeps the input's columns (``bytes`` excepted) and adds

    output       the file written (None when nothing was written)
    data         the coded file's bytes, when no output was asked for
    error        one line saying why this row failed (None when it worked); a bad row never fails the job
    error_type   the exception's class name (FormatError, InputError, FileExistsError, UsageError, ...)
    info         JSON: the fields ``aecodec encode|decode --json`` prints for a file (score: the
                 document ``aecodec score --json`` prints)
    score        score_dataset only: bits per pixel (images) or bits per second (audio)

Outputs go to ``output`` (a folder: ``<stem>.aec`` / ``<stem>.png`` / ``<stem>.wav``) or to an
``output`` column's path per row. Each is written to a temporary file in the target folder and
renamed into place: a file is whole or absent, never half-written. An existing file is kept
(its row gets a FileExistsError) unless ``force=True``; two rows naming one output never both win.

Workers hold ``cpus_per_worker`` CPUs each; a dataset that is read by Ray tasks (``read_binary_files``)
needs CPUs left for those: ``workers`` below the cluster's CPU count (a pool that takes every CPU
waits for reads that never run), or the read's ``ray_remote_args={"num_cpus": 0.25}``.

``aecodec encode|decode|score ... --ray [ADDRESS]`` runs these jobs from the command line; see
``run_cli``. Install with ``pip install 'aecodec[ray]'`` on the driver and on every node.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from pathlib import Path

from aecodec.errors import InputError

__all__ = ["encode_dataset", "decode_dataset", "score_dataset", "write_file", "RESULT_COLUMNS"]

RESULT_COLUMNS = ("output", "data", "error", "error_type", "info")
IMAGE_DECODE_FORMATS = {"png": "PNG", "webp": "WEBP", "tiff": "TIFF", "bmp": "BMP", "jpeg": "JPEG"}
AUDIO_DECODE_FORMATS = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "aiff": "AIFF"}


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
    from aecodec.cli import _umask as umask

    return umask()


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


def _is_audio(name: str | None, data: bytes) -> bool:
    from aecodec.cli import is_audio_input

    if name is not None and Path(name).suffix:
        return is_audio_input(name)
    return is_audio_input("-", data[:16])  # no suffix to go by: the first bytes say


def _usage(text: str) -> Exception:
    from aecodec.cli import UsageError

    return UsageError(text)


def encode_one(data: bytes, name: str | None, opts: dict, model=None) -> tuple[bytes, dict]:
    """(aec bytes, the CLI's --json fields) for one image or audio file's bytes."""
    from aecodec import codec
    from aecodec.io import image as image_io

    notes: list[str] = []
    if _is_audio(name, data):
        return _encode_audio(data, opts, model, notes)
    if opts.get("bitrate") is not None:
        raise _usage("-b (kbps) is for audio; images take -q or --target-bpp")
    if opts.get("envelope") is False:
        notes.append("--no-envelope does not apply to images; ignored")
    loaded = codec._resolve(model)
    image = image_io.open_image(_NamedBytes(data, name))
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        notes.append(f"{image.format or 'image'} with {frames} frames: only the first frame is coded")
    removed = image_io.apply_metadata_policy(image, opts.get("metadata", "default"))
    if removed:
        notes.append(f"{removed} removed (--keep-metadata keeps it)")
    tile = opts.get("tile") or codec.DEFAULT_TILE
    q = codec.DEFAULT_QUALITY if opts.get("quality") is None else opts["quality"]
    if opts.get("target_bpp") is not None:
        result = codec.compress_image_to_target(image, opts["target_bpp"], model=loaded, tile=tile)
        out, q = result.data, result.quality
        if result.warning:
            notes.append(result.warning)
    else:
        out = codec.compress_image(image, q, model=loaded, tile=tile)
    w, h = image.size
    info = {"modality": "image", "bytes": len(out), "bpp": round(8 * len(out) / (w * h), 5), "width": w,
            "height": h, "quality": q}
    if opts.get("target_bpp") is not None:
        info["target_bpp"] = opts["target_bpp"]
    if notes:
        info["warnings"] = notes
    return out, info


def _encode_audio(data: bytes, opts: dict, model, notes: list[str]) -> tuple[bytes, dict]:
    from aecodec import audio
    from aecodec.io import audio as audio_io

    if opts.get("target_bpp") is not None:
        raise _usage("--target-bpp is for images; audio takes -b KBPS or -q 1..3")
    if opts.get("tile") is not None:
        notes.append("--tile does not apply to audio; ignored")
    source = audio_io.open_audio(data)
    try:
        loaded = audio.choose_model(source.sample_rate, source.channels, opts.get("bitrate"), model)
        lo, hi = loaded.variant.qualities
        quality = opts.get("quality")
        if quality is not None and not lo <= quality <= hi:
            raise _usage(f"-q must be between {lo:g} and {hi:g} for audio ({loaded.variant.name}), got {quality:g}")
        if opts.get("metadata") == "none":
            source.tags = {}
        buf = io.BytesIO()
        envelope_on = False if opts.get("envelope") is False else None
        st = audio.encode(source, buf, opts.get("bitrate"), quality=quality, model=loaded, envelope_on=envelope_on)
    finally:
        source.close()
    if st.warning:
        notes.append(st.warning)
    info = {"modality": "audio", "bytes": st.bytes, "kbps": round(st.kbps, 3), "duration": round(st.seconds_audio, 3),
            "sample_rate": source.sample_rate, "channels": source.channels, "model": st.model, "quality": st.quality}
    if opts.get("bitrate") is not None:
        info["requested_kbps"] = opts["bitrate"]
    if notes:
        info["warnings"] = notes
    return buf.getvalue(), info


def decode_one(data: bytes, opts: dict, fmt_from: str | None = None, model=None) -> tuple[bytes, dict, str]:
    """(decoded file's bytes, the CLI's --json fields, the suffix it takes) for one aec file.

    The format: ``opts["format"]``, else ``fmt_from``'s suffix (an output path), else PNG / WAV."""
    from aecodec import audio, codec, container
    from aecodec.io import audio as audio_io
    from aecodec.io import image as image_io

    fmt = opts.get("format")
    modality = container.ContainerReader(data).header.get("modality")
    if modality == "audio":
        audio.read_info(data)  # a damaged header is the file's fault, before the options'
        if fmt and fmt.lower() not in AUDIO_DECODE_FORMATS:
            raise _usage(f"--format {fmt} is an image format; audio decodes to wav, flac, ogg or aiff")
        if not fmt and fmt_from is not None and Path(fmt_from).suffix.lower() not in audio_io.OUTPUT_FORMATS:
            raise _usage(f"cannot tell the audio output format from {fmt_from!r}; use .wav, .flac, .ogg or .aiff")
        kind = audio_io.output_format(fmt_from if fmt_from is not None else "x.wav", fmt)
        rate = opts.get("rate")
        if rate == "model":
            rate = audio.read_info(data).model_rate
        dec = audio.decode(data, sample_rate=rate, model=model)
        buf = io.BytesIO()
        frames = 0
        with audio_io.open_writer(buf, dec.sample_rate, dec.info.channels, kind, dec.info.subtype, dec.tags) as out:
            for block in dec.blocks:
                out.write(block)
                frames += len(block)
        kbps = 8 * len(data) / 1000 / dec.info.duration if dec.info.frames else 0.0
        info = {"modality": "audio", "frames": frames, "sample_rate": dec.sample_rate, "channels": dec.info.channels,
                "bytes": len(data), "kbps": round(kbps, 3), "subtype": audio_io.output_subtype(kind, dec.info.subtype)}
        return buf.getvalue(), info, "." + kind.lower()
    if opts.get("rate") is not None:
        raise _usage("--rate is for audio files")
    if fmt and fmt.lower() not in IMAGE_DECODE_FORMATS:
        raise _usage(f"--format {fmt} is an audio format; images decode to png, webp, tiff, bmp or jpeg")
    if fmt:
        kind = IMAGE_DECODE_FORMATS[fmt.lower()]
    elif fmt_from is not None:
        from aecodec.cli import _output_format

        kind = _output_format(fmt_from, None)
    else:
        kind = "PNG"
    image = codec.decompress_image(data, model=model)
    buf = io.BytesIO()
    image_io.save_image(image, buf, kind)
    w, h = image.size
    info = {"modality": "image", "width": w, "height": h, "mode": image.mode, "bytes": len(data)}
    suffix = {"JPEG": ".jpg", "TIFF": ".tif"}.get(kind, "." + kind.lower())
    return buf.getvalue(), info, suffix


def score_one(data: bytes, name: str | None, opts: dict, model=None) -> tuple[float, dict]:
    """(bits per pixel or per second, the document ``aecodec score --json`` prints) for one file."""
    from aecodec import analysis
    from aecodec.io import audio as audio_io
    from aecodec.io import image as image_io

    if _is_audio(name, data):
        source = audio_io.open_audio(data)
        try:
            sc = analysis.score_audio(source, quality=opts.get("quality"), model=model)
        finally:
            source.close()
        return sc.bits_per_second, {"file": name, "modality": "audio", **sc.to_dict()}
    image = image_io.open_image(_NamedBytes(data, name))
    sc = analysis.score_image(image, opts.get("quality"), model=model, tile=opts.get("tile") or 1024)
    doc = {"file": name, "modality": "image", **sc.to_dict(), "hottest_64": list(sc.hottest_window(64))}
    return sc.bits_per_pixel, doc


# ---------------------------------------------------------------------------------------------
# the actor


def _describe(exc: BaseException, path: str | None) -> str:
    from aecodec.cli import describe

    return describe(exc, path)


class _Worker:
    """One Ray actor: loads its model once, then codes batch after batch (a pyarrow Table each).

    Every row's failure is caught and recorded in its ``error`` / ``error_type`` columns."""

    def __init__(self, verb: str, opts: dict, output: str | None, force: bool, threads: int = 1):
        import torch

        from aecodec import analysis, codec, modelfile

        torch.set_num_threads(max(1, threads))
        codec.CODING_THREADS = max(1, threads)  # tiles / segments in parallel: no more threads than CPUs held
        self.verb, self.opts, self.output, self.force = verb, opts, output, force
        model = opts.get("model")
        if isinstance(model, str) and modelfile.is_model_file(model):
            model = modelfile.load_model_file(model)
        elif model is None and verb in ("encode", "score"):
            analysis.resolve_model(None, "image")  # warm the registry's cache: loaded once per worker
        self.model = model

    def __call__(self, batch):
        import pyarrow as pa

        names = batch.column_names
        paths = _column(batch, "path")
        blobs = _column(batch, "bytes")
        if "item" in names and paths is None and blobs is None:
            items = batch.column("item").to_pylist()
            if items and isinstance(next((i for i in items if i is not None), ""), (bytes, bytearray)):
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
                if data is None:
                    if name is None:
                        raise InputError("the row has neither a path nor bytes")
                    data = Path(name).read_bytes()
                result, info, written = self._one(data, name, target, bool(auto[i]) if auto is not None else False)
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

    def _one(self, data: bytes, name: str | None, target: str | None, auto_suffix: bool):
        """(result, info, the path written or None). ``auto_suffix``: ``target`` was derived from the
        input's name (the CLI's DIR/<stem>.png), so audio decodes to .wav unless a format is given."""
        if self.verb == "score":
            value, doc = score_one(data, name, self.opts, self.model)
            return value, doc, None
        base = None  # output folder given: <folder>/<stem> + the suffix of what comes out
        if target is None and self.output is not None:
            if name is None:
                raise InputError("a row without a path cannot be named in the output folder")
            base = str(Path(self.output) / Path(name).stem)
        if self.verb == "encode":
            target = base + ".aec" if base is not None else target
            _refuse_existing(target, self.force)
            out, info = encode_one(data, name, self.opts, self.model)
        else:
            _refuse_existing(target, self.force)
            out, info, suffix = decode_one(data, self.opts, target if target and not auto_suffix else None, self.model)
            if base is not None:
                target = base + suffix
            elif target is not None and auto_suffix and info["modality"] == "audio" and not self.opts.get("format"):
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


def _run(ds, verb: str, opts: dict, output, force: bool, workers, cpus_per_worker: float, batch_size: int):
    ray = _ray()
    if output is not None and "-" == str(output):
        raise ValueError("output must be a folder (shared by the workers), not stdout")
    if isinstance(workers, int) and workers < 1:
        raise ValueError("workers must be at least 1")
    if workers is None:  # as many as the cluster's CPUs allow, started as work arrives
        cpus = int(ray.cluster_resources().get("CPU", 1)) if ray.is_initialized() else (os.cpu_count() or 1)
        compute = ray.data.ActorPoolStrategy(min_size=1, max_size=max(1, int(cpus // cpus_per_worker)))
    else:
        compute = ray.data.ActorPoolStrategy(size=int(workers))
    threads = max(1, int(cpus_per_worker))
    return ds.map_batches(_Worker, batch_format="pyarrow", batch_size=batch_size, compute=compute,
                          num_cpus=cpus_per_worker, zero_copy_batch=True,
                          fn_constructor_kwargs={"verb": verb, "opts": opts, "output": None if output is None
                                                 else str(output), "force": force, "threads": threads})


def _check_quality(quality, lo: float = 1.0) -> None:
    import math

    if quality is not None and not (isinstance(quality, (int, float)) and math.isfinite(quality) and quality >= lo):
        raise ValueError(f"quality must be a number of at least {lo:g}, got {quality!r}")


def encode_dataset(ds, output: str | os.PathLike | None = None, *, quality: float | None = None,
                   target_bpp: float | None = None, bitrate: float | None = None, tile: int | None = None,
                   metadata: str = "default", envelope: bool | None = None, model=None, force: bool = False,
                   workers: int | None = None, cpus_per_worker: float = 1, batch_size: int = 1):
    """Encode every row's image or audio file to aec (lazy: a Dataset of results, see the module).

    ``output``: a folder (``<stem>.aec`` in it), or None: the aec bytes in the ``data`` column (or
    a per-row ``output`` column of paths). Options as ``aecodec encode``'s: ``quality`` (-q),
    ``target_bpp``, ``bitrate`` (-b, audio kbps), ``tile``, ``metadata`` ("default", "none" =
    --strip, "all" = --keep-metadata), ``envelope=False`` (--no-envelope), ``model`` (a registry
    name or a model file the workers can read). ``workers``: actors in the pool (default: up to one
    per ``cpus_per_worker`` CPUs of the cluster)."""
    if quality is not None and target_bpp is not None:
        raise ValueError("quality and target_bpp exclude each other")
    if quality is not None and bitrate is not None:
        raise ValueError("quality and bitrate exclude each other")
    if metadata not in ("default", "none", "all"):
        raise ValueError(f"metadata must be 'default', 'none' or 'all', got {metadata!r}")
    _check_quality(quality)
    opts = {"quality": quality, "target_bpp": target_bpp, "bitrate": bitrate, "tile": tile, "metadata": metadata,
            "envelope": envelope, "model": model}
    return _run(ds, "encode", opts, output, force, workers, cpus_per_worker, batch_size)


def decode_dataset(ds, output: str | os.PathLike | None = None, *, format: str | None = None,
                   rate: int | str | None = None, model=None, force: bool = False, workers: int | None = None,
                   cpus_per_worker: float = 1, batch_size: int = 1):
    """Decode every row's aec file (lazy: a Dataset of results, see the module).

    ``output``: a folder (``<stem>.png`` for images, ``<stem>.wav`` for audio, or ``format``'s
    suffix), or None: the decoded file's bytes in the ``data`` column. ``rate``: audio output rate
    (Hz, or "model")."""
    if format is not None and format.lower() not in (*IMAGE_DECODE_FORMATS, *AUDIO_DECODE_FORMATS):
        raise ValueError(f"unknown format {format!r}")
    opts = {"format": format, "rate": rate, "model": model}
    return _run(ds, "decode", opts, output, force, workers, cpus_per_worker, batch_size)


def score_dataset(ds, *, quality: float | None = None, tile: int = 1024, model=None, workers: int | None = None,
                  cpus_per_worker: float = 1, batch_size: int = 1):
    """Anomaly-score every row's image or audio file (lazy: a Dataset of results, see the module):
    a ``score`` column (bits per pixel, audio: bits per second) and ``info`` (``aecodec score --json``'s document)."""
    _check_quality(quality, lo=0)
    if tile % 64 or not 64 <= tile <= 1024:
        raise ValueError("tile must be a multiple of 64 in [64, 1024]")
    opts = {"quality": quality, "tile": tile, "model": model}
    return _run(ds, "score", opts, None, False, workers, cpus_per_worker, batch_size)


# ---------------------------------------------------------------------------------------------
# the command line: aecodec encode|decode|score ... --ray [ADDRESS]


def _address(value: str) -> str | None:
    """--ray's ADDRESS: None for a local cluster (or RAY_ADDRESS's), else what ray.init takes."""
    from aecodec.cli import UsageError

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

    ray = _ray()
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
    """``aecodec encode|decode`` with ``--ray``: the planned jobs (cli.plan_jobs) on a Ray cluster;
    each file's line as it finishes, the summary and ``--json`` document as the local run prints them."""
    from aecodec.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, Reporter, UsageError

    address = _address(args.ray)
    if any(job.src == "-" or job.dst == "-" for job in jobs):
        raise UsageError("--ray reads and writes files, not stdin or stdout")
    if getattr(args, "psnr", False):
        raise UsageError("--psnr is not available with --ray")
    rows = [{"job": i, "path": os.path.abspath(job.src), "output": os.path.abspath(job.dst),
             "auto_suffix": bool(job.auto_name)} for i, job in enumerate(jobs)]
    started = _connect(address)
    try:
        ds = _dataset(rows)
        if verb == "encode":
            metadata = "none" if args.strip else "all" if args.keep_metadata else "default"
            out = encode_dataset(ds, quality=args.quality, target_bpp=args.target_bpp, bitrate=args.bitrate,
                                 tile=args.tile, metadata=metadata, envelope=False if args.no_envelope else None,
                                 model=args.model, force=args.force, workers=_workers(args))
        else:
            out = decode_dataset(ds, format=args.format, rate=args.rate, model=args.model, force=args.force,
                                 workers=_workers(args))
        reporter = Reporter(len(jobs), args.json, args.quiet)
        results: list[dict | None] = [None] * len(jobs)
        usage = 0
        for row in out.iter_rows():
            job = jobs[row["job"]]
            if row["error"] is None:
                info = json.loads(row["info"])
                dst = job.dst if row["output"] == os.path.abspath(job.dst) else \
                    str(Path(job.dst).with_suffix(Path(row["output"]).suffix))  # decode: audio to .wav
                info.update(input=job.src, output=dst, ok=True, line=_line(verb, job.src, dst, info))
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


def _line(verb: str, src: str, dst: str, info: dict) -> str:
    head = f"{src} -> {dst}: "
    if verb == "encode" and info["modality"] == "image":
        return head + f"{info['bytes']} bytes, {info['bpp']:.4f} bpp, q {info['quality']:g}, {info['seconds']:.2f} s"
    if verb == "encode":
        return head + (f"{info['bytes']} bytes, {info['kbps']:.2f} kbps, {info['duration']:.2f} s {info['sample_rate']} Hz "
                       f"×{info['channels']}, {info['model']} q {info['quality']:g}, {info['seconds']:.2f} s")
    if info["modality"] == "image":
        return head + (f"{info['width']}×{info['height']} {info['mode']}, {info['bytes']} bytes, "
                       f"{8 * info['bytes'] / (info['width'] * info['height']):.4f} bpp, {info['seconds']:.2f} s")
    return head + (f"{info['frames'] / info['sample_rate']:.2f} s {info['sample_rate']} Hz ×{info['channels']}, "
                   f"{info['bytes']} bytes, {info['kbps']:.2f} kbps, {info['seconds']:.2f} s")


def run_cli_score(files: list[str], args) -> int:
    """``aecodec score`` with ``--ray``: the same lines / JSON documents, --sort, --threshold and --fpr."""
    import sys

    from aecodec import analysis
    from aecodec.cli import EXIT_ERROR, EXIT_OK, UsageError

    address = _address(args.ray)
    if args.heatmap:
        raise UsageError("--heatmap is not available with --ray")
    started = _connect(address)
    try:
        out = score_dataset(_dataset([{"job": i, "path": os.path.abspath(f)} for i, f in enumerate(files)]),
                            quality=args.quality, tile=args.tile, model=args.model, workers=_workers(args))
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
        if args.json:
            print(json.dumps(doc, sort_keys=True), flush=True)
        else:
            unit = "bpp" if doc["modality"] == "image" else "bit/s"
            value = doc["bits_per_pixel"] if doc["modality"] == "image" else doc["bits_per_second"]
            print(f"{value:12.4f} {unit:5s} {doc['file']}" + ("  ANOMALOUS" if doc.get("anomalous") else ""), flush=True)
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
