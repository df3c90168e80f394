"""Auto-encoder, diffusion and adversarial recommenders: losses against hand computations,
schedules, the diffusion forward process, importance sampling, time-aware weights, fold-in,
CVAE content validation, IRGAN determinism and documented edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import genrec
from genrec.data.splitting import leave_one_out
from genrec.errors import DataValidationError
from genrec.models.ae_common import anneal_beta, gaussian_kl, multinomial_nll
from genrec.models.cvae import check_content
from genrec.models.diffrec import GaussianDiffusion, betas_for
from genrec.models.tdiffrec import recency_matrix, recency_weights
from genrec.testing import make_synthetic_dataset, random_recall_at_k, recall_at_k

torch.set_num_threads(1)

TINY = {
    "multvae": {"dims": [32, 16], "dropout": 0.2, "batch_size": 16, "lr": 0.01, "epochs": 20,
                "total_anneal_steps": 50},
    "multdae": {"dims": [32, 16], "dropout": 0.2, "batch_size": 16, "lr": 0.01, "epochs": 20},
    "recvae": {"hidden_dim": 32, "latent_dim": 16, "batch_size": 16, "lr": 0.01, "epochs": 8,
               "n_enc_epochs": 2},
    "cvae": {"latent_dim": 8, "content_hidden": [16], "batch_size": 16, "lr": 0.01, "epochs": 15},
    "diffrec": {"dims": [32], "emb_size": 4, "steps": 5, "batch_size": 16, "lr": 0.01,
                "epochs": 20},
    "tdiffrec": {"dims": [32], "emb_size": 4, "steps": 5, "batch_size": 16, "lr": 0.01,
                 "epochs": 20},
    "ldiffrec": {"dims": [16], "latent_dim": 16, "svd_dim": 4, "emb_size": 4, "steps": 5,
                 "batch_size": 16, "lr": 0.01, "epochs": 20},
    "irgan": {"embedding_dim": 16, "batch_size": 16, "lr": 0.02, "epochs": 14,
              "pretrain_epochs": 6},
}  # fmt: skip
COMMON = {"progress": False, "device": "cpu"}


def make(name: str, **overrides):
    return genrec.get_model(name)(**{**TINY[name], **COMMON, **overrides})


@pytest.fixture(scope="module")
def fitted(split):
    return {name: make(name).fit(split.train) for name in TINY}


# ---------------------------------------------------------------------- losses
def test_multinomial_nll_by_hand():
    logits = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    x = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    lse = math.log(math.e + math.e**2 + 1.0)
    u1 = -((1.0 - lse) + (2.0 - lse))
    u2 = -2.0 * math.log(1.0 / 3.0)
    assert multinomial_nll(logits, x).item() == pytest.approx((u1 + u2) / 2, rel=1e-6)


def test_gaussian_kl_by_hand():
    mu = torch.tensor([[0.5, -1.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    # 0.5 * sum(var + mu^2 - 1 - log var)
    expected = 0.5 * ((1 + 0.25 - 1 - 0) + (2 + 1 - 1 - math.log(2.0)))
    assert gaussian_kl(mu, logvar).item() == pytest.approx(expected, rel=1e-6)
    assert gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).abs().max().item() == 0.0


def test_anneal_schedule():
    assert anneal_beta(0, 100, 0.2) == 0.0
    assert anneal_beta(10, 100, 0.2) == pytest.approx(0.1)
    assert anneal_beta(20, 100, 0.2) == pytest.approx(0.2)
    assert anneal_beta(10_000, 100, 0.2) == pytest.approx(0.2)
    assert anneal_beta(0, 0, 0.3) == pytest.approx(0.3)


def test_multvae_counts_updates_for_annealing(fitted, split):
    model = fitted["multvae"]
    n_users = len(np.flatnonzero(np.diff(split.train.matrix().indptr) > 0))
    n_steps = TINY["multvae"]["epochs"] * math.ceil(n_users / TINY["multvae"]["batch_size"])
    assert int(model.network_.anneal_step) == n_steps
    assert model.current_beta() == pytest.approx(min(0.2, n_steps / 50))


def test_recvae_alternates_encoder_and_decoder(split):
    model = make("recvae", epochs=1)
    model.fit(split.train)
    net = model.network_
    batch = next(iter(model.epoch_batches(split.train, torch.Generator().manual_seed(0))))
    opt = torch.optim.AdamW(net.parameters(), lr=0.1)
    for phase, frozen, moving in ((0, net.decoder, net.encoder), (1, net.encoder, net.decoder)):
        batch["phase"] = torch.tensor([phase])
        before_f = [p.detach().clone() for p in frozen.parameters()]
        before_m = [p.detach().clone() for p in moving.parameters()]
        opt.zero_grad(set_to_none=True)
        model.training_step(net, batch).backward()
        assert all(p.grad is None for p in frozen.parameters())
        opt.step()
        assert all(torch.equal(a, b) for a, b in zip(before_f, frozen.parameters()))
        assert any(not torch.equal(a, b) for a, b in zip(before_m, moving.parameters()))
    # the old encoder is a frozen copy (buffers of the prior), never trained
    assert all(not p.requires_grad for p in net.encoder_old.parameters())


# ---------------------------------------------------------------------- diffusion
def test_linear_var_schedule_matches_eq14():
    betas = betas_for("linear-var", 10, 0.1, 0.01, 0.05)
    abar = np.cumprod(1 - betas)
    np.testing.assert_allclose(1 - abar, np.linspace(0.001, 0.005, 10), rtol=1e-10)


def test_forward_process_statistics():
    torch.manual_seed(0)
    diff = GaussianDiffusion(
        steps=10, noise_schedule="linear-var", noise_scale=0.5, noise_min=0.1, noise_max=0.6
    )
    x0 = torch.tensor([[1.0, 0.0, 2.0]]).repeat(200_000, 1)
    for step in (0, 9):
        t = torch.full((x0.shape[0],), step, dtype=torch.long)
        xt = diff.q_sample(x0, t)
        abar = float(diff.alphas_cumprod[step])
        np.testing.assert_allclose(xt.mean(0), math.sqrt(abar) * x0[0], atol=0.01)
        np.testing.assert_allclose(xt.var(0), np.full(3, 1 - abar), rtol=0.02)


def test_importance_sampling_weights():
    torch.manual_seed(0)
    diff = GaussianDiffusion(
        steps=4, noise_schedule="linear-var", noise_scale=0.1, noise_min=0.001,
        noise_max=0.02, history_num_per_term=3, uniform_prob=0.1,
    )  # fmt: skip
    t, pt = diff.sample_timesteps(50, torch.device("cpu"))
    assert torch.equal(pt, torch.ones(50))  # uniform during warm-up
    losses = torch.tensor([1.0, 2.0, 3.0, 4.0])
    for _ in range(5):  # more than history_num_per_term: the ring keeps the last 3
        diff.update_history(torch.arange(4), losses)
    assert (diff.Lt_count == 3).all()
    torch.testing.assert_close(diff.Lt_history, losses[:, None].repeat(1, 3))
    expected = 0.9 * losses / losses.sum() + 0.1 / 4  # sqrt(mean(L^2)) = L here
    torch.testing.assert_close(diff.importance_probs(), expected)
    t, pt = diff.sample_timesteps(1000, torch.device("cpu"))
    torch.testing.assert_close(pt, expected[t] * 4)
    # E[1 / (T p_t)] over the sampling distribution is 1: the loss stays unbiased
    assert (1.0 / pt).mean().item() == pytest.approx(1.0, rel=0.1)


def test_diffrec_reverse_from_history_is_deterministic(fitted, split):
    model = fitted["diffrec"]
    batch = model.train_histories_.batch(np.arange(1, 6))
    torch.testing.assert_close(model._score(batch), model._score(batch))


# ---------------------------------------------------------------------- time-aware
def test_recency_weights():
    np.testing.assert_allclose(recency_weights(np.array([3, 1]), 0.1, 1.0), [0.1, 0.55, 1.0, 1.0])
    np.testing.assert_allclose(recency_weights(np.array([5]), 0.0, 1.0), np.linspace(0, 1, 5))
    # a repeated item keeps its most recent weight
    mat = recency_matrix(np.array([0, 3]), np.array([2, 1, 2]), 4, 0.1, 1.0).toarray()
    np.testing.assert_allclose(mat, [[0.0, 0.55, 1.0, 0.0]])


def test_tdiffrec_input_rows_follow_order(fitted):
    model = fitted["tdiffrec"]
    items = model.item_map.external_ids
    a = model.recommend_for_history([[items[0], items[1], items[2]]], k=5, exclude_seen=False)
    b = model.recommend_for_history([[items[2], items[1], items[0]]], k=5, exclude_seen=False)
    assert not np.allclose(a.scores, b.scores)  # same set, other order -> other weights


# ---------------------------------------------------------------------- fold-in
@pytest.mark.parametrize("name", sorted(TINY))
def test_fold_in_uses_the_given_history(fitted, name):
    model = fitted[name]
    ext = model.item_map.to_external
    h1 = ext(np.array([1, 2, 3])).tolist()
    h2 = ext(np.array([31, 32, 33])).tolist()
    r1 = model.recommend_for_history([h1], k=model.n_items, exclude_seen=False)
    r2 = model.recommend_for_history([h2], k=model.n_items, exclude_seen=False)
    assert not np.array_equal(r1.internal_item_ids, r2.internal_item_ids)
    # a known user scored with another history (the evaluator's test-time history)
    user = model.user_map.external_ids[0]
    own = model.recommend([user], k=10)
    assert own.internal_item_ids.shape == (1, 10)


def test_known_user_history_reaches_the_score(fitted, split):
    """At test time the history dataset (train + validation) is what the model reads."""
    model = fitted["multvae"]
    users = model.user_map.external_ids
    a = model.recommend(users, k=10, exclude_seen=False)
    b = model.recommend(users, k=10, exclude_seen=False, history=split.test.history)
    assert not np.allclose(a.scores, b.scores)


# ---------------------------------------------------------------------- edge cases
@pytest.fixture(scope="module")
def sparse_train(split):
    """Training data where user #0 has no interactions and item #0 is never seen."""
    train = split.train
    u0, i0 = 1, 1  # internal ids
    keep = (train.user_idx != u0) & (train.item_idx != i0)
    return train.subset(keep)


