"""Accuracy of the speech/music decision that picks the audio model (aecodec/content.py).

    python benchmarks/speech_music.py                 # measure, write benchmarks/results/audio/speech_music_decision.md
    python benchmarks/speech_music.py --fit           # refit the weights on the train folders (prints them)

Labels: every file under ../shared/data/audio/speech is speech; under ../shared/data/audio/music
everything is music except librosa's three LibriSpeech utterances (named like 198-209-0000),
which are speech; the bird and whale recordings there count as "not speech" (music model).
The game music built at /root/aecodec-extra/music (213 files, Debian packages) is music.
Stereo files are judged on their mono downmix, as the decision sees a mono input. Each file is
judged at its own rate and resampled (soxr HQ) to 44.1 and 48 kHz, and the inputs longer than
60 s take three 20 s excerpts, as the encoder does. The weights are fitted on the two train
folders only; eval folders and the extra music are held out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from aecodec import content  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "audio"
EXTRA = Path("/root/aecodec-extra/music")
RATES = (None, 44100, 48000)
SUFFIXES = {".wav", ".flac", ".ogg", ".mp3"}
L2 = 0.01  # ridge on the weights (not the bias) of the logistic fit


def files():
    """(set name, split, label, path)."""
    out = []
    for split in ("train", "eval"):
        for p in sorted((DATA / "speech" / split).rglob("*")):
            if p.suffix.lower() in SUFFIXES:
                out.append((f"speech/{split}/{p.relative_to(DATA / 'speech' / split).parts[0]}", split, "speech", p))
        for p in sorted((DATA / "music" / split).rglob("*")):
            if p.suffix.lower() in SUFFIXES:
                label = "speech" if re.match(r"\d+-\d+-\d+", p.name) else "music"
                out.append((f"music/{split}/{p.relative_to(DATA / 'music' / split).parts[0]}", split, label, p))
    if EXTRA.is_dir():
        for p in sorted(EXTRA.iterdir()):
            if p.suffix.lower() in SUFFIXES:
                out.append(("extra music (/root/aecodec-extra)", "held-out", "music", p))
    return out


def read_excerpt(path: Path) -> tuple[np.ndarray, int]:
    with sf.SoundFile(str(path)) as f:
        rate, parts = f.samplerate, []
        for start, n in content.excerpt_plan(f.frames, rate):
            f.seek(start)
            parts.append(f.read(n, dtype="float32", always_2d=True))
    return np.concatenate(parts).mean(axis=1), rate


def measure():
    import soxr

    rows, seconds, analysed = [], 0.0, 0.0
    for name, split, label, path in files():
        x, rate = read_excerpt(path)
        for target in RATES:
            y, r = (x, rate) if target is None else (soxr.resample(x, rate, target, quality="HQ"), target)
            t0 = time.perf_counter()
            d = content.classify(y, r)
            seconds += time.perf_counter() - t0
            analysed += len(y) / r
            rows.append({"set": name, "split": split, "label": label, "file": path.name, "rate": r,
                         "native": target is None, "decision": None if d is None else d.kind,
                         "p": None if d is None else d.speech_probability,
                         "features": None if d is None else d.features})
    return rows, seconds, analysed


def fit(rows):
    """Class-balanced logistic regression (Newton's method, small L2) on the training rows' logs."""
    train = [r for r in rows if r["split"] == "train" and r["native"] and r["features"]]
    X = np.array([content.vector(r["features"]) for r in train])
    y = np.array([1.0 if r["label"] == "speech" else 0.0 for r in train])
    mean, std = X.mean(axis=0), X.std(axis=0)
    Z = np.hstack([(X - mean) / std, np.ones((len(X), 1))])
    w = np.zeros(Z.shape[1])
    sw = np.where(y == 1, 0.5 / y.sum(), 0.5 / (1 - y).sum())
    for _ in range(50):
        p = 1 / (1 + np.exp(-Z @ w))
        g = Z.T @ (sw * (p - y)) + L2 * np.r_[w[:-1], 0]
        H = (Z * (sw * p * (1 - p))[:, None]).T @ Z + L2 * np.diag(np.r_[np.ones(len(w) - 1), 0])
        w -= np.linalg.solve(H, g)
    fmt = lambda a: "np.array([" + ", ".join(f"{v:.4f}" for v in a) + "])"  # noqa: E731
    print(f"MEAN = {fmt(mean)}\nSTD = {fmt(std)}\nWEIGHTS = {fmt(w[:-1])}\nBIAS = {w[-1]:.4f}")
    return mean, std, w[:-1], float(w[-1])


def table(rows) -> list[str]:
    sets = list(dict.fromkeys(r["set"] for r in rows))
    lines = ["| set | label | files | native rate | at 44.1 kHz | at 48 kHz | undecided |",
             "|---|---|---|---|---|---|---|"]
    total = {t: [0, 0] for t in ("native", 44100, 48000)}
    for s in sets:
        for label in ("speech", "music"):
            sub = [r for r in rows if r["set"] == s and r["label"] == label]
            if not sub:
                continue
            cells, undecided = [], 0
            for key in ("native", 44100, 48000):
                part = [r for r in sub if (r["native"] if key == "native" else (not r["native"] and r["rate"] == key))]
                ok = sum(r["decision"] == label for r in part)
                undecided += sum(r["decision"] is None for r in part)
                total[key][0] += ok
                total[key][1] += len(part)
                cells.append(f"{100 * ok / len(part):.1f} % ({ok}/{len(part)})")
            lines.append(f"| {s} | {label} | {len(sub) // 3} | " + " | ".join(cells) + f" | {undecided} |")
    lines.append("| **all** | | " + str(total['native'][1]) + " | " + " | ".join(
        f"**{100 * a / b:.1f} %**" for a, b in total.values()) + " | |")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="refit the weights on the train folders and use them")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "audio" / "speech_music_decision.md"))
    ap.add_argument("--json", default=None, help="also write every file's decision and features here")
    args = ap.parse_args(argv)
    rows, seconds, analysed = measure()
    if args.fit:
        content.MEAN, content.STD, content.WEIGHTS, content.BIAS = fit(rows)
        for r in rows:
            if r["features"]:
                r["p"] = content.speech_probability(r["features"])
                r["decision"] = "speech" if r["p"] >= 0.5 else "music"
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    wrong = [r for r in rows if r["native"] and r["decision"] not in (None, r["label"])]
    lines = table(rows)
    speed = 1000 * seconds / (analysed / 60)
    print("\n".join(lines))
    print(f"{speed:.1f} ms per minute analysed")
    for r in wrong:
        print("wrong:", r["set"], r["file"], r["p"])
    if not args.fit:
        write_report(Path(args.out), rows, lines, speed, wrong)
    return rows, seconds, analysed, wrong


def held_out(rows, label):
    sub = [r for r in rows if r["split"] != "train" and r["label"] == label]
    return sum(r["decision"] == label for r in sub), len(sub)


def write_report(out: Path, rows, lines, speed, wrong) -> None:
    import platform

    hs, hm = held_out(rows, "speech"), held_out(rows, "music")
    train = [r for r in rows if r["split"] == "train"]
    tr_ok = sum(r["decision"] == r["label"] for r in train)
    text = f"""# Speech/music decision (the audio model chosen by content)

`aecodec/content.py` decides speech or music for a mono input when no model is named (issue 17):
mono 44.1/48 kHz speech now gets the speech model, mono 16–22 kHz music the music model. Stereo
still goes to the music model and a mono request under 12 kbps to the speech model (rules before
the content); under a second of audio, or silence, falls back to the old rule by sample rate.

Reproduce (about two minutes on one core; reads ../shared/data/audio and /root/aecodec-extra/music):

```sh
.venv/bin/python benchmarks/speech_music.py          # writes this file
.venv/bin/python benchmarks/speech_music.py --fit    # refits the weights on the train folders, prints them
```

Measured {time.strftime("%Y-%m-%d", time.gmtime())} on {platform.machine()}, {os.cpu_count()} cores, one of them
busy with a training run.
Accuracy per file (each judged as mono at its own rate, and resampled with soxr HQ to 44.1 and
48 kHz; files over 60 s as the encoder reads them, three 20 s excerpts):

{chr(10).join(lines)}

- **Held out** (eval folders and the extra music, never seen by the fit): speech
  {100 * hs[0] / hs[1]:.1f} % ({hs[0]}/{hs[1]}), music {100 * hm[0] / hm[1]:.1f} % ({hm[0]}/{hm[1]}),
  over all three rates.
- Training folders (what the logistic weights were fitted on): {100 * tr_ok / len(train):.1f} % ({tr_ok}/{len(train)}).
- "undecided": clips under 1 s (some vcc2016 utterances); the encoder then uses the sample-rate
  rule (at 16 kHz: speech, which is right; resampled to 44.1/48 kHz they count as errors above).
- Labels: librosa's three LibriSpeech utterances in music/train count as speech; its bird
  (robin) and whale (humpback) recordings count as music ("not speech": the music model).
- Speed: {speed:.0f} ms of analysis per minute of audio (resampling to 8 kHz included; reading the
  file not; it varies 2–3× here with the load of the other core's jobs). A file longer than 60 s
  is analysed as three 20 s excerpts, so no file costs more than one minute's analysis. The
  target was a few ms per minute: the two 512-point FFTs per 32 ms frame (bands, pitch) are most
  of it; decimating further or judging fewer frames would be the way down.

Errors at the native rate ({len(wrong)}):

{chr(10).join(f"- {r['set']} `{r['file']}`: P(speech) {r['p']:.2f}" for r in wrong)}

What it does not do: judge a mix (speech over music is whatever dominates the excerpt), look at
stereo files (they keep the music model), or switch models inside a file.
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print("wrote", out)


if __name__ == "__main__":
    main()
