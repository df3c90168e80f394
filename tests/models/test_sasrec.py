"""SASRec and the shared losses / transformer layers it is built on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sequence_checks import check_trimming_keeps_the_loss, variable_length_split
from torch import nn

import genrec
from genrec.errors import ConfigError, UnknownIdError
from genrec.models.sasrec import SASRec, SASRecConfig, SASRecNetwork
from genrec.nn.losses import bce_one_negative, full_softmax_ce, gbce, gbce_beta, sampled_softmax
from genrec.nn.transformer import attention_mask
from genrec.testing import random_recall_at_k, recall_at_k

TINY = dict(
    embedding_dim=16, n_blocks=1, max_seq_len=10, lr=0.01, epochs=25, progress=False, device="cpu"
)


@pytest.fixture(scope="module")
def fitted(split):
    return SASRec(**TINY).fit(split.train)


# ---------------------------------------------------------------------- losses
def test_gbce_beta_formula():
    # alpha = K / (|I| - 1); beta = alpha (t (1 - 1/alpha) + 1/alpha)  (gSASRec Eq. 13)
    assert gbce_beta(4, 101, 0.0) == pytest.approx(1.0)
    assert gbce_beta(4, 101, 1.0) == pytest.approx(0.04)
    alpha = 4 / 100
    assert gbce_beta(4, 101, 0.5) == pytest.approx(alpha * (0.5 * (1 - 1 / alpha) + 1 / alpha))
    assert gbce_beta(4, 101, 0.5) == pytest.approx(0.52)  # by hand: 0.04 * (0.5 * -24 + 25)
    with pytest.raises(ValueError):
        gbce_beta(4, 101, 1.5)


def test_gbce_t0_is_bce_and_matches_official_formulation():
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(7, generator=g), torch.randn(7, 1, generator=g)
    # t = 0 with one negative is SASRec's BCE
    torch.testing.assert_close(gbce(pos, neg, 50, 0.0), bce_one_negative(pos, neg[:, 0]))
    bce = -(torch.log(torch.sigmoid(pos)) + torch.log(1 - torch.sigmoid(neg[:, 0]))).mean()
    torch.testing.assert_close(bce_one_negative(pos, neg[:, 0]), bce)
    # the official code: BCE-with-logits on [logit(sigma(s+)^beta), s-], mean over 1 + K
    neg = torch.randn(7, 5, generator=g)
    t, n_items = 0.75, 30
    beta = gbce_beta(5, n_items, t)
    p_beta = torch.sigmoid(pos.double()) ** beta
    logits = torch.cat([torch.log(p_beta / (1 - p_beta))[:, None], neg.double()], 1)  # (7, 6)
    target = torch.zeros_like(logits)
    target[:, 0] = 1
    official = F.binary_cross_entropy_with_logits(logits, target) * 6  # sum over 1 + K
    torch.testing.assert_close(gbce(pos, neg, n_items, t).double(), official)


def test_gbce_neg_mask_drops_terms():
    pos, neg = torch.tensor([0.3, -1.0]), torch.tensor([[0.5, 2.0], [1.0, -3.0]])
    mask = torch.tensor([[False, True], [False, False]])
    manual = (F.softplus(-pos) + torch.tensor([F.softplus(torch.tensor(0.5)), 0.0])).mean()
    manual = manual + F.softplus(neg[1]).sum() / 2
    torch.testing.assert_close(gbce(pos, neg, 10, 0.0, neg_mask=mask), manual)


def test_sampled_softmax_reference():
    g = torch.Generator().manual_seed(1)
    pos, neg = torch.randn(6, generator=g), torch.randn(6, 4, generator=g)
    ref = F.cross_entropy(torch.cat([pos[:, None], neg], 1), torch.zeros(6, dtype=torch.long))
    torch.testing.assert_close(sampled_softmax(pos, neg), ref)
    # a constant log Q (uniform sampler) cancels
    lq = torch.full((6,), -3.0)
    torch.testing.assert_close(sampled_softmax(pos, neg, lq, lq[:, None].expand(6, 4)), ref)
    # logQ correction subtracts log Q from every logit
    lq_neg = torch.randn(6, 4, generator=g)
    ref_q = F.cross_entropy(torch.cat([pos[:, None], neg - lq_neg], 1), torch.zeros(6).long())
    torch.testing.assert_close(sampled_softmax(pos, neg, log_q_neg=lq_neg), ref_q)
    # masked negatives are dropped
    mask = torch.zeros(6, 4, dtype=torch.bool)
    mask[:, 2:] = True
    torch.testing.assert_close(
        sampled_softmax(pos, neg, neg_mask=mask), sampled_softmax(pos, neg[:, :2])
    )


def test_full_softmax_ce_chunked_equals_unchunked():
    g = torch.Generator().manual_seed(2)
    E = torch.randn(30, 8, generator=g, requires_grad=True)
    bias = torch.randn(30, generator=g, requires_grad=True)
    h = torch.randn(25, 8, generator=g, requires_grad=True)
    y = torch.randint(0, 30, (25,), generator=g)
    ref = F.cross_entropy(h @ E.T + bias, y)
    full = full_softmax_ce(h, E, y, bias=bias, chunk_size=1000)
    torch.testing.assert_close(full, ref)
    grads_full = torch.autograd.grad(full, (h, E, bias))
    chunked = full_softmax_ce(h, E, y, bias=bias, chunk_size=7)  # 4 chunks, checkpointed
    torch.testing.assert_close(chunked, ref)
    for a, b in zip(grads_full, torch.autograd.grad(chunked, (h, E, bias))):
        torch.testing.assert_close(a, b)
    with torch.no_grad():
        torch.testing.assert_close(full_softmax_ce(h, E, y, bias=bias, chunk_size=7), ref)
    empty = full_softmax_ce(h[:0], E, y[:0])
    assert empty.item() == 0.0 and empty.requires_grad


def test_attention_mask():
    real = torch.tensor([[False, True, True]])
    causal = attention_mask(real, causal=True)[0, 0]
    assert causal.tolist() == [[True, False, False], [False, True, False], [False, True, True]]
    bi = attention_mask(real, causal=False)[0, 0]
    assert bi.tolist() == [[True, True, True], [False, True, True], [False, True, True]]


# ---------------------------------------------------------------------- network
def _net(**kw) -> SASRecNetwork:
    torch.manual_seed(0)
    cfg = SASRecConfig(embedding_dim=16, n_blocks=2, n_heads=2, max_seq_len=6, **kw)
    return SASRecNetwork(20, cfg).eval()


def test_causal_later_items_do_not_change_earlier_positions():
    net = _net()
    seq = torch.tensor([[0, 3, 5, 7, 9, 11]])
    other = seq.clone()
    other[0, 4] = 2  # change position 4
    with torch.no_grad():
        a, b = net(seq), net(other)  # (1, 6, D)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_padding_length_does_not_change_outputs():
    net = _net()
    with torch.no_grad():
        long = net.score_last(torch.tensor([[0, 0, 0, 4, 5, 6]]))
        short = net.score_last(torch.tensor([[0, 4, 5, 6]]))  # fewer pads, same recency
        other_pad = net(torch.tensor([[0, 0, 0, 4, 5, 6]]))[:, 3:]
        same = net(torch.tensor([[0, 0, 4, 5, 6]]))[:, 2:]
    torch.testing.assert_close(long, short)
    torch.testing.assert_close(other_pad, same)


def test_loss_only_at_real_positions():
    net = _net(loss="ce")
    seq = torch.tensor([[0, 0, 3, 4], [1, 2, 3, 4]])
    tgt = torch.tensor([[0, 0, 4, 5], [0, 0, 0, 5]])
    with torch.no_grad():
        h = net(seq)
        logits = h @ net.item_emb.weight[1:].T  # (B, L, n)
        ref = F.cross_entropy(logits[tgt > 0], tgt[tgt > 0] - 1)
        torch.testing.assert_close(net(seq, tgt), ref)


# ---------------------------------------------------------------------- estimator
@pytest.mark.parametrize(
    "loss, extra",
    [
        ("ce", {}),
        ("bce", {"n_negatives": 1}),
        ("gbce", {"n_negatives": 8, "gbce_t": 0.5, "epochs": 40, "lr": 0.02}),
        ("sampled_softmax", {"n_negatives": 8}),
        ("sampled_softmax", {"negatives": "in_batch"}),
        ("sampled_softmax", {"negatives": "mixed", "n_negatives": 8}),
    ],
)
def test_each_loss_trains_and_beats_random(split, loss, extra):
    model = SASRec(**{**TINY, "loss": loss, **extra}).fit(split.train)
    hist = model.training_history_
    assert hist[-1]["loss"] < hist[0]["loss"]
    recall, chance = recall_at_k(model, split), random_recall_at_k(split)
    assert recall > chance + 0.2, (recall, chance)


def test_sigmoid_losses_start_at_the_prior_log_odds():
    # gBCE with K negatives is minimised by a constant score log(beta / K) (about -6.9 for
    # K = 256, t = 0.75 on Beauty). Without an output bias the tied item embeddings had to
    # grow a shared component to get there, which collapsed SASRec-gBCE to a constant
    # prediction; the network's logit bias must start at that optimum instead.
    n_items, k, t = 1000, 256, 0.75
    torch.manual_seed(0)
    cfg = SASRecConfig(embedding_dim=16, max_seq_len=6, loss="gbce", n_negatives=k, gbce_t=t)
    net = SASRecNetwork(n_items, cfg).eval()
    beta = gbce_beta(k, n_items, t)
    assert net.logit_bias is not None
    assert net.logit_bias.item() == pytest.approx(np.log(beta / k))
    seq = torch.randint(1, n_items + 1, (8, 6))
    tgt = torch.randint(1, n_items + 1, (8, 6))
    negatives = torch.randint(1, n_items + 1, (48, k))
    loss = net(seq, tgt, negatives)
    c = np.log(beta / k)  # the constant-score optimum and its loss
    best = beta * np.log1p(np.exp(-c)) + k * np.log1p(np.exp(c))
    assert best < loss.item() < 2 * best, (loss.item(), best)  # old code: ~100x best
    # the bias carries the shift: no pull of all item embeddings towards one direction
    loss.backward()
    common = net.item_emb.weight.grad[1:].sum(0).norm()
    assert common < net.item_emb.weight.grad[1:].norm(dim=1).sum() * 0.2
    # rank-neutral at inference, present for bce; absent where the loss is shift-invariant
    assert SASRecNetwork(20, SASRecConfig(loss="bce")).logit_bias.item() == 0.0
    assert SASRecNetwork(20, SASRecConfig(loss="ce")).logit_bias is None


def test_gbce_many_negatives_learns(split):
    # K = 256 negatives (far more than the 40 items): before the logit bias the loss crawled
    # down from ~225 and recall@10 stayed near chance (0.42 vs 0.30); now ~0.9.
    cfg = {**TINY, "loss": "gbce", "n_negatives": 256, "gbce_t": 0.75, "epochs": 10}
    model = SASRec(**cfg).fit(split.train)
    recall, chance = recall_at_k(model, split), random_recall_at_k(split)
    assert recall > chance + 0.4, (recall, chance)


def test_training_batches_are_left_truncated(split):
    model = SASRec(**{**TINY, "max_seq_len": 3})
    model.fit(split.train)
    hist = split.train.histories()
    gen = torch.Generator().manual_seed(0)
    batch = next(iter(model.epoch_batches(split.train, gen)))
    assert batch["inputs"].shape[1] == 3 and batch["targets"].shape[1] == 3
    # each row is the last 4 items of some user's sequence, shifted by one
    seqs = {
        tuple(hist.seq_items[hist.seq_indptr[u] : hist.seq_indptr[u + 1]][-4:])
        for u in range(1, hist.n_rows)
    }
    for x, y in zip(batch["inputs"].tolist(), batch["targets"].tolist()):
        assert tuple(x + y[-1:]) in seqs
        assert x[1:] == y[:-1]


def test_inference_truncates_long_histories_from_the_left(fitted):
    ext = fitted.item_map.external_ids
    long = ext[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]].tolist()  # 15 > max_seq_len 10
    a = fitted.recommend_for_sequence(long, k=5, exclude_seen=False)
    b = fitted.recommend_for_sequence(long[-10:], k=5, exclude_seen=False)
    np.testing.assert_array_equal(a.internal_item_ids, b.internal_item_ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)
    c = fitted.recommend_for_sequence(long[-9:], k=5, exclude_seen=False)
    assert not np.allclose(a.scores, c.scores)


def test_padding_never_recommended(fitted):
    users = fitted.user_map.external_ids
    recs = fitted.recommend(users, k=fitted.n_items, exclude_seen=False)
    assert (recs.internal_item_ids > 0).all()
    assert sorted(recs.internal_item_ids[0].tolist()) == list(range(1, fitted.n_items + 1))


def test_save_load_identity(split, tmp_path):
    model = SASRec(**{**TINY, "loss": "bce", "epochs": 3}).fit(split.train)
    loaded = genrec.load(model.save(tmp_path / "m"))
    users = model.user_map.external_ids
    a, b = model.recommend(users, k=10), loaded.recommend(users, k=10)
    np.testing.assert_array_equal(a.internal_item_ids, b.internal_item_ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)
    # weights saved before the sigmoid losses had a logit bias still load (bias 0)
    old_state = {k: v for k, v in model._state_dict().items() if k != "logit_bias"}
    loaded._load_state_dict(old_state)
    assert loaded.network_.logit_bias.item() == 0.0


def test_sampled_negatives_are_seeded(split):
    a = SASRec(**{**TINY, "loss": "bce", "epochs": 2}).fit(split.train)
    b = SASRec(**{**TINY, "loss": "bce", "epochs": 2}).fit(split.train)
    c = SASRec(**{**TINY, "loss": "bce", "epochs": 2, "seed": 1}).fit(split.train)
    wa, wb, wc = (m.network_.state_dict() for m in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_recommend_for_sequence_unknown_item(fitted):
    item = fitted.item_map.external_ids[0]
    recs = fitted.recommend_for_sequence([item], k=3)
    assert recs.item_ids.shape == (1, 3)
    with pytest.raises(UnknownIdError, match="no-such-item"):
        fitted.recommend_for_sequence([item, "no-such-item"], k=3)


def test_config_validation():
    with pytest.raises(ConfigError, match="loss"):
        SASRecConfig(loss="hinge")
    with pytest.raises(ConfigError, match="n_heads"):
        SASRecConfig(embedding_dim=10, n_heads=3)
    with pytest.raises(ConfigError, match="gbce_t"):
        SASRecConfig(gbce_t=2.0)


@pytest.mark.parametrize("loss,bucket_batches", [("ce", 0), ("ce", 4), ("sampled_softmax", 4)])
def test_trimmed_batches_keep_the_loss(loss, bucket_batches):
    # right-aligned positions and masked padding keys: trimming saves compute only (the
    # sampled negatives come from the batch's seed, so both calls draw the same ones)
    split = variable_length_split()
    cfg = {**TINY, "epochs": 1, "batch_size": 8, "loss": loss, "bucket_batches": bucket_batches}
    model = SASRec(**cfg, n_negatives=4).fit(split.train)
    check_trimming_keeps_the_loss(model, split, ("inputs", "targets"))


def test_trimmed_scoring_gives_the_same_scores(fitted):
    batch = fitted.train_histories_.batch(np.arange(1, 9))
    seq = torch.from_numpy(batch.padded_sequences(fitted.config.max_seq_len))  # untrimmed
    with torch.no_grad():
        full = fitted.network_.eval().score_last(seq)
    torch.testing.assert_close(fitted._score(batch), full)


def test_sasrec_block_is_the_reference_formula():
    # Kang & McAuley's block: q = LN1(x); x = q + MHA(q, k=v=x); f = LN2(x); f + FFN(f)
    torch.manual_seed(0)
    cfg = SASRecConfig(embedding_dim=8, n_blocks=1, n_heads=2, max_seq_len=5, dropout=0.0)
    block_cfg = {"sasrec_block": True, "ffn_activation": "relu"}
    net = SASRecNetwork(12, SASRecConfig(**{**cfg.to_dict(), **block_cfg})).eval()
    block = net.encoder.blocks[0]
    x = torch.randn(2, 5, 8)
    mask = attention_mask(torch.ones(2, 5, dtype=torch.bool), causal=True)
    q = block.ln1(x)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(block.attn.qkv.weight)
        mha.in_proj_bias.copy_(block.attn.qkv.bias)
        mha.out_proj.weight.copy_(block.attn.proj.weight)
        mha.out_proj.bias.copy_(block.attn.proj.bias)
        attn, _ = mha(q, x, x, attn_mask=~mask[0, 0], need_weights=False)
        h = q + attn
        f = block.ln2(h)
        want = f + block.ffn.fc2(torch.relu(block.ffn.fc1(f)))
        torch.testing.assert_close(block(x, mask), want)


def test_xavier_init_and_input_scale():
    torch.manual_seed(0)
    net = SASRecNetwork(2000, SASRecConfig(embedding_dim=64, init="xavier", scale_inputs=False))
    w = net.item_emb.weight[1:]
    assert w.std().item() == pytest.approx((2 / (2001 + 64)) ** 0.5, rel=0.05)  # fan in + out
    assert net.input_scale == 1.0 and torch.all(net.item_emb.weight[0] == 0)
    qkv = net.encoder.blocks[0].attn.qkv.weight  # (3d, d): Xavier too
    assert qkv.std().item() == pytest.approx((2 / (4 * 64)) ** 0.5, rel=0.05)
    scaled = SASRecNetwork(2000, SASRecConfig(embedding_dim=64, init="xavier")).eval()
    assert scaled.input_scale == 8.0  # sqrt(d): SASRec's reference code
    scaled.load_state_dict(net.state_dict())
    net.eval().input_scale = 8.0  # the same weights and scale: the same states
    seq = torch.tensor([[0, 3, 4]])
    with torch.no_grad():
        torch.testing.assert_close(net.encode(seq), scaled.encode(seq))
    normal = SASRecNetwork(2000, SASRecConfig(embedding_dim=64))
    assert normal.input_scale == 8.0
    assert normal.item_emb.weight[1:].std().item() == pytest.approx(1 / 8, rel=0.05)


def test_in_batch_negatives_are_a_logq_corrected_softmax_over_the_batch_targets():
    # the shared-negative path must equal the textbook sampled softmax written out by hand:
    # logits s(h_n, e_j) - log(N p_j) over the positive and every other batch target (the
    # position's own target masked), plus K uniform columns at s - log(K / |I|)
    torch.manual_seed(0)
    n_items, k = 30, 4
    cfg = SASRecConfig(embedding_dim=8, max_seq_len=5, loss="sampled_softmax", negatives="mixed")
    net = SASRecNetwork(n_items, cfg).eval()
    seq = torch.randint(1, n_items + 1, (3, 5))
    tgt = torch.randint(1, n_items + 1, (3, 5))
    tgt[0, :2] = 0  # padding positions carry no loss
    y = tgt[tgt > 0]
    shared = torch.unique(y)
    uni = torch.randint(1, n_items + 1, (len(y), k))
    log_q = torch.log(torch.rand(n_items + 1) + 0.01)
    got = net(seq, tgt, uni, shared_negatives=shared, log_q=log_q)
    h = net(seq)[tgt > 0]
    E = net.item_emb.weight
    losses = []
    for n in range(len(y)):
        cols = [(E[y[n]] @ h[n]) - log_q[y[n]]]
        cols += [(E[j] @ h[n]) - log_q[j] for j in shared if j != y[n]]
        cols += [(E[j] @ h[n]) - np.log(k / n_items) for j in uni[n] if j != y[n]]
        logits = torch.stack(cols)
        losses.append(torch.logsumexp(logits, 0) - logits[0])
    torch.testing.assert_close(got, torch.stack(losses).mean())
    # without log_q the same softmax, uncorrected; without uniform columns, in-batch only
    no_q = net(seq, tgt, None, shared_negatives=shared)
    manual = []
    for n in range(len(y)):
        cols = [E[y[n]] @ h[n]] + [E[j] @ h[n] for j in shared if j != y[n]]
        logits = torch.stack(cols)
        manual.append(torch.logsumexp(logits, 0) - logits[0])
    torch.testing.assert_close(no_q, torch.stack(manual).mean())


def test_in_batch_logq_uses_the_training_target_frequencies(split):
    model = SASRec(**{**TINY, "epochs": 1, "loss": "sampled_softmax", "negatives": "in_batch"})
    model.fit(split.train)
    p = model._target_log_p.exp()
    assert p[0] == 1.0 and p[1:].sum().item() == pytest.approx(1.0, abs=1e-5)
    popular = int(np.argmax(p[1:].numpy())) + 1
    assert p[popular] > 1.0 / model.n_items  # a skewed distribution, not uniform


def test_negatives_config_is_checked():
    with pytest.raises(ConfigError, match="negatives must be"):
        SASRecConfig(loss="sampled_softmax", negatives="popular")
    with pytest.raises(ConfigError, match="needs loss='sampled_softmax'"):
        SASRecConfig(loss="ce", negatives="in_batch")
