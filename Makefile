# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data
STAMP := $(VENV)/.installed
RAY_STAMP := $(VENV)/.installed-ray

.PHONY: venv demo test test-slow test-ray bench-ray bench-coder bench-image bench-audio bench-effort bench-seams bench-memory fuzz clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m aecodec.demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

# aecodec.ray: the optional [ray] extra and tests on a local Ray cluster (kept out of `make test`)
$(RAY_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,ray]'
	touch $(RAY_STAMP)

test-ray: $(RAY_STAMP)
	$(BIN)/python -m pytest -q -m ray tests/test_ray.py

bench-ray: $(RAY_STAMP)
	$(BIN)/python benchmarks/ray_corpus.py --data $(DATA)/images --out benchmarks/results/ray

bench-coder: $(STAMP)
	$(BIN)/python benchmarks/coder_speed.py --out benchmarks/results/coder/coder_speed.json

bench-image: $(STAMP)
	$(BIN)/aecodec bench image --data $(DATA)/images/kodak --codecs aec,jpeg,webp,avif --out benchmarks/results/image/kodak

bench-audio: $(STAMP)
	$(BIN)/aecodec bench audio --data $(DATA)/audio/speech/eval --codecs aec,opus --out benchmarks/results/audio/speech
	$(BIN)/aecodec bench audio --data $(DATA)/audio/music/eval --codecs aec,opus --out benchmarks/results/audio/music

bench-effort: $(STAMP)
	$(BIN)/aecodec bench image --data $(DATA)/images/kodak --limit 3 --codecs aec,aec-e3,aec-e5,aec-e9 --qualities 2,4,6,8 --out benchmarks/results/image/kodak-effort

bench-seams: $(STAMP)
	$(BIN)/python benchmarks/image_seams.py --out benchmarks/results/image/seams.json

bench-memory: $(STAMP)
	$(BIN)/python benchmarks/image_memory.py --out benchmarks/results/image/memory_24mp.json
	$(BIN)/python benchmarks/audio_memory.py --out benchmarks/results/audio/memory_1h.json

fuzz: $(STAMP)
	$(BIN)/python benchmarks/fuzz.py --cases 100000 --seed 0 --target container,image --out benchmarks/results/fuzz/fuzz_image.json
	$(BIN)/python benchmarks/fuzz.py --cases 100000 --seed 0 --target audio --out benchmarks/results/fuzz/fuzz_audio.json

clean:
	rm -rf $(VENV) build *.egg-info