@pytest.mark.parametrize("name", ["multvae", "recvae", "diffrec", "irgan", "cvae"])
def test_user_without_training_interactions(sparse_train, name):
    model = make(name, epochs=3, pretrain_epochs=1) if name == "irgan" else make(name, epochs=3)
    model.fit(sparse_train)
    ghost = model.user_map.to_external(np.array([1]))[0]
    recs = model.recommend([ghost], k=5)
    assert (recs.internal_item_ids > 0).all() and np.isfinite(recs.scores).all()
    if name == "cvae":  # documented: popularity for empty rows
        pop = model.item_popularity_
        order = sorted(range(1, model.n_items + 1), key=lambda i: (-pop[i], i))[:5]
        assert recs.internal_item_ids[0].tolist() == order
    # items never seen in training still get finite scores and can be ranked
    full = model.recommend([ghost], k=model.n_items)
    assert 1 in full.internal_item_ids[0]


def test_cvae_unseen_item_gets_content_factor(sparse_train):
    model = make("cvae").fit(sparse_train)
    offset = model.network_.offset.detach()
    unseen = offset[1].norm().item()
    seen = offset[2:].norm(dim=1).mean().item()
    assert unseen < seen  # its factor is (almost) its content latent


# ---------------------------------------------------------------------- CVAE content
def test_cvae_content_shapes(split):
    n = split.train.n_items
    assert check_content(np.ones((n, 3)), n).shape == (n + 1, 3)
    assert check_content(np.ones((n + 1, 3)), n)[0].sum() == 0
    with pytest.raises(DataValidationError, match=r"\(7, 3\).*41"):
        check_content(np.ones((7, 3)), n)
    with pytest.raises(DataValidationError, match="2-D"):
        check_content(np.ones(n), n)
    with pytest.raises(DataValidationError, match="content_dim 5"):
        check_content(np.ones((n, 3)), n, content_dim=5)
    with pytest.raises(DataValidationError, match="NaN"):
        check_content(np.full((n, 3), np.nan), n)
    with pytest.raises(DataValidationError, match=r"\(12, 4\)"):
        make("cvae", epochs=1, item_vectors=np.ones((12, 4))).fit(split.train)


