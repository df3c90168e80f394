"""LightGCN: graph normalisation, propagation, BPR loss, fold-in, negatives, item vectors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from genrec.errors import ConfigError
from genrec.models.lightgcn import (
    LightGCN,
    LightGCNConfig,
    LightGCNNetwork,
    normalized_adjacency,
    to_torch_sparse,
)
from genrec.testing import random_recall_at_k, recall_at_k
from genrec.text import collaborative_vectors

TINY = dict(
    embedding_dim=16, n_layers=2, batch_size=64, lr=0.01, epochs=30, patience=0,
    progress=False, device="cpu",
)  # fmt: skip


@pytest.fixture(scope="module")
def fitted(split):
    return LightGCN(**TINY).fit(split.train)


def test_normalized_adjacency_by_hand():
    # users 1, 2 (row 0 padding); items 1, 2 (column 0 padding): u1-i1, u1-i2, u2-i2
    R = sp.csr_matrix(np.array([[0, 0, 0], [0, 1, 3], [0, 0, 1]], dtype=np.float32))
    A = normalized_adjacency(R).toarray()  # nodes: u0 u1 u2 | i0 i1 i2
    assert A.shape == (6, 6)
    deg = {"u1": 2, "u2": 1, "i1": 1, "i2": 2}  # the weight 3 is one edge
    expected = np.zeros((6, 6), np.float32)
    edges = [(("u1", 1), ("i1", 4)), (("u1", 1), ("i2", 5)), (("u2", 2), ("i2", 5))]
    for (u, uc), (i, ic) in edges:
        expected[uc, ic] = expected[ic, uc] = 1 / np.sqrt(deg[u] * deg[i])
    np.testing.assert_allclose(A, expected, rtol=1e-6)
    assert not A[0].any() and not A[3].any()  # padding nodes stay isolated


def test_propagation_is_the_mean_of_dense_layers():
    torch.manual_seed(0)
    R = sp.random(5, 7, density=0.4, random_state=0, format="lil")
    R[:, 0] = 0
    R[0] = 0
    R = R.tocsr()
    A = normalized_adjacency(R)
    net = LightGCNNetwork(4, 6, LightGCNConfig(embedding_dim=3, n_layers=3))
    users, items = net.propagate(to_torch_sparse(A))
    E = torch.cat([net.user_emb.weight, net.item_emb.weight]).detach().double()
    Ad = torch.from_numpy(A.toarray()).double()
    layers = [E, Ad @ E, Ad @ Ad @ E, Ad @ Ad @ Ad @ E]
    final = torch.stack(layers).mean(0)  # alpha_k = 1 / (K + 1)
    torch.testing.assert_close(users.double(), final[:5], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(items.double(), final[5:], rtol=1e-5, atol=1e-6)


def test_bpr_loss_matches_formula():
    torch.manual_seed(1)
    R = sp.csr_matrix(np.array([[0, 0, 0, 0], [0, 1, 0, 1], [0, 0, 1, 0]], dtype=np.float32))
    graph = to_torch_sparse(normalized_adjacency(R))
    cfg = LightGCNConfig(embedding_dim=4, n_layers=1, l2=0.5)
    net = LightGCNNetwork(2, 3, cfg)
    users, pos, neg = torch.tensor([1, 2]), torch.tensor([1, 2]), torch.tensor([2, 3])
    all_u, all_i = net.propagate(graph)
    y_pos, y_neg = (all_u[users] * all_i[pos]).sum(-1), (all_u[users] * all_i[neg]).sum(-1)
    bpr = -F.logsigmoid(y_pos - y_neg).mean()
    E_u, E_i = net.user_emb.weight, net.item_emb.weight
    reg = (E_u[users].pow(2).sum() + E_i[pos].pow(2).sum() + E_i[neg].pow(2).sum()) / 4
    torch.testing.assert_close(net(graph, users, pos, neg), bpr + 0.5 * reg)


def test_fold_in_with_the_training_history_is_the_graph_embedding(fitted, split):
    users = np.arange(1, fitted.user_map.size + 1)
    batch = fitted.train_histories_.batch(users)
    folded = fitted.fold_in(batch)
    graph_users, _ = fitted.network_.propagate(fitted._graph_on_device())
    torch.testing.assert_close(folded, graph_users[users].detach(), rtol=1e-4, atol=1e-6)


def test_fold_in_uses_the_given_history(fitted, split):
    # test time: train + validation history; fold-in changes scores, fold_in=False does not
    hist_train = fitted.train_histories_
    hist_test = split.test.history.histories()
    users = np.arange(1, 11)
    b_train, b_test = hist_train.batch(users), hist_test.batch(users)
    assert (b_test.matrix != b_train.matrix).nnz > 0
    assert not torch.allclose(fitted.score(b_train), fitted.score(b_test))
    fixed = LightGCN(**{**TINY, "fold_in": False}).fit(split.train)
    torch.testing.assert_close(fixed.score(b_train), fixed.score(b_test))
    # ad-hoc rows are folded in either way, and equal for both settings at equal weights
    fixed.network_.load_state_dict(fitted.network_.state_dict())
    fixed._invalidate()
    adhoc = hist_test.batch(users, user_ids=np.zeros(len(users), np.int64))
    torch.testing.assert_close(fixed.score(adhoc), fitted.score(adhoc))


def test_negatives_avoid_seen_items(fitted, split):
    model = LightGCN(**{**TINY, "epochs": 1})
    model.fit(split.train)
    R = model._training_matrix()
    model._pair_users = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr)).astype(np.int64)
    model._pair_keys = np.sort(model._pair_users * R.shape[1] + R.indices)
    neg = model._sample_negatives(model._pair_users, torch.Generator().manual_seed(0))
    assert neg.min() >= 1 and neg.max() <= model.n_items
    assert not np.asarray(R[model._pair_users, neg]).any()


def test_quality_and_item_embeddings(fitted, split):
    assert recall_at_k(fitted, split) > random_recall_at_k(split) + 0.4
    emb = fitted.item_embeddings()
    assert emb.shape == (fitted.n_items + 1, 16) and not emb[0].any()
    _, items = fitted.network_.propagate(fitted._graph_on_device())
    np.testing.assert_allclose(emb[1:], items[1:].detach().numpy(), rtol=1e-5, atol=1e-6)
    # the tokenizer pipeline reads the layer-combined embeddings, not layer 0
    np.testing.assert_array_equal(collaborative_vectors(fitted), emb)
    # items of one synthetic cluster are closer to each other than to other clusters
    cluster = np.repeat(np.arange(4), 10)
    v = emb[1:] / np.linalg.norm(emb[1:], axis=1, keepdims=True)
    sim = v @ v.T
    same = cluster[:, None] == cluster[None, :]
    np.fill_diagonal(same, False)
    assert sim[same].mean() > sim[cluster[:, None] != cluster[None, :]].mean() + 0.3


def test_scores_survive_save_load(fitted, split, tmp_path):
    import genrec

    fitted.save(tmp_path / "m")
    loaded = genrec.load(tmp_path / "m")
    batch = split.test.history.histories().batch(np.arange(1, 20))
    torch.testing.assert_close(loaded.score(batch), fitted.score(batch))


def test_bad_config():
    with pytest.raises(ConfigError, match="n_layers"):
        LightGCNConfig(n_layers=0)
    with pytest.raises(ConfigError, match="l2"):
        LightGCNConfig(l2=-1.0)
