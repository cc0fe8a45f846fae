"""The work on one file of ``aecodec encode|decode|info|score``, shared by the CLI and aecodec.ray.

    encode_job(job, args)        image or audio file -> .aec: encode_image_job / encode_audio_job
    decode_job(job, args)        .aec -> image (decode_image_job) or audio (decode_audio_job) file
    describe_file(name, data)    what ``info`` shows: version, header, chunks, bpp or kbps (with
                                 verify=True, verify_file: all decoded, nothing written, every CRC
                                 checked); description_lines(doc) says it in lines of text
    score_file(path, args, ...)  anomaly score (bits per pixel / per second), heatmaps written;
                                 score_line and threshold_lines say what ``score`` prints

``args`` are the options as the command line parses them (an ``argparse.Namespace``;
``aecodec.ray.cli_args`` builds the same). A job returns the fields ``--json`` prints for the
file, with ``line`` (the stats line the CLI prints) and ``warnings``; it raises UsageError for
options that do not fit this file (exit status 2) and AecError / OSError for the file's faults.
Outputs are written with ``io.files.write_atomically``: whole or absent.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from aecodec.batch import Job
from aecodec.errors import AecError, InputError, UsageError
from aecodec.io import formats
from aecodec.io.files import read_input, write_atomically
from aecodec.io.formats import AUDIO_FORMATS, AUDIO_SUFFIXES, IMAGE_FORMATS


def _not_for(args, options: dict[str, bool], kind: str, warnings_out: list) -> None:
    """Options given that do not apply to this kind of file: a warning each, once per run."""
    said = args.__dict__.setdefault("_warned", set())
    for flag, given in options.items():
        if given and flag not in said:
            said.add(flag)
            warnings_out.append(f"{flag} does not apply to {kind}; ignored")


@contextmanager
def effort_progress(args, tiles: int | None):
    """A progress bar of refinement steps (tqdm, stderr) for --effort on a terminal, else None
    (no total when the number of refined units is not known ahead: audio segments, --target-bpp)."""
    if not args.effort or args.quiet or args.json or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    from aecodec.effort import EFFORT_STEPS

    lock = threading.Lock()
    total = None if args.target_bpp is not None or tiles is None else EFFORT_STEPS[args.effort] * tiles
    with tqdm(total=total, unit="step", desc=f"effort {args.effort}", file=sys.stderr, leave=False) as bar:
        def progress(n: int) -> None:
            with lock:
                bar.update(n)

        yield progress


def encode_job(job: Job, args) -> dict:
    """One file of ``aecodec encode``: audio by its suffix (stdin: by its first bytes), else an image."""
    if job.dst != "-" and Path(job.dst).exists() and not args.force:
        raise FileExistsError(f"{job.dst} exists (use -f to overwrite)")
    raw = read_input(job.src) if job.src == "-" else None
    if formats.is_audio(job.src, raw[:16] if raw is not None else None):
        return encode_audio_job(job, raw, args)
    return encode_image_job(job, raw, args)


def encode_image_job(job: Job, raw: bytes | None, args) -> dict:
    """An image (the file job.src, or ``raw``: stdin's bytes) -> job.dst, at -q or --target-bpp."""
    from aecodec import coding
    from aecodec import image as image_api
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
    """Audio -> job.dst at -b KBPS or -q; the model named, else chosen by channels, bitrate, content."""
    from aecodec import audio
    from aecodec.io import audio as audio_io

    if args.target_bpp is not None:
        raise UsageError("--target-bpp is for images; audio takes -b KBPS or -q 1..3")
    notes: list[str] = []
    _not_for(args, {"--psnr": args.psnr, "--tile": args.tile is not None,
                    "--independent-tiles": args.independent_tiles}, "audio", notes)
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
        with effort_progress(args, None) as progress:
            write_atomically(job.dst, lambda f: stats.append(
                audio.encode(source, f, args.bitrate, quality=args.quality, model=loaded,
                             envelope_on=False if args.no_envelope else None, effort=args.effort,
                             progress=progress)), args.force)
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


def image_output_format(dst: str, fmt: str | None) -> str:
    """The Pillow format for dst (``--format`` first); one that is not an image format: UsageError."""
    try:
        return formats.image_output_format(dst, fmt)
    except InputError as exc:  # the option's fault: a usage error
        raise UsageError(str(exc)) from None


def decode_job(job: Job, args) -> dict:
    """One file of ``aecodec decode``: by the modality its header names (an auto-named output of
    audio gets .wav unless --format says otherwise)."""
    from aecodec import container

    data = read_input(job.src)
    modality = container.ContainerReader(data).header.get("modality")
    if modality == "audio":
        if job.auto_name and not args.format:
            job.dst = str(Path(job.dst).with_suffix(".wav"))
        return decode_audio_job(job, data, args)
    return decode_image_job(job, data, args)


def decode_image_job(job: Job, data: bytes, args) -> dict:
    """An image's aec bytes -> job.dst in --format, else the format its suffix names."""
    from aecodec import image as image_api
    from aecodec.io import image as image_io

    if args.rate is not None:
        raise UsageError("--rate is for audio files")
    if args.format and args.format.upper() not in IMAGE_FORMATS:
        raise UsageError(f"--format {args.format} is an audio format; "
                         "images decode to png, webp, tiff, bmp or jpeg")
    t0 = time.perf_counter()
    fmt = image_output_format(job.dst, args.format)
    if job.dst != "-" and Path(job.dst).exists() and not args.force:
        raise FileExistsError(f"{job.dst} exists (use -f to overwrite)")
    image = image_api.decompress_image(data, model=args.model)
    write_atomically(job.dst, lambda f: image_io.save_image(image, f, fmt), args.force)
    seconds = time.perf_counter() - t0
    w, h = image.size
    line = f"{job.src} -> {job.dst}: {w}×{h} {image.mode}, {len(data)} bytes, {8 * len(data) / (w * h):.4f} bpp, {seconds:.2f} s"
    return {"modality": "image", "width": w, "height": h, "mode": image.mode, "bytes": len(data),
            "decode_seconds": round(seconds, 4), "line": line}


def decode_audio_job(job: Job, data: bytes, args) -> dict:
    """Audio's aec bytes -> job.dst (wav, flac, ogg, aiff), streamed block by block, at --rate."""
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


def describe_file(name: str, data: bytes, verify: bool = False) -> dict:
    """What ``aecodec info --json`` prints for an aec file: version, header, chunk counts and sizes, rate;
    with ``verify``, the whole file is decoded too (verify_file) and ``verified`` set."""
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
    if verify:
        verify_file(data)
        doc["verified"] = True
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


def description_lines(doc: dict) -> list[str]:
    """describe_file's document as ``aecodec info`` prints it: a line for the file, then one per part."""
    lines = []
    h = doc["header"]
    img, aud = h.get("image"), h.get("audio")
    stored = "deflated" if doc["header_deflated"] else "JSON"
    lines.append(f"{doc['file']}: aec {doc['version']}, {doc['bytes']} bytes, modality {h.get('modality')}, "
                 f"header {doc['header_bytes']} bytes ({stored})" + (", verified" if doc.get("verified") else ""))
    if isinstance(h.get("model"), dict):
        m = h["model"]
        lines.append(f"  model   {m.get('name')} (id {m.get('id')}, weights {m.get('weights')}), "
                     f"quality {h.get('quality')}")
    if isinstance(h.get("coder"), dict):
        lines.append(f"  coder   {h['coder'].get('name')}, precision {h['coder'].get('precision')}")
    if isinstance(img, dict):
        lines.append(f"  image   {img.get('width')}×{img.get('height')} {img.get('mode')} "
                     f"{img.get('bit_depth', 8)}-bit, tile {img.get('tile')}"
                     + (" (overlapped, shared ẑ)" if "hyper_overlap" in img else " (overlapped)" if "overlap" in img else "")
                     + (f", {doc['bpp']} bpp" if "bpp" in doc else ""))
    if isinstance(aud, dict):
        lines.append(f"  audio   {aud.get('sample_rate')} Hz ×{aud.get('channels')} ({aud.get('coding')}), "
                     f"{aud.get('frames')} frames"
                     + (f" = {doc['duration']} s, {doc['kbps']} kbps" if "kbps" in doc else "")
                     + f", model rate {aud.get('model_rate')} Hz, segment {aud.get('segment')}"
                     + (f", envelope {aud['envelope']}" if "envelope" in aud else "")
                     + (f", scale {aud['scale']}" if "scale" in aud else ""))
    for tag, c in doc["chunks"].items():
        lines.append(f"  chunk   {tag} ×{c['count']}, {c['bytes']} bytes")
    return lines


def score_file(path: str, args, model, heatmap_dir: Path | None) -> tuple[dict, float]:
    """(the document ``aecodec score --json`` prints, the score) for one image or audio file; with
    ``heatmap_dir``: DIR/<stem>.png (images, and .overlay.png with --overlay) or DIR/<stem>.csv (audio)."""
    from aecodec import analysis
    from aecodec.io import image as image_io

    heat = heatmap_dir
    if Path(path).suffix.lower() in AUDIO_SUFFIXES:
        sc = analysis.score_audio(path, quality=args.quality, model=model)
        doc = {"file": path, "modality": "audio", **sc.to_dict()}
        value = sc.bits_per_second
        if heat is not None:
            rows = "".join(f"{k / sc.frame_rate:.4f},{b * sc.frame_rate:.1f}\n" for k, b in enumerate(sc.bits_per_frame))
            target = heat / (Path(path).stem + ".csv")
            write_atomically(str(target), lambda fo: fo.write(("time_s,bits_per_second\n" + rows).encode()), args.force)
            doc["heatmap"] = str(target)
    else:
        image = image_io.open_image(path)
        sc = analysis.score_image(image, args.quality, model=model, tile=args.tile)
        doc = {"file": path, "modality": "image", **sc.to_dict(), "hottest_64": list(sc.hottest_window(64))}
        value = sc.bits_per_pixel
        if heat is not None:
            target = heat / (Path(path).stem + ".png")
            gray = analysis.heatmap_image(sc, args.vmax)
            write_atomically(str(target), lambda fo: gray.save(fo, "PNG"), args.force)
            doc["heatmap"] = str(target)
            doc["heatmap_max_bpp"] = round(float(args.vmax or sc.bpp_map().max()), 5)
            if args.overlay:
                over = analysis.overlay_image(image, sc, args.vmax)
                target = heat / (Path(path).stem + ".overlay.png")
                write_atomically(str(target), lambda fo: over.save(fo, "PNG"), args.force)
                doc["overlay"] = str(target)
    if args.threshold is not None:
        doc["anomalous"] = bool(value > args.threshold)
    return doc, value


def score_line(doc: dict, as_json: bool) -> str:
    """A score document as ``aecodec score`` prints it: JSON, or "  VALUE UNIT FILE[  ANOMALOUS]"."""
    if as_json:
        return json.dumps(doc, sort_keys=True)
    unit = "bpp" if doc["modality"] == "image" else "bit/s"
    value = doc["bits_per_pixel"] if doc["modality"] == "image" else doc["bits_per_second"]
    flag = "  ANOMALOUS" if doc.get("anomalous") else ""
    return f"{value:12.4f} {unit:5s} {doc['file']}{flag}"


def threshold_lines(results: list[tuple[dict, float]], fpr: float, as_json: bool) -> list[str]:
    """``score --fpr P``: per modality, the threshold that flags at most a fraction P of the scores
    (held-out normal files), as JSON documents or sentences."""
    from aecodec import analysis

    lines = []
    for modality, unit in (("image", "bpp"), ("audio", "bit/s")):
        scores = [v for d, v in results if d["modality"] == modality]
        if not scores:
            continue
        t = analysis.suggest_threshold(scores, fpr)
        doc = {"suggested_threshold": round(t, 6), "fpr": fpr, "n": len(scores), "modality": modality}
        if as_json:
            lines.append(json.dumps(doc, sort_keys=True))
        else:
            note = " (fewer scores than 1/FPR: the largest score)" if fpr * len(scores) < 1 else ""
            lines.append(f"suggested threshold at {100 * fpr:g} % false positives over {len(scores)} held-out normal "
                         f"{modality} files: {t:.4f} {unit}{note}; flag scores above it")
    return lines
