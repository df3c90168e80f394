"""The semantic-ID trie against a naive set lookup (DESIGN.md section 5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genrec.decoding import SemanticIDTrie


def random_unique_codes(rng: np.random.Generator, n: int, sizes: list[int]) -> np.ndarray:
    """``n`` distinct code tuples (rows = items 1..n)."""
    space = int(np.prod(sizes))
    flat = rng.choice(space, size=n, replace=False)
    return np.stack(np.unravel_index(flat, sizes), axis=1).astype(np.int64)  # (n, L)


@pytest.mark.parametrize(
    ("n", "sizes"), [(12, [4, 4]), (50, [3, 5, 4]), (200, [8, 8, 8, 2]), (7, [2, 3, 2])]
)
def test_allowed_mask_equals_naive_set_lookup(n: int, sizes: list[int]) -> None:
    rng = np.random.default_rng(n)
    codes = random_unique_codes(rng, n, sizes)
    trie = SemanticIDTrie.from_codes(torch.from_numpy(codes), sizes)
    tuples = {tuple(r) for r in codes.tolist()}
    for t in range(len(sizes)):
        prefixes = {c[:t] for c in tuples}
        # half real prefixes, half random (mostly invalid) ones
        real = np.array(sorted(prefixes), dtype=np.int64).reshape(len(prefixes), t)
        real = real[rng.integers(0, len(real), 40)]
        rand = np.zeros((40, t), dtype=np.int64)
        for d in range(t):
            rand[:, d] = rng.integers(0, sizes[d], 40)
        batch = np.concatenate([real, rand]).astype(np.int64)
        mask = trie.allowed_mask(torch.from_numpy(batch))
        assert mask.shape == (80, sizes[t]) and mask.dtype == torch.bool
        for row, prefix in enumerate(batch.tolist()):
            expected = [
                any(c[:t] == tuple(prefix) and c[t] == v for c in tuples) for v in range(sizes[t])
            ]
            assert mask[row].tolist() == expected, (t, prefix)


def test_lookup_and_invalid_codes() -> None:
    codes = np.array([[0, 1, 0], [0, 1, 1], [2, 0, 0], [1, 1, 1]])
    trie = SemanticIDTrie.from_codes(codes, [3, 2, 2])
    got = trie.lookup(torch.tensor([[0, 1, 1], [1, 1, 1], [0, 0, 0], [2, 0, 1], [0, 1, 0]]))
    assert got.tolist() == [2, 4, 0, 0, 1]
    # out-of-range and negative tokens are invalid, not errors
    assert trie.lookup(torch.tensor([[5, 0, 0], [-1, 1, 1]])).tolist() == [0, 0]
    assert trie.n_items == 4


def test_uncoded_rows_and_add_items() -> None:
    codes = np.array([[0, 0], [-1, -1], [1, 0]])
    trie = SemanticIDTrie.from_codes(codes, [2, 2])
    assert trie.lookup(torch.tensor([[0, 0], [1, 0], [1, 1]])).tolist() == [1, 3, 0]
    trie.add_items([2, 5], np.array([[1, 1], [0, 1]]))  # fill item 2, grow to item 5
    assert trie.lookup(torch.tensor([[1, 1], [0, 1]])).tolist() == [2, 5]
    assert trie.allowed_mask(torch.tensor([[0]])).tolist() == [[True, True]]
    with pytest.raises(ValueError, match="not unique"):
        trie.add_items([4], np.array([[0, 0]]))
    assert trie.lookup(torch.tensor([[0, 0]])).tolist() == [1]  # unchanged after the error


def test_duplicates_and_bad_codes_raise() -> None:
    with pytest.raises(ValueError, match="not unique"):
        SemanticIDTrie.from_codes(np.array([[0, 1], [0, 1]]), [2, 2])
    with pytest.raises(ValueError, match="out of range"):
        SemanticIDTrie.from_codes(np.array([[0, 2]]), [2, 2])
    with pytest.raises(ValueError, match="partial"):
        SemanticIDTrie.from_codes(np.array([[0, -1], [1, 1]]), [2, 2])


def test_allowed_nodes_respects_item_mask() -> None:
    rng = np.random.default_rng(3)
    sizes = [3, 3, 2]
    codes = random_unique_codes(rng, 12, sizes)
    trie = SemanticIDTrie.from_codes(codes, sizes)
    item_mask = torch.from_numpy(rng.random((4, 13)) < 0.3)
    item_mask[:, 0] = False
    node_ok = trie.allowed_nodes(item_mask)
    for t in range(len(sizes)):
        for r in range(4):
            for item in range(1, 13):
                node = int(trie.item_nodes[t][item])
                allowed = [
                    i
                    for i in range(1, 13)
                    if item_mask[r, i] and int(trie.item_nodes[t][i]) == node
                ]
                assert bool(node_ok[t][r, node]) == bool(allowed)


def test_closed_branches_equal_the_naive_subtree_check() -> None:
    rng = np.random.default_rng(4)
    sizes = [3, 3, 2]
    codes = random_unique_codes(rng, 14, sizes)
    trie = SemanticIDTrie.from_codes(codes, sizes)
    deny = rng.random((4, 15)) < 0.5
    deny[2, 1:] = True  # a row that has seen everything: every branch is closed
    deny[:, 0] = False
    rows, items = np.nonzero(deny)
    closed = trie.closed_branches(torch.from_numpy(rows), torch.from_numpy(items))
    for t in range(len(sizes)):
        got = set(zip(closed[t][0].tolist(), closed[t][1].tolist()))
        expected = set()
        for r in range(4):
            for node in range(trie.n_nodes[t + 1]):
                below = [i for i in range(1, 15) if int(trie.item_nodes[t][i]) == node]
                if all(deny[r, i] for i in below):
                    parent = int(trie.parents[t][node])
                    key = r * trie.n_nodes[t] + parent
                    expected.add((key, int(trie.tokens[t][node])))
        assert got == expected
        assert int(trie.subtree_items[t].sum()) == 14
