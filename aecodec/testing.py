"""Tiny models and test signals for tests and fuzzing (random weights: they code, they don't compress).

    tiny_context_model()  a ContextHyperprior small enough to code a picture in milliseconds,
                          with random context networks so every pass's parameters depend on
                          what was decoded before it (the zero init would hide the context)
    smooth_image(w, h)    a smooth uint8 picture with a little noise
    with_threads(t, c, f) f() with t torch threads and c coding threads (determinism tests)
"""

from __future__ import annotations

import numpy as np


def tiny_context_model(seed: int = 1234, levels: int = 4):
    """registry.LoadedModel of ContextHyperprior(N=16, M=32, groups 4/4/8/8/8), tables updated."""
    import torch

    from aecodec import registry
    from aecodec.models.context import ContextHyperprior

    torch.manual_seed(seed)
    net = ContextHyperprior(N=16, M=32, levels=levels, groups=(4, 4, 8, 8, 8))
    with torch.no_grad():
        for name, p in net.context.named_parameters():
            p.add_(torch.randn_like(p) * (0.3 if name.endswith("weight") else 0.1))
    net.update_tables()
    return registry.from_network(net, name="test-context")


def smooth_image(w: int, h: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = [(np.sin(xx / 7 + c) * np.cos(yy / 5 - c) + 1) * 110 for c in range(channels)]
    arr = np.stack(base, -1) + rng.normal(0, 4, (h, w, channels))
    return np.clip(arr, 0, 255).astype(np.uint8)


def with_threads(torch_threads: int, coding_threads: int, fn):
    """fn() with ``torch_threads`` torch threads and ``coding_threads`` tile/segment threads, restored after."""
    import torch

    from aecodec import codec

    before, coding_before = torch.get_num_threads(), codec.CODING_THREADS
    torch.set_num_threads(torch_threads)
    codec.CODING_THREADS = coding_threads
    try:
        return fn()
    finally:
        torch.set_num_threads(before)
        codec.CODING_THREADS = coding_before
