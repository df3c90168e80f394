"""genrec's constrained beam search equals Hugging Face ``generate()`` on the same weights.

``benchmarks/bench_beam_search.py --exact-users N`` drives a transformers T5 with
:func:`genrec.decoding.beam_search` + :class:`~genrec.decoding.TrieConstraint` and compares
the top-10 lists with that T5's ``generate(num_beams=20, prefix_allowed_tokens_fn=...)``.
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest

pytest.importorskip("transformers")


def test_identical_top10_on_the_same_t5_weights(benchmark_script) -> None:
    bench = benchmark_script("bench_beam_search")
    rng = np.random.default_rng(0)
    sizes = [6, 5, 4, 2]
    n_items = 90  # > 20 beams, with shared prefixes and collisions
    sem = np.stack([rng.integers(0, s, n_items) for s in sizes[:3]], 1)
    _, first = np.unique(sem, axis=0, return_index=True)
    keep = np.sort(first)  # one item per semantic triple, plus a second one for a few
    extra = keep[:10]
    codes = np.concatenate([
        np.c_[sem[keep], np.zeros(len(keep), dtype=np.int64)],
        np.c_[sem[extra], np.ones(len(extra), dtype=np.int64)],
    ])  # fmt: skip
    codes = np.vstack([np.full((1, 4), -1), codes])  # row 0: the padding item
    n = codes.shape[0] - 1
    users = 3
    data = {
        "codes": codes,
        "sizes": np.asarray(sizes),
        "hist": rng.integers(1, n + 1, size=(users, bench.MAX_ITEMS)),
        "users": rng.integers(0, bench.USER_BUCKETS, size=users),
    }
    args = argparse.Namespace(threads=1, seed=0, exact_users=users, device="cpu")
    res = bench.run_exact(data, args)
    assert res["users"] == users
    assert res["identical_lists"] == 1.0, res
