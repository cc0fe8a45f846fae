"""The regression corpus (tests/fuzz_corpus/ in a checkout): a few small cases per distinct
outcome, kept with a manifest of what each target must answer.

    interesting (Stats) -> select_corpus: the smallest case of each outcome, round-robin over
    outcome classes -> write_corpus: files + manifest.json, replacing only the files that the
    run's target set ("container,image"; "audio") recorded before

manifest.json: {"description", "runs": {target set: {generated_by, targets, tiny_model_weights}},
"files": {name: {target: outcome, ..., mutator, case, why, run}}}.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from aecodec.fuzz.targets import TARGETS, model_weights

MAX_CORPUS_FILES = 60
MAX_CORPUS_BYTES = 20_000  # larger cases are never kept


def run_key(targets) -> str:
    """The manifest's name of a target set ("container,image", "audio"), in TARGETS order."""
    return ",".join(t for t in TARGETS if t in targets)


def select_corpus(interesting: dict, limit: int = MAX_CORPUS_FILES, prefix: str = "") -> list[tuple[str, dict, bytes]]:
    """First-found smallest example of each distinct outcome, round-robin over outcome classes
    so that the rarest classes are all kept when there are more than `limit` kinds."""
    by_class: dict[tuple, list] = {}
    for key in sorted(interesting):
        size, case, mutator, outcomes, data = interesting[key]
        if any(v.startswith("CRASH") for v in outcomes.values()):
            continue
        by_class.setdefault(tuple(sorted(outcomes.items())), []).append((size, key, case, mutator, outcomes, data))
    for items in by_class.values():
        items.sort(key=lambda x: (x[0], x[1]))
    chosen = []
    classes = sorted(by_class, key=lambda c: len(by_class[c]))
    rank = 0
    while len(chosen) < limit and any(rank < len(by_class[c]) for c in classes):
        for c in classes:
            if rank < len(by_class[c]) and len(chosen) < limit:
                chosen.append(by_class[c][rank])
        rank += 1
    out = []
    for size, key, case, mutator, outcomes, data in sorted(chosen, key=lambda x: x[2]):
        label = "-".join(("ok" if v == "ok" else re.sub(r"Error$", "", v)).lower() for v in outcomes.values())
        name = f"{prefix}{label}-{hashlib.sha1(data).hexdigest()[:10]}.aec"
        out.append((name, {**outcomes, "mutator": mutator, "case": case, "why": key[:300]}, data))
    return out


CORPUS_PREFIX = {"container,image": ""}  # file name prefix per run (default: the run's targets)
CORPUS_DESCRIPTION = ("Fuzz cases kept as regression tests (benchmarks/fuzz.py --corpus), from one run per target set "
                      "('runs': its command, targets and the tiny models' weights). Each file names its run and "
                      "records the expected outcome of each of that run's targets: 'ok' or the AecError subclass "
                      "raised. Replayed by tests/test_fuzz_corpus.py.")


def load_manifest(path: Path) -> dict:
    """The corpus manifest, the single-run layout of before the audio target read as one run."""
    if not path.exists():
        return {"description": CORPUS_DESCRIPTION, "runs": {}, "files": {}}
    manifest = json.loads(path.read_text())
    if "runs" not in manifest:
        key = run_key(manifest["targets"])
        weights = {"image": manifest["tiny_model_weights"]} if "image" in manifest["targets"] else {}
        manifest = {"runs": {key: {"generated_by": manifest["generated_by"], "targets": manifest["targets"],
                                   "tiny_model_weights": weights}},
                    "files": {name: {**meta, "run": key} for name, meta in manifest["files"].items()}}
    manifest["description"] = CORPUS_DESCRIPTION
    return manifest


def write_corpus(corpus_dir: Path, entries, targets, seed: int) -> int:
    """Replace the files this target set recorded before (other runs' files stay) and its manifest
    entry; returns the number of files written (entries with the same bytes are written once)."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = corpus_dir / "manifest.json"
    manifest = load_manifest(manifest_path)
    key = run_key(targets)
    for name, meta in list(manifest["files"].items()):
        if meta.get("run") == key:
            (corpus_dir / name).unlink(missing_ok=True)
            del manifest["files"][name]
    for name, meta, data in entries:
        if name in manifest["files"]:  # the same bytes and outcomes kept by another run
            continue
        (corpus_dir / name).write_bytes(data)
        manifest["files"][name] = {**meta, "run": key}
    manifest["runs"][key] = {
        "generated_by": f"python benchmarks/fuzz.py --seed {seed} --target {key} --corpus {corpus_dir}",
        "targets": key.split(","),
        "tiny_model_weights": {t: model_weights(t) for t in key.split(",") if model_weights(t)},
    }
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return sum(meta["run"] == key for meta in manifest["files"].values())
