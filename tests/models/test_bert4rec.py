"""BERT4Rec: masking, bidirectionality, inference with an appended [MASK], persistence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sequence_checks import check_trimming_keeps_the_loss, variable_length_split

import genrec
from genrec.errors import ConfigError, UnknownIdError
from genrec.models.bert4rec import BERT4Rec, BERT4RecConfig, BERT4RecNetwork
from genrec.testing import random_recall_at_k, recall_at_k

TINY = dict(
    embedding_dim=16, n_blocks=1, n_heads=1, max_seq_len=10, lr=0.01, epochs=30, patience=0,
    progress=False, device="cpu",
)  # fmt: skip


@pytest.fixture(scope="module")
def fitted(split):
    return BERT4Rec(**TINY).fit(split.train)


def _net(n_items: int = 20) -> BERT4RecNetwork:
    torch.manual_seed(0)
    cfg = BERT4RecConfig(embedding_dim=16, n_blocks=2, n_heads=2, max_seq_len=6)
    return BERT4RecNetwork(n_items, cfg).eval()


def test_trains_and_beats_random(fitted, split):
    hist = fitted.training_history_
    assert np.mean([h["loss"] for h in hist[-5:]]) < np.mean([h["loss"] for h in hist[:5]])
    recall, chance = recall_at_k(fitted, split), random_recall_at_k(split)
    assert recall > chance + 0.3, (recall, chance)


def test_bidirectional_later_items_change_earlier_positions():
    net = _net()
    seq = torch.tensor([[0, 3, 5, 7, 9, 21]])  # 21 = [MASK]
    other = seq.clone()
    other[0, 4] = 2
    with torch.no_grad():
        a, b = net(seq), net(other)  # (1, 6, D)
    assert not torch.allclose(a[:, 1:4], b[:, 1:4])
    # but padding is invisible: fewer pads give the same outputs at real positions
    with torch.no_grad():
        c = net(torch.tensor([[0, 0, 3, 5, 7, 21]]))[:, 2:]
        d = net(torch.tensor([[0, 3, 5, 7, 21]]))[:, 1:]
    torch.testing.assert_close(c, d)


def test_loss_is_full_softmax_over_masked_positions():
    net = _net()
    seq = torch.tensor([[0, 3, 21, 7, 21], [1, 21, 3, 4, 5]])
    labels = torch.tensor([[0, 0, 5, 0, 9], [0, 2, 0, 0, 0]])
    with torch.no_grad():
        h = net.head(net(seq))  # (B, L, D)
        logits = h @ net.item_emb.weight[1:21].T + net.out_bias  # (B, L, 20): real items only
        ref = F.cross_entropy(logits[labels > 0], labels[labels > 0] - 1)
        torch.testing.assert_close(net(seq, labels), ref)


def test_masked_batches(split):
    model = BERT4Rec(**{**TINY, "epochs": 1}, mask_prob=0.5, last_item_mask_prob=0.3)
    model.fit(split.train)
    mask_id = model.n_items + 1
    gen = torch.Generator().manual_seed(0)
    n_last_only = 0
    for batch in model.epoch_batches(split.train, gen):
        x, y = batch["inputs"], batch["labels"]
        masked = x == mask_id
        assert torch.equal(masked, y > 0)  # labels exactly at [MASK] positions
        assert masked.any(1).all()  # at least one per sequence
        assert not (masked & (x == 0)).any()
        assert (y[masked] >= 1).all() and (y[masked] <= model.n_items).all()
        assert ((x > 0) | (x == 0)).all() and x.max() <= mask_id
        n_last_only += int((masked.sum(1) == 1).logical_and(masked[:, -1]).sum())
    assert n_last_only > 0
    only_last = BERT4Rec(**{**TINY, "epochs": 1}, last_item_mask_prob=1.0)
    only_last.fit(split.train)
    for batch in only_last.epoch_batches(split.train, torch.Generator().manual_seed(0)):
        masked = batch["inputs"] == mask_id
        assert masked[:, -1].all() and not masked[:, :-1].any()


def test_inference_appends_mask_and_truncates_left(fitted):
    ext = fitted.item_map.external_ids
    long = ext[list(range(15))].tolist()  # 15 items > max_seq_len - 1 = 9
    scores = fitted.recommend_for_sequence(long, k=5, exclude_seen=False).scores
    same = fitted.recommend_for_sequence(long[-9:], k=5, exclude_seen=False).scores
    np.testing.assert_allclose(scores, same, rtol=1e-5)
    shorter = fitted.recommend_for_sequence(long[-8:], k=5, exclude_seen=False).scores
    assert not np.allclose(scores, shorter)
    # what the network sees: the last 9 items then [MASK]
    internal = fitted.item_map.to_internal(long[-9:])
    seq = torch.tensor([[*internal.tolist(), fitted.n_items + 1]])
    with torch.no_grad():
        fitted.network_.eval()
        direct = fitted.network_.score_last(seq)[0]
    top = torch.topk(direct[1:], 5).values.numpy()
    np.testing.assert_allclose(scores[0], top, rtol=1e-5)


def test_padding_and_mask_token_never_recommended(fitted):
    users = fitted.user_map.external_ids
    recs = fitted.recommend(users, k=fitted.n_items, exclude_seen=False)
    assert (recs.internal_item_ids > 0).all()
    assert (recs.internal_item_ids <= fitted.n_items).all()
    batch = fitted.train_histories_.batch(np.array([1, 2]))
    raw = fitted._score(batch)
    assert raw.shape == (2, fitted.n_items + 1) and torch.isneginf(raw[:, 0]).all()


def test_save_load_identity(fitted, tmp_path):
    loaded = genrec.load(fitted.save(tmp_path / "m"))
    users = fitted.user_map.external_ids
    a, b = fitted.recommend(users, k=10), loaded.recommend(users, k=10)
    np.testing.assert_array_equal(a.internal_item_ids, b.internal_item_ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)


def test_recommend_for_sequence_unknown_item(fitted):
    item = fitted.item_map.external_ids[0]
    with pytest.raises(UnknownIdError, match="no-such-item"):
        fitted.recommend_for_sequence([item, "no-such-item"], k=3)


def test_defaults_train_long_and_validate():
    cfg = BERT4RecConfig()
    assert cfg.epochs >= 200 and cfg.mask_prob == 0.2
    with pytest.raises(ConfigError, match="mask_prob"):
        BERT4RecConfig(mask_prob=0.0)
    with pytest.raises(ConfigError, match="max_seq_len"):
        BERT4RecConfig(max_seq_len=1)


@pytest.mark.parametrize("bucket_batches", [0, 4])
def test_trimmed_batches_keep_the_loss(bucket_batches):
    # right-aligned positions and masked padding keys: trimming saves compute only
    split = variable_length_split()
    cfg = {**TINY, "epochs": 1, "batch_size": 8, "bucket_batches": bucket_batches}
    model = BERT4Rec(**cfg).fit(split.train)
    check_trimming_keeps_the_loss(model, split, ("inputs", "labels"))


def test_trimmed_scoring_gives_the_same_scores(fitted):
    batch = fitted.train_histories_.batch(np.arange(1, 9))
    hist = torch.from_numpy(batch.padded_sequences(fitted.config.max_seq_len - 1))
    seq = torch.cat([hist, torch.full((8, 1), fitted.n_items + 1)], dim=1)  # untrimmed
    with torch.no_grad():
        full = fitted.network_.eval().score_last(seq)
    torch.testing.assert_close(fitted._score(batch), full)
