"""Range-coder speed and size: aecodec vs CompressAI's rANS vs constriction, in one run.

    2,000,000 symbols ~ round(N(0, s)), s log-uniform in [0.2, 20]
    indexes = CompressAI GaussianConditional.build_indexes(s) over its 64-scale table
    -> encode / decode with each coder, Msym/s (best of --repeats), bits/symbol vs ideal −log2 p

The ideal is the information content under the quantized 16-bit tables that
aecodec and CompressAI share. CompressAI's coder takes Python lists: its time is
reported with the `.tolist()` conversions a caller must do (the number compared
against the targets) and for the C++ call alone. constriction codes the same
symbols with its own QuantizedGaussian model at the same (table) scales.

    aecodec bench coder [--n 2000000] [--out results.json]   (or: python benchmarks/coder_speed.py)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def make_problem(n: int, seed: int):
    import torch
    from compressai.entropy_models import GaussianConditional
    from compressai.models.google import get_scale_table

    gc = GaussianConditional(None)
    gc.update_scale_table(get_scale_table())  # 64 scales, 0.11 .. 256
    rng = np.random.default_rng(seed)
    scales = np.exp(rng.uniform(np.log(0.2), np.log(20.0), n)).astype(np.float32)
    symbols = np.round(rng.normal(0.0, 1.0, n) * scales).astype(np.int32)
    indexes = gc.build_indexes(torch.from_numpy(scales)).numpy().astype(np.int32)
    tables = (
        gc._quantized_cdf.numpy().astype(np.int32),
        gc._cdf_length.numpy().astype(np.int32),
        gc._offset.numpy().astype(np.int32),
    )
    return symbols, indexes, tables, gc.scale_table.numpy().astype(np.float64)


def bench_aecodec(symbols, indexes, tables, repeats):
    from aecodec import entropy

    entropy.encode(symbols[:100], indexes[:100], *tables)  # compile / load the Numba cache
    t_enc, data = best_time(lambda: entropy.encode(symbols, indexes, *tables), repeats)
    t_dec, out = best_time(lambda: entropy.decode(data, indexes, *tables), repeats)
    assert np.array_equal(out, symbols), "aecodec round trip failed"
    return {"encode_s": t_enc, "decode_s": t_dec, "bytes": len(data)}


def bench_compressai(symbols, indexes, tables, repeats):
    from compressai.ans import RansDecoder, RansEncoder

    cdfs, lengths, offsets = tables

    def encode_with_lists():
        return RansEncoder().encode_with_indexes(
            symbols.tolist(), indexes.tolist(), cdfs.tolist(), lengths.tolist(), offsets.tolist()
        )

    def decode_with_lists(data):
        return RansDecoder().decode_with_indexes(data, indexes.tolist(), cdfs.tolist(), lengths.tolist(), offsets.tolist())

    t_enc, data = best_time(encode_with_lists, repeats)
    t_dec, out = best_time(lambda: decode_with_lists(data), repeats)
    assert np.array_equal(np.asarray(out, np.int32), symbols), "CompressAI round trip failed"
    lists = (symbols.tolist(), indexes.tolist(), cdfs.tolist(), lengths.tolist(), offsets.tolist())
    t_enc_call, _ = best_time(lambda: RansEncoder().encode_with_indexes(*lists), repeats)
    t_dec_call, _ = best_time(lambda: RansDecoder().decode_with_indexes(data, *lists[1:]), repeats)
    return {
        "encode_s": t_enc, "decode_s": t_dec, "bytes": len(data),
        "encode_call_only_s": t_enc_call, "decode_call_only_s": t_dec_call,
    }


def bench_constriction(symbols, indexes, scale_table, repeats):
    import constriction

    stds = scale_table[indexes].astype(np.float64)
    means = np.zeros_like(stds)
    lo, hi = int(symbols.min()), int(symbols.max())
    family = constriction.stream.model.QuantizedGaussian(lo, hi)

    def encode():
        enc = constriction.stream.queue.RangeEncoder()
        enc.encode(symbols, family, means, stds)
        return enc.get_compressed()

    t_enc, words = best_time(encode, repeats)

    def decode():
        dec = constriction.stream.queue.RangeDecoder(words)
        return dec.decode(family, means, stds)

    t_dec, out = best_time(decode, repeats)
    assert np.array_equal(np.asarray(out, np.int32), symbols), "constriction round trip failed"
    return {"encode_s": t_enc, "decode_s": t_dec, "bytes": int(words.nbytes), "model": "QuantizedGaussian at the table scales"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)

    from aecodec import entropy
    from aecodec.bench.machine import describe_machine

    symbols, indexes, tables, scale_table = make_problem(args.n, args.seed)
    ideal_bits = entropy.ideal_bits(symbols, indexes, *tables)
    results = {
        "aecodec": bench_aecodec(symbols, indexes, tables, args.repeats),
        "compressai": bench_compressai(symbols, indexes, tables, args.repeats),
        "constriction": bench_constriction(symbols, indexes, scale_table, args.repeats),
    }
    n = args.n
    rows = []
    for name, r in results.items():
        r["encode_msym_s"] = n / r["encode_s"] / 1e6
        r["decode_msym_s"] = n / r["decode_s"] / 1e6
        r["bits_per_symbol"] = 8 * r["bytes"] / n
        r["size_vs_ideal"] = 8 * r["bytes"] / ideal_bits
        rows.append(f"{name:13s} encode {r['encode_msym_s']:7.2f} Msym/s  decode {r['decode_msym_s']:7.2f} Msym/s  "
                    f"{r['bits_per_symbol']:.4f} bit/sym  ×{r['size_vs_ideal']:.5f} ideal")
    a, c = results["aecodec"], results["compressai"]
    summary = {
        "encode_speedup_vs_compressai": c["encode_s"] / a["encode_s"],
        "decode_speedup_vs_compressai": c["decode_s"] / a["decode_s"],
        "encode_speedup_vs_compressai_call_only": c["encode_call_only_s"] / a["encode_s"],
        "decode_speedup_vs_compressai_call_only": c["decode_call_only_s"] / a["decode_s"],
        "aecodec_size_vs_ideal": a["size_vs_ideal"],
        "targets": {"encode_speedup": 3.0, "decode_speedup": 1.5, "size_vs_ideal": 1.001},
    }
    print(f"{n} symbols, ideal {ideal_bits / n:.4f} bit/sym")
    print("\n".join(rows))
    print(f"aecodec vs CompressAI (with list conversion): encode ×{summary['encode_speedup_vs_compressai']:.2f}, "
          f"decode ×{summary['decode_speedup_vs_compressai']:.2f}; C++ call only: encode "
          f"×{summary['encode_speedup_vs_compressai_call_only']:.2f}, decode ×{summary['decode_speedup_vs_compressai_call_only']:.2f}")
    if args.out:
        import compressai
        import numba

        args.out.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "name": "coder_speed",
            "description": __doc__.strip().splitlines()[0],
            "machine": describe_machine(),
            "versions": {"numba": numba.__version__, "compressai": compressai.__version__, "numpy": np.__version__},
            "n_symbols": n, "ideal_bits_per_symbol": ideal_bits / n, "repeats": args.repeats,
            "results": results, "summary": summary,
        }
        args.out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
