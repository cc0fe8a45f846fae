"""The hyper input of a tile whose image shares ẑ across tiles (SPEC §6.3); no torch here, so the
API modules can name it without importing the models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ZWindow:
    """A tile's hyper input when an image's tiles share ẑ: the z symbols [N, h, w] of a window of
    the whole image's ẑ around the tile, and the tile's own y cells in the window's h_s output,
    ``box`` = (top, left, rows, cols)."""

    symbols: np.ndarray
    box: tuple[int, int, int, int]