def test_cvae_item_vectors_and_npy(split, tmp_path):
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(split.train.n_items, 6)).astype(np.float32)
    a = make("cvae", epochs=2, item_vectors=vecs).fit(split.train)
    path = tmp_path / "vecs.npy"
    np.save(path, vecs)
    b = make("cvae", epochs=2, content=str(path)).fit(split.train)
    users = a.user_map.external_ids
    np.testing.assert_allclose(
        a.recommend(users, k=5).scores, b.recommend(users, k=5).scores, rtol=1e-5
    )
    assert not b._bernoulli()
    loaded = genrec.load(b.save(tmp_path / "cvae"))
    np.testing.assert_array_equal(
        b.recommend(users, k=5).internal_item_ids, loaded.recommend(users, k=5).internal_item_ids
    )


def test_cvae_without_content_is_a_clear_error(split):
    ds = make_synthetic_dataset(with_items=False)
    with pytest.raises(DataValidationError, match="item content"):
        make("cvae", epochs=1).fit(leave_one_out(ds).train)


# ---------------------------------------------------------------------- IRGAN
def test_irgan_seeded_and_stable(fitted, split):
    model = fitted["irgan"]
    again = make("irgan").fit(split.train)
    assert model.phase_losses_ == again.phase_losses_
    phases = {p for _, p, _ in model.phase_losses_}
    assert phases == {0, 1, 2}  # pre-training, discriminator and generator steps all ran
    d_losses = [loss for _, p, loss in model.phase_losses_ if p == 1]
    assert all(math.isfinite(v) for v in d_losses)
    assert max(d_losses) < 10.0  # the discriminator does not blow up on the tiny data
    assert recall_at_k(model, split) > random_recall_at_k(split) + 0.3
    other = make("irgan", seed=1).fit(split.train)
    assert other.phase_losses_ != model.phase_losses_


