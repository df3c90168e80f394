"""CoST and co-occurrence terms of the RQ-VAE, and the code-table proxy (quality.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genrec.data.dataset import UserHistories
from genrec.errors import ConfigError, DataValidationError
from genrec.tokenizers import RQVAEConfig, RQVAETokenizer
from genrec.tokenizers.quality import transition_stats, transitions
from genrec.tokenizers.rqvae import RQVAENetwork, info_nce, rqvae_losses

TINY = {
    "hidden_dims": (32,),
    "latent_dim": 8,
    "n_levels": 2,
    "codebook_size": 8,
    "batch_size": 64,
    "lr": 3e-3,
    "dead_code_every": 5,
}


def _vectors(n: int = 64, d: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)) @ rng.normal(size=(4, d))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return np.concatenate([np.zeros((1, d), np.float32), x])  # row 0 padding


# ---------------------------------------------------------------------- losses
def test_info_nce_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[3.0, 0.0], [1.0, 1.0]])
    cos = torch.tensor([[1.0, 2**-0.5], [0.0, 2**-0.5]]) / 0.5  # cosine / temperature
    expected = (-F.log_softmax(cos, 1).diagonal()).mean()
    torch.testing.assert_close(info_nce(a, b, 0.5), expected)


def test_cost_term_is_infonce_of_reconstruction_against_input():
    x = torch.from_numpy(_vectors()[1:])
    torch.manual_seed(0)
    net = RQVAENetwork(24, (32,), 8, 2, 8)
    base = RQVAEConfig(**TINY)
    plain = rqvae_losses(net, x, base)
    cost = rqvae_losses(net, x, base.replace(cost_weight=0.5, cost_temperature=0.2))
    expected = info_nce(cost["out"]["x_hat"], x, 0.2)
    torch.testing.assert_close(cost["contrastive"], expected)
    torch.testing.assert_close(cost["loss"], plain["loss"] + 0.5 * expected)
    assert float(plain["contrastive"]) == 0.0
    # recon_weight scales the squared error only
    half = rqvae_losses(net, x, base.replace(recon_weight=0.5))
    torch.testing.assert_close(half["loss"], plain["loss"] - 0.5 * plain["reconstruction"])


@pytest.mark.parametrize("target", ["collaborative", "quantized"])
def test_cooccurrence_term_reaches_encoder_and_codebooks(target):
    x = torch.from_numpy(_vectors()[1:])
    torch.manual_seed(0)
    net = RQVAENetwork(24, (32,), 8, 2, 8)
    cfg = RQVAEConfig(**TINY, cooc_weight=1.0, cooc_target=target)
    a, b = torch.arange(0, 32), torch.arange(32, 64)
    proj = torch.nn.Linear(6, 8) if target == "collaborative" else None
    t_b = torch.randn(32, 6) if target == "collaborative" else x[b]
    terms = rqvae_losses(net, x, cfg, cooc=(x[a], t_b, torch.stack([a, b], 1)), cooc_proj=proj)
    assert float(terms["cooccurrence"].detach()) > 0
    net.zero_grad()
    terms["cooccurrence"].backward()
    assert net.encoder[0].weight.grad.abs().sum() > 0  # straight-through to the encoder
    assert net.codebooks.grad.abs().sum() > 0
    with pytest.raises(DataValidationError, match="pairs"):
        rqvae_losses(net, x, cfg)


def test_cooccurrence_alignment_pulls_pairs_together():
    # 64 items in 32 fixed pairs (2j+1, 2j+2) with unrelated content vectors: the aligned
    # tokenizer gives pair members the same level-1 code more often than the plain one
    # (8 level-1 codes; measured 0.22 / 0.09 -> 0.44 / 0.53 for seeds 0 / 1)
    x = _vectors(seed=3)
    pairs = np.array([[2 * j + 1, 2 * j + 2] for j in range(32)] * 4)

    def shared(cb):
        return float((cb.codes[pairs[:32, 0], 0] == cb.codes[pairs[:32, 1], 0]).mean())

    plain, aligned = 0.0, 0.0
    for seed in (0, 1):
        plain += shared(RQVAETokenizer(epochs=40, seed=seed, **TINY).fit(x))
        tok = RQVAETokenizer(epochs=40, seed=seed, cooc_weight=2.0, cooc_target="quantized", **TINY)
        aligned += shared(tok.fit(x, cooccurrence=pairs))
        assert tok.history_[-1]["cooccurrence"] > 0
    assert aligned > plain + 0.3


def test_cooccurrence_needs_its_inputs():
    x = _vectors()
    with pytest.raises(ConfigError, match="cooccurrence"):
        RQVAETokenizer(epochs=1, cooc_weight=1.0, cooc_target="quantized", **TINY).fit(x)
    tok = RQVAETokenizer(epochs=1, cooc_weight=1.0, **TINY)
    with pytest.raises(ConfigError, match="collaborative"):
        tok.fit(x, cooccurrence=np.array([[1, 2]]))
    cb = tok.fit(x, cooccurrence=np.array([[1, 2], [3, 4]]), collaborative=np.ones((65, 5)))
    assert cb.n_items == 64
    bad = RQVAETokenizer(epochs=1, cooc_weight=1.0, cooc_target="quantized", **TINY)
    with pytest.raises(DataValidationError, match="1..64"):
        bad.fit(x, cooccurrence=np.array([[0, 2]]))
    with pytest.raises(DataValidationError, match=r"\(P, 2\)"):
        bad.fit(x, cooccurrence=np.array([1, 2, 3]))
    with pytest.raises(ConfigError, match="cooc_target"):
        RQVAEConfig(cooc_target="nope")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="cost_weight"):
        RQVAEConfig(cost_weight=-1.0)


def test_default_terms_off_keep_the_codes():
    # the new options default to off: the same codes as before they existed (seeded)
    x = _vectors()
    a = RQVAETokenizer(epochs=3, **TINY).fit(x)
    b = RQVAETokenizer(epochs=3, recon_weight=1.0, cost_weight=0.0, cooc_weight=0.0, **TINY).fit(x)
    np.testing.assert_array_equal(a.codes, b.codes)


# ---------------------------------------------------------------------- proxy
def _hist(seqs: list[list[int]], n_items: int) -> UserHistories:
    return UserHistories.from_sequences([[], *seqs], n_items)  # row 0: padding user


def test_transitions_stay_within_users():
    h = _hist([[1, 2, 2, 3], [4, 5], [6]], 6)
    np.testing.assert_array_equal(transitions(h), [[1, 2], [2, 3], [4, 5]])  # 2->2 dropped
    np.testing.assert_array_equal(
        np.sort(transitions(h, window=2), axis=0),
        np.sort([[1, 2], [2, 3], [4, 5], [1, 2], [2, 3]], axis=0),
    )
    with pytest.raises(DataValidationError):
        transitions(h, window=0)


def test_transition_stats_by_hand():
    # items 1..4; level-1 codes 0, 0, 1, 1; level 2: 0, 1, 0, 0
    codes = np.array([[-1, -1], [0, 0], [0, 1], [1, 0], [1, 0]])
    h = _hist([[1, 2, 3], [3, 4], [2, 1]], 4)  # pairs 1-2, 2-3, 3-4, 2-1
    s = transition_stats(codes, h, held_out=np.array([[1, 2], [3, 1]]), smoothing=1.0)
    assert s["n_transitions"] == 4
    assert s["next_shares_l1"] == pytest.approx(3 / 4)  # 1-2, 3-4, 2-1 share code 0/1
    assert s["next_shares_l1_2"] == pytest.approx(1 / 4)  # only 3-4 share (1, 0)
    # sources: codes 0, 0, 1, 0; targets: 0, 1, 1, 0 -> chance = 3/4*1/2 + 1/4*1/2
    assert s["chance_l1"] == pytest.approx(0.5)
    assert s["lift_l1"] == pytest.approx(1.5)
    # bigram counts (prev -> next code): 0->0: 2, 0->1: 1, 1->1: 1; add-one smoothing
    p_00 = (2 + 1) / (3 + 2)
    p_10 = (0 + 1) / (1 + 2)
    assert s["heldout_l1_bigram_bits"] == pytest.approx(-(np.log2(p_00) + np.log2(p_10)) / 2)
    marg0 = (2 + 1) / (4 + 2)  # next codes 0, 1, 1, 0 -> (2 + 1) / (4 + 2)
    assert s["heldout_l1_unigram_bits"] == pytest.approx(-np.log2(marg0))
    assert s["heldout_l1_bits_saved"] == pytest.approx(
        s["heldout_l1_unigram_bits"] - s["heldout_l1_bigram_bits"]
    )


def test_one_code_for_everything_has_no_lift():
    codes = np.array([[-1]] + [[0]] * 6)
    h = _hist([[1, 2, 3], [4, 5, 6]], 6)
    s = transition_stats(codes, h)
    assert s["next_shares_l1"] == 1.0 and s["lift_l1"] == pytest.approx(1.0)
