"""The table of mutators and the case it draws: case ``i`` of run ``seed`` is a pure function of
(seed, i, the pool), so ``--replay I`` rebuilds it.

    make_case(seed, i, pool)   rng(seed, i) -> a mutator by weight -> a seed file -> bytes
                               (1 in 10: a byte-level mutation stacked on top)
"""

from __future__ import annotations

import random
from collections.abc import Callable

from aecodec.fuzz.forge import m_forge
from aecodec.fuzz.mutators import (
    m_bitflip,
    m_byteset,
    m_chunk,
    m_delete,
    m_header_field,
    m_header_text,
    m_index,
    m_insert,
    m_intset,
    m_magic_random,
    m_preamble,
    m_random,
    m_seed,
    m_splice,
    m_truncate,
)
from aecodec.fuzz.targets import Seed

# name -> (mutator, weight): any change to the table changes every run's cases (the corpus records cases)
MUTATORS: dict[str, tuple[Callable, float]] = {
    "bitflip": (m_bitflip, 8),
    "byteset": (m_byteset, 4),
    "intset": (m_intset, 5),
    "insert": (m_insert, 3),
    "delete": (m_delete, 3),
    "truncate": (m_truncate, 5),
    "splice": (m_splice, 4),
    "chunk": (m_chunk, 25),
    "header_field": (m_header_field, 20),
    "header_text": (m_header_text, 8),
    "preamble": (m_preamble, 3),
    "index": (m_index, 5),
    "forge": (m_forge, 3),
    "random": (m_random, 3),
    "magic_random": (m_magic_random, 3),
    "seed": (m_seed, 1),
}
_NAMES = list(MUTATORS)
_WEIGHTS = [w for _, w in MUTATORS.values()]
STACKABLE = ["bitflip", "byteset", "intset", "insert", "delete", "truncate"]


def make_case(seed: int, i: int, pool: list[Seed]) -> tuple[str, bytes]:
    """Case i of run `seed`: (mutator name, bytes); deterministic."""
    rng = random.Random((seed << 32) ^ i)
    name = rng.choices(_NAMES, _WEIGHTS)[0]
    base = rng.choice(pool)
    data = MUTATORS[name][0](rng, base, pool)
    if name != "seed" and rng.random() < 0.1:  # occasionally a second, byte-level mutation on top
        extra = rng.choice(STACKABLE)
        data = MUTATORS[extra][0](rng, Seed("stacked", data), pool)
        name = f"{name}+{extra}"
    return name, data
