"""Fuzzing of the container parser and of full image and audio decoding (``benchmarks/fuzz.py``
is its command line; ``tests/test_fuzz_corpus.py`` replays its corpus and runs short fuzzes).

    targets    what a case runs through ("container", "image", "audio"), the tiny models, the
               seed files (the tiny models' own files + the golden vectors' folder), outcome_of
    packing    pack_raw: containers with any header bytes and tags, valid CRCs and index
    mutators   byte-level and structural mutators: (rng, seed, pool) -> bytes
    forge      files the encoder never wrote whose TILE / SEGM symbols pass their CRC, framed by
               the encoder's own functions (coding.encode_latents, the audio channel packing)
    cases      the weighted table of mutators, make_case(seed, i, pool)
    runner     Stats, run_case, fuzz (in process), worker + supervise (spawned, under limits)
    corpus     select_corpus / write_corpus: the regression corpus and its manifest
    cli        main: argument parsing, the result JSON

Every case is one byte string made from a seed file by one mutator (bit flips, byte and integer
sets, inserts, deletes, truncation, splicing two files, chunk-level edits re-packed with valid
CRCs, header JSON field edits, raw header text edits, preamble and index edits, forged files
whose tiles / segments pass their symbols CRC (any geometry, tile or segment size, extreme
symbols: the synthesis runs on them), random bytes, magic + random bytes, or the seed unchanged).
Case ``i`` of seed ``s`` is a pure function of (s, i, the seed files). Tiles and segments are
decoded one after another (``threads=1`` in every case) so that the outcome of a file does not
depend on the machine's core count.

A target returns normally ("ok") or raises an ``aecodec.errors.AecError`` subclass (its class
name is the outcome); anything else is a crash. In a worker (spawned) the address space of a
case is capped at its current size plus 1 GiB (``RLIMIT_AS``: allocating over 1 GB is a
MemoryError, a crash); its peak RSS above its start is measured (``VmHWM``, reset through
``/proc/self/clear_refs``). A case over 5 s of CPU time is a hang; the supervisor also kills a
worker that makes no progress for ``hard_timeout`` wall seconds (Numba kernels cannot be
interrupted by signals), records that case as a hang and starts a new worker after it.

How to add a target::

    def run_audio(data: bytes) -> None:          # decode fully; raise AecError on bad input
        audio.decompress(data, model=audio_model())

    TARGETS["audio"] = Target(run_audio, audio_seeds)   # audio_seeds(vectors) -> [(name, bytes), ...]

The corpus manifest keeps the files of each target set (``container,image``; ``audio``) apart: a
run with ``--corpus`` replaces only the files its own target set recorded.
"""

from aecodec.fuzz.cases import MUTATORS, STACKABLE, make_case
from aecodec.fuzz.corpus import MAX_CORPUS_BYTES, MAX_CORPUS_FILES, load_manifest, select_corpus, write_corpus
from aecodec.fuzz.forge import EXTREME_SYMBOLS, forge_latents, forge_segment, forge_tile
from aecodec.fuzz.packing import pack_chunk, pack_raw
from aecodec.fuzz.runner import HANG_SECONDS, MEMORY_HEADROOM, CaseMemory, Stats, fuzz, run_case, supervise
from aecodec.fuzz.targets import (
    ALIGN,
    TARGETS,
    Seed,
    Target,
    audio_model,
    build_pool,
    image_model,
    load_pool,
    model_weights,
    outcome_of,
    replay,
)

__all__ = [
    "ALIGN", "EXTREME_SYMBOLS", "HANG_SECONDS", "MAX_CORPUS_BYTES", "MAX_CORPUS_FILES", "MEMORY_HEADROOM", "MUTATORS",
    "STACKABLE", "TARGETS", "CaseMemory", "Seed", "Stats", "Target", "audio_model", "build_pool", "forge_latents",
    "forge_segment", "forge_tile", "fuzz", "image_model", "load_manifest", "load_pool", "make_case", "model_weights",
    "outcome_of", "pack_chunk", "pack_raw", "replay", "run_case", "select_corpus", "supervise", "write_corpus",
]
