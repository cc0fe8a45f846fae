"""Command line: encode, decode, info, compare, score, bench, train — argument parsing over the library.

Exit status: 0 success, 1 runtime error (bad input, bad file, I/O), 2 usage error.
Each command checks its options and hands the files to the library: ``batch`` plans the
outputs and runs and reports the files, ``jobs`` does each file's work, ``compare`` the metrics.
Outputs are written to a temporary file beside the target and renamed into place
(never a half-written file) with the permissions the umask gives (0666 & ~umask, like
cwebp or cp); existing files are kept unless ``-f`` is given. In batch mode each file's
line is printed as it finishes (``[n/N]`` on a terminal), then a summary.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
from pathlib import Path

from aecodec import jobs, registry
from aecodec.batch import EXIT_ERROR, EXIT_OK, EXIT_USAGE, describe_error, plan_jobs, run_jobs, score_inputs
from aecodec.effort import MAX_EFFORT
from aecodec.errors import AecError, UsageError
from aecodec.io import formats
from aecodec.io.files import read_input
from aecodec.io.formats import AUDIO_SUFFIXES

IMAGE_QUALITY_MAX = int(registry.BY_NAME[registry.DEFAULT_IMAGE_MODEL].qualities[1])
IMAGE_DEFAULT_QUALITY = registry.BY_NAME[registry.DEFAULT_IMAGE_MODEL].default_quality
IMAGE_INPUTS = formats.IMAGE_SUFFIXES


# ---------------------------------------------------------------------------------------------
# commands


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
    planned = plan_jobs(args.inputs, args.output, ".aec", IMAGE_INPUTS | AUDIO_SUFFIXES, args.recursive)
    if args.ray is not None:  # --ray [ADDRESS]: the same jobs on a Ray cluster (aecodec.ray)
        from aecodec import ray as ray_jobs

        return ray_jobs.run_cli("encode", planned, args)
    return run_jobs(planned, lambda job: jobs.encode_job(job, args), args.jobs, args.json, args.quiet)


def cmd_decode(args) -> int:
    suffix = "." + (args.format or "png").lower()
    planned = plan_jobs(args.inputs, args.output, suffix, {".aec"}, args.recursive)
    if args.ray is not None:  # --ray [ADDRESS]: the same jobs on a Ray cluster (aecodec.ray)
        from aecodec import ray as ray_jobs

        return ray_jobs.run_cli("decode", planned, args)
    return run_jobs(planned, lambda job: jobs.decode_job(job, args), args.jobs, args.json, args.quiet)


def cmd_info(args) -> int:
    if args.inputs.count("-") > 1:
        raise UsageError("stdin ('-') can be read once")
    docs, failed = [], 0
    for name in args.inputs:
        try:
            doc = jobs.describe_file(name, read_input(name), verify=args.verify)
        except (BrokenPipeError, KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - one bad file: report it, describe the others
            failed += 1
            print(f"aecodec: error: {name}: {describe_error(exc, name)}", file=sys.stderr)
            docs.append({"file": name, "ok": False, "error": describe_error(exc, name)})
            continue
        doc["ok"] = True
        docs.append(doc)
        if not args.json:
            print("\n".join(jobs.description_lines(doc)))
    if args.json:
        print(json.dumps(docs[0] if len(docs) == 1 else {"files": docs, "failed": failed}, indent=2, sort_keys=True))
    return EXIT_ERROR if failed else EXIT_OK


def cmd_compare(args) -> int:
    """How close a decode is to its original: PSNR and MS-SSIM for images, log-mel distance,
    STOI and SI-SDR for audio (the benchmark's metrics)."""
    from aecodec import compare

    doc = compare.compare(args.original, args.decoded)
    print(json.dumps(doc, indent=2, sort_keys=True) if args.json else compare.summary_line(doc))
    return EXIT_OK


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


def cmd_score(args) -> int:
    """Anomaly scores: bits per pixel (audio: per second) the model needs; heatmaps; thresholds."""
    from aecodec import modelfile

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
    files = score_inputs(args.inputs, IMAGE_INPUTS | AUDIO_SUFFIXES)
    if args.ray is not None:  # --ray [ADDRESS]: the same scores on a Ray cluster (aecodec.ray)
        from aecodec import ray as ray_jobs

        return ray_jobs.run_cli_score(files, args)
    model = args.model
    if model is not None and modelfile.is_model_file(model):
        model = modelfile.load_model_file(model)  # once, and a bad file is one error (exit 1)
    heat = Path(args.heatmap) if args.heatmap else None
    results, failed = [], 0
    for f in files:
        try:
            doc, value = jobs.score_file(f, args, model, heat)
        except (AecError, OSError) as exc:
            failed += 1
            print(f"aecodec: error: {f}: {' '.join(str(exc).split())}", file=sys.stderr)
            continue
        results.append((doc, value))
        if not args.sort:
            print(jobs.score_line(doc, args.json), flush=True)
    if args.sort:
        for doc, _ in sorted(results, key=lambda r: (r[0]["modality"], -r[1])):
            print(jobs.score_line(doc, args.json), flush=True)
    if args.fpr is not None:
        for line in jobs.threshold_lines(results, args.fpr, args.json):
            print(line)
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
                     help="encode time spent to save bits (default 0: the plain encoder, fastest; higher "
                          "efforts refine the latents, smaller files at the same quality; 9 takes minutes per "
                          "photo, and audio runs slower than real time from effort 1). Decoding is unchanged")
    enc.add_argument("--tile", type=int, default=None,
                     help="images: tile size in pixels (multiple of 64, 64..1024; default 1024): a memory bound "
                          "only: tiles share ẑ and are synthesised with overlap, so they do not show")
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
        print(f"aecodec: error: {describe_error(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("aecodec: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - never a traceback for users; AECODEC_TRACEBACK=1 shows it
        if os.environ.get("AECODEC_TRACEBACK"):
            raise
        print(f"aecodec: error: {describe_error(exc)}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
