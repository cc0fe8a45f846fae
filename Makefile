# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-slow bench-coder bench-image clean

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

bench-coder: $(STAMP)
	$(BIN)/python benchmarks/coder_speed.py --out benchmarks/results/coder/coder_speed.json

bench-image: $(STAMP)
	$(BIN)/aecodec bench image --data $(DATA)/images/kodak --codecs aec,jpeg,webp,avif --out benchmarks/results/image/kodak

clean:
	rm -rf $(VENV) build *.egg-info
