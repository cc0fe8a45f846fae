"""Fuzzing harness for the container parser and full decoding of images and audio: the command
line of ``aecodec.fuzz`` (``--help``; the package docstring says what a case is), with this
checkout's bitstream/vectors as the default seed vectors.

    python benchmarks/fuzz.py --cases 100000 --seed 0 --target container,image \\
        --out benchmarks/results/fuzz/fuzz_image.json [--corpus tests/fuzz_corpus]
"""

from pathlib import Path

from aecodec.fuzz.cli import main

if __name__ == "__main__":  # spawned workers import this file again as __mp_main__
    raise SystemExit(main(root=Path(__file__).resolve().parents[1]))