# ---------------------------------------------------------------------- persistence
@pytest.mark.parametrize("name", ["ldiffrec", "tdiffrec", "recvae"])
def test_save_load_identity(fitted, split, name, tmp_path):
    model = fitted[name]
    loaded = genrec.load(model.save(tmp_path / name))
    users = model.user_map.external_ids
    a = model.recommend(users, k=10, history=split.test.history)
    b = loaded.recommend(users, k=10, history=split.test.history)
    np.testing.assert_array_equal(a.internal_item_ids, b.internal_item_ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)


def test_sparse_rows_equal_their_dense_matrix():
    import scipy.sparse as sp

    from genrec.models.ae_common import SparseRows, csr_to_dense, l2_normalise

    rng = np.random.default_rng(0)
    values = rng.random((6, 21), dtype=np.float32) * (rng.random((6, 21)) < 0.2)
    values[:, 0] = 0  # the padding column
    values[3] = 0  # an empty row
    mat = sp.csr_matrix(values)
    rows = SparseRows.from_csr(mat, torch.device("cpu"), binary=False)
    dense = csr_to_dense(mat, torch.device("cpu"), binary=False)
    torch.testing.assert_close(rows.dense(), dense)
    torch.testing.assert_close(rows.l2_normalised().dense(), l2_normalise(dense))
    layer = torch.nn.Linear(20, 5)
    torch.testing.assert_close(rows.linear(layer), layer(dense))
    torch.testing.assert_close(rows.dropout(0.5, training=False).dense(), dense)
    dropped = rows.dropout(0.5, training=True).dense()
    kept = dropped != 0
    assert kept.sum() < (dense != 0).sum()  # some entries dropped, the rest scaled by 2
    torch.testing.assert_close(dropped[kept], 2 * dense[kept])
    assert not dropped[dense == 0].any()


@pytest.mark.parametrize("name", ["multvae", "recvae"])
def test_sparse_first_layer_gives_the_dense_networks_outputs_and_gradients(split, name):
    """sparse_input computes the same encoder (eval mode: no dropout) and the same weight
    gradients as the dense product."""
    from genrec.models.ae_common import SparseRows, csr_to_dense

    model = genrec.get_model(name)(**{**TINY[name], **COMMON, "epochs": 1}).fit(split.train)
    net = model.network_.eval()
    batch = model.train_histories_.batch(np.arange(1, 20))
    sparse = SparseRows.from_csr(batch.matrix, torch.device("cpu"))
    dense = csr_to_dense(batch.matrix, torch.device("cpu"))
    outs = []
    for x in (sparse, dense):
        net.zero_grad()
        if name == "recvae":
            mu, logvar = net.encoder(x, 0.0)
            first = net.encoder.fcs[0].weight
        else:
            mu, logvar = net.encode(x)
            first = net.encoder[0].weight
        (mu.sum() + logvar.sum()).backward()
        outs.append((mu.detach(), logvar.detach(), first.grad.clone()))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert outs[0][2].abs().sum() > 0
    # scoring with and without the sparse path ranks alike
    scores = model.score(batch)
    dense_model = genrec.get_model(name)(**{**TINY[name], **COMMON, "sparse_input": False})
    dense_model.__dict__.update({k: v for k, v in model.__dict__.items() if k != "config"})
    torch.testing.assert_close(dense_model.score(batch), scores, rtol=1e-5, atol=1e-5)


def test_sparse_input_applies_only_where_torch_has_sparse_csr_products():
    from genrec.models.ae_common import sparse_input_applies

    assert sparse_input_applies(True, torch.device("cpu"))
    assert sparse_input_applies(True, torch.device("cuda"))
    assert not sparse_input_applies(True, torch.device("mps"))
    assert not sparse_input_applies(False, torch.device("cpu"))
