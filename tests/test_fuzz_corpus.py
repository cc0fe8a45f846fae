"""Regression tests from fuzzing: replay the committed corpus (tests/fuzz_corpus/) through the
container parser and full image decoding, and run a short fuzz of the same harness
(benchmarks/fuzz.py, whose long run is in benchmarks/results/fuzz/).

Each corpus file records the outcome class per target: "ok" or the AecError subclass. Image
outcomes depend on the seeded tiny model (tests.test_codec_image.tiny_model); if that model
changes, regenerate the corpus with the command in tests/fuzz_corpus/manifest.json."""

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import fuzz

pytestmark = pytest.mark.filterwarnings("ignore")
CORPUS = Path(__file__).parent / "fuzz_corpus"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
MODEL_MATCHES = fuzz.image_model().weights_sha256[:16] == MANIFEST["tiny_model_weights"]
REGENERATE = f"the tiny test model changed; regenerate the corpus: {MANIFEST['generated_by']}"
POOL = fuzz.build_pool(["container", "image"])  # the seed files, made with the tiny model


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny tensors: one thread is faster, and avoids OpenMP spinning on a busy machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_corpus_was_recorded_with_this_tiny_model():
    assert MODEL_MATCHES, REGENERATE


def test_corpus_is_small_and_varied():
    files = MANIFEST["files"]
    assert 20 <= len(files) <= fuzz.MAX_CORPUS_FILES
    assert all((CORPUS / name).stat().st_size <= fuzz.MAX_CORPUS_BYTES for name in files)
    image_outcomes = {meta["image"] for meta in files.values()}
    assert {"ok", "CorruptStreamError", "HeaderError", "ChecksumError", "TruncatedError"} <= image_outcomes


@pytest.mark.parametrize("name", sorted(MANIFEST["files"]))
def test_corpus_case(name):
    data = (CORPUS / name).read_bytes()
    expected = MANIFEST["files"][name]
    for target in MANIFEST["targets"]:
        outcome, message = fuzz.outcome_of(target, data)
        assert not outcome.startswith("CRASH"), f"{target}: {message}"
        if target == "container" or MODEL_MATCHES:
            assert outcome == expected[target], f"{target}: {outcome} ({message}), recorded {expected[target]}"


def test_short_fuzz_finds_nothing():
    stats = fuzz.fuzz(250, seed=2024, pool=POOL)
    assert stats.cases == 250
    assert not stats.crashes, stats.crashes[0]["message"]
    assert not stats.hangs
    assert stats.outcomes["image"]["ok"] > 0 and len(stats.outcomes["image"]) >= 6  # reaches deep and fails many ways
    assert len(stats.mutators) == len(fuzz.MUTATORS) - 1 or len(stats.mutators) == len(fuzz.MUTATORS)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 2**31 - 1), st.integers(0, 10**9))
def test_random_cases(seed, index):
    """Any case of any run: on failure, `python benchmarks/fuzz.py --seed S --replay I` reproduces it."""
    mutator, data = fuzz.make_case(seed, index, POOL)
    for target in ("container", "image"):
        outcome, message = fuzz.outcome_of(target, data)
        assert not outcome.startswith("CRASH"), f"seed {seed} case {index} ({mutator}) {target}: {message}"



def test_forged_big_tile_is_refused_from_the_header():
    """Found by the fuzzer (seed 0, case 94664, 37 KB): 65535×2730 pixels in tiles of 4096 with one
    forged TILE made the decoder reserve a 512 MiB canvas plus the synthesis of a 4096-pixel tile
    (several GB with the shipped model). The header's tile is now bounded before anything is allocated."""
    from aecodec import codec, container
    from aecodec.errors import HeaderError

    seed = next(s for s in POOL if s.name == "rgb-72x40-q5")
    header = json.loads(json.dumps(seed.header))
    header["image"].update(width=65535, height=2730, tile=4096)
    tile = fuzz.forge_tile(fuzz.image_model().net, 0, 1024, 1024)
    data = fuzz.pack_raw(container.canonical_json(header), [("TILE", tile)])
    with pytest.raises(HeaderError, match="tile"):
        codec.decompress_image(data, model=fuzz.image_model())
