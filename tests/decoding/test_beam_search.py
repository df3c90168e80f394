"""Beam search against brute force (DESIGN.md section 5) and its pure helpers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from genrec.decoding import (
    SemanticIDTrie,
    Static,
    TrieConstraint,
    beam_search,
    expand_to_beams,
    flat_beam_indices,
    flatten_beams,
    gather_beams,
    reorder_state,
    unflatten_beams,
)


def test_helpers() -> None:
    x = torch.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert torch.equal(unflatten_beams(flatten_beams(x), 3), x)
    assert flatten_beams(x).shape == (6, 4)
    assert expand_to_beams(torch.tensor([[1], [2]]), 3).reshape(-1).tolist() == [1, 1, 1, 2, 2, 2]
    idx = torch.tensor([[2, 0], [1, 1]])
    g = gather_beams(x, idx)
    assert torch.equal(g[0, 0], x[0, 2]) and torch.equal(g[1, 1], x[1, 1])
    assert flat_beam_indices(torch.tensor([[2, 0, 0], [1, 1, 2]])).tolist() == [2, 0, 0, 4, 4, 5]
    assert flat_beam_indices(torch.zeros(2, 3, dtype=torch.long), 1).tolist() == [0, 0, 0, 1, 1, 1]
    state = {"a": torch.tensor([10, 11, 12]), "b": [torch.ones(3, 2)], "s": Static(torch.ones(1))}
    out = reorder_state(state, torch.tensor([2, 2, 0]))
    assert out["a"].tolist() == [12, 12, 10] and out["s"] is state["s"]
    assert out["b"][0].shape == (3, 2)


class ToyModel:
    """Fixed random log-prob table that depends on the whole prefix (and the input row)."""

    def __init__(self, sizes: list[int], batch: int, seed: int = 0):
        self.sizes = sizes
        self.tables = []
        g = torch.Generator().manual_seed(seed)
        for t, v in enumerate(sizes):
            n_prefix = int(np.prod(sizes[:t])) if t else 1
            logits = torch.randn(batch, n_prefix, v, generator=g) * 2
            self.tables.append(torch.log_softmax(logits, -1))  # (B, P_t, V_t)

    def prefix_index(self, tokens: torch.Tensor) -> torch.Tensor:
        idx = torch.zeros(tokens.shape[0], dtype=torch.long)
        for d in range(tokens.shape[1]):
            idx = idx * self.sizes[d] + tokens[:, d]
        return idx

    def step(self, tokens: torch.Tensor, state: dict) -> tuple[torch.Tensor, dict]:
        t = tokens.shape[1]
        rows = state["row"]  # (B*K,) reordered with the beams
        lp = self.tables[t][rows, self.prefix_index(tokens)]  # (B*K, V_t)
        return lp, state

    def score(self, b: int, code: tuple[int, ...]) -> float:
        total = 0.0
        for t in range(len(code)):
            p = self.prefix_index(torch.tensor([code[:t]], dtype=torch.long).reshape(1, t))
            total += float(self.tables[t][b, p, code[t]])
        return total


@pytest.mark.parametrize(("sizes", "n_items"), [([3, 4], 9), ([4, 3, 3], 20), ([2, 2, 2, 2], 16)])
def test_parity_with_brute_force(sizes: list[int], n_items: int) -> None:
    rng = np.random.default_rng(len(sizes))
    space = list(itertools.product(*[range(s) for s in sizes]))
    pick = rng.choice(len(space), size=n_items, replace=False)
    codes = np.array([space[i] for i in pick], dtype=np.int64)
    trie = SemanticIDTrie.from_codes(codes, sizes)
    B, K = 3, n_items + 2  # more beams than items: beam search must be exhaustive
    model = ToyModel(sizes, B)
    state = {"row": torch.arange(B)}
    out = beam_search(
        model.step, state, batch_size=B, num_beams=K, max_len=len(sizes),
        vocab_sizes=sizes, processors=[TrieConstraint(trie)],
    )  # fmt: skip
    assert out.tokens.shape == (B, K, len(sizes)) and out.scores.shape == (B, K)
    for b in range(B):
        brute = sorted(
            ((model.score(b, tuple(c)), tuple(c)) for c in codes.tolist()), key=lambda x: -x[0]
        )
        got = out.scores[b].tolist()
        assert np.isfinite(got[:n_items]).all() and np.isneginf(got[n_items:]).all()
        np.testing.assert_allclose(got[:n_items], [s for s, _ in brute], rtol=1e-5, atol=1e-5)
        got_codes = [tuple(c) for c in out.tokens[b, :n_items].tolist()]
        assert got_codes == [c for _, c in brute]
        # every decoded code maps to a real item
        assert (trie.lookup(out.tokens[b, :n_items]) > 0).all()


def test_small_beams_are_valid_and_sorted() -> None:
    sizes = [8, 8, 4]
    rng = np.random.default_rng(1)
    space = list(itertools.product(*[range(s) for s in sizes]))
    codes = np.array([space[i] for i in rng.choice(len(space), 60, replace=False)])
    trie = SemanticIDTrie.from_codes(codes, sizes)
    B, K = 4, 5
    model = ToyModel(sizes, B, seed=2)
    out = beam_search(
        model.step, {"row": torch.arange(B)}, batch_size=B, num_beams=K,
        max_len=3, vocab_sizes=sizes, processors=[TrieConstraint(trie)],
    )  # fmt: skip
    items = trie.lookup(out.tokens.reshape(-1, 3)).reshape(B, K)
    assert (items > 0).all()
    assert all(len(set(r)) == K for r in items.tolist())  # distinct items per row
    assert (out.scores[:, :-1] >= out.scores[:, 1:]).all()
    for b in range(B):  # scores are the exact sums of the step log-probs
        for k in range(K):
            assert abs(model.score(b, tuple(out.tokens[b, k].tolist())) - out.scores[b, k]) < 1e-4


def test_item_mask_excludes_items() -> None:
    sizes = [3, 3]
    codes = np.array(list(itertools.product(range(3), range(3))))  # 9 items
    trie = SemanticIDTrie.from_codes(codes, sizes)
    B, K = 2, 9
    mask = torch.ones(B, 10, dtype=torch.bool)
    mask[:, 0] = False
    mask[0, [1, 2, 3]] = False  # user 0: whole first branch excluded
    mask[1, 5] = False
    model = ToyModel(sizes, B, seed=5)
    out = beam_search(
        model.step, {"row": torch.arange(B)}, batch_size=B, num_beams=K,
        max_len=2, vocab_sizes=sizes, processors=[TrieConstraint(trie, mask)],
    )  # fmt: skip
    items = trie.lookup(out.tokens.reshape(-1, 2)).reshape(B, K)
    alive = torch.isfinite(out.scores)
    assert sorted(items[0][alive[0]].tolist()) == [4, 5, 6, 7, 8, 9]
    assert sorted(items[1][alive[1]].tolist()) == [1, 2, 3, 4, 6, 7, 8, 9]


def test_bad_step_shape() -> None:
    def step(tokens, state):
        return torch.zeros(tokens.shape[0], 5), state

    with pytest.raises(ValueError, match="expected"):
        beam_search(step, None, batch_size=2, num_beams=2, max_len=1, vocab_sizes=[4])


@pytest.mark.parametrize(("sizes", "n_items", "beams"), [([3, 3], 9, 9), ([4, 3, 3], 30, 7)])
def test_denied_pairs_decode_like_the_dense_allow_list(
    sizes: list[int], n_items: int, beams: int
) -> None:
    """Seen items as a deny-list (catalogue-free) give exactly the beams of the same
    restriction as a dense (B, n_items + 1) allow-list, whole closed branches included."""
    rng = np.random.default_rng(n_items)
    space = list(itertools.product(*[range(s) for s in sizes]))
    codes = np.array([space[i] for i in rng.choice(len(space), n_items, replace=False)])
    trie = SemanticIDTrie.from_codes(codes, sizes)
    B = 5
    deny = rng.random((B, n_items + 1)) < 0.4
    deny[0, 1 : n_items + 1] = False
    first = trie.item_nodes[0][1:] == trie.item_nodes[0][1]  # the branch of item 1
    deny[1, 1:][first.numpy()] = True  # a whole first-level branch is seen
    deny[:, 0] = False
    mask = torch.from_numpy(~deny)
    mask[:, 0] = False
    rows, items = np.nonzero(deny)
    pairs = (torch.from_numpy(rows), torch.from_numpy(items))
    model = ToyModel(sizes, B, seed=7)
    outs = [
        beam_search(
            model.step,
            {"row": torch.arange(B)},
            batch_size=B,
            num_beams=beams,
            max_len=len(sizes),
            vocab_sizes=sizes,
            processors=[proc],
        )  # fmt: skip
        for proc in (TrieConstraint(trie, mask), TrieConstraint(trie, denied=pairs, n_rows=B))
    ]
    assert torch.equal(outs[0].tokens, outs[1].tokens)
    assert torch.equal(outs[0].scores, outs[1].scores)
    got = trie.lookup(outs[1].tokens.reshape(-1, len(sizes))).reshape(B, beams)
    alive = torch.isfinite(outs[1].scores)
    assert not deny[np.arange(B)[:, None], got.numpy()][alive.numpy()].any()
    with pytest.raises(ValueError, match="not both"):
        TrieConstraint(trie, mask, denied=pairs, n_rows=B)
    with pytest.raises(ValueError, match="n_rows"):
        TrieConstraint(trie, denied=pairs)
