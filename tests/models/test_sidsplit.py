"""SID-split specifics beyond the shared contract: a causal timeline (one pass trains every
position), its decoder step against teacher forcing, beam search against exact scoring,
artifacts, config checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import genrec
from genrec.errors import ConfigError
from genrec.models.sidsplit import SIDSplit, SIDSplitConfig, SIDSplitNetwork
from genrec.testing import random_recall_at_k, recall_at_k
from genrec.update import update_model

TINY = yaml.safe_load((Path(__file__).parent / "tiny" / "sidsplit.yaml").read_text())["config"]
SIZES = [5, 4, 3]


@pytest.fixture(scope="module")
def fitted(split):
    return SIDSplit(**TINY).fit(split.train)


def _net(**overrides) -> SIDSplitNetwork:
    torch.manual_seed(0)
    cfg = SIDSplitConfig(
        embedding_dim=16, n_heads=2, head_dim=8, ffn_dim=32, n_encoder_layers=2,
        n_decoder_layers=2, max_seq_len=6, dropout=0.0, **overrides,
    )  # fmt: skip
    return SIDSplitNetwork(SIZES, cfg).eval()


def _tokens(net: SIDSplitNetwork, codes: torch.Tensor) -> torch.Tensor:
    return net.code_tokens(codes)


def _random_codes(B: int, T: int) -> torch.Tensor:
    return torch.stack([torch.randint(0, s, (B, T)) for s in SIZES], -1)  # (B, T, L)


def test_timeline_is_causal_and_right_aligned() -> None:
    """The state after position t ignores later items, and left padding (trimmed or not)
    changes no state: positions are counted from the right."""
    net = _net()
    codes = _random_codes(2, 6)
    codes[0, :2] = -1  # left padding
    with torch.no_grad():
        h = net.encode(_tokens(net, codes))  # (2, 6, 16)
        changed = codes.clone()
        changed[:, 4:] = _random_codes(2, 2)
        h2 = net.encode(_tokens(net, changed))
        torch.testing.assert_close(h[:, :4], h2[:, :4])
        assert not torch.allclose(h[:, 4:], h2[:, 4:])
        trimmed = net.encode(_tokens(net, codes[:1, 2:]))  # row 0 without its padding
        torch.testing.assert_close(trimmed[0], h[0, 2:], rtol=1e-5, atol=1e-5)


def test_one_pass_loss_equals_the_mean_over_positions() -> None:
    """forward trains every position of a sequence in one timeline pass: its loss equals the
    mean of the per-level cross-entropies of each position decoded on its own."""
    net = _net()
    codes = _random_codes(2, 5)
    codes[1, :2] = -1
    inputs, targets = codes[:, :-1], codes[:, 1:].clone()
    targets[1, :2] = -1  # the padded row's targets that follow padding: no loss
    with torch.no_grad():
        loss = net(_tokens(net, inputs), targets)
        h = net.encode(_tokens(net, inputs))
        parts = []
        for b in range(2):
            for t in range(4):
                if targets[b, t, 0] < 0:
                    continue
                y = targets[b, t][None]  # (1, L)
                lp = net.log_likelihood(y, net.state_memory(h[b, t][None]))
                parts.append(-lp / len(SIZES))
        torch.testing.assert_close(loss, torch.cat(parts).mean(), rtol=1e-5, atol=1e-5)


def test_incremental_step_matches_teacher_forcing() -> None:
    net = _net()
    states = torch.randn(4, 16)
    mem = net.state_memory(states)
    codes = _random_codes(4, 1)[:, 0]  # (4, L)
    with torch.no_grad():
        h = net.decode(codes, mem)
        cache = None
        for t in range(len(SIZES)):
            lp, cache = net.step(codes[:, :t], cache, mem)
            full = torch.log_softmax(net.level_logits(h[:, t], t), -1)
            torch.testing.assert_close(lp, full, rtol=1e-5, atol=1e-5)


def test_trains_and_beats_random(fitted, split) -> None:
    recall, chance = recall_at_k(fitted, split), random_recall_at_k(split)
    assert recall > chance + 0.3, (recall, chance)


def test_beam_search_equals_exact_scoring_when_exhaustive(fitted) -> None:
    batch = fitted.train_histories_.batch(np.arange(1, 13))
    exact = fitted.score_all_items(batch)  # (B, n_items + 1)
    _, scores, items = fitted.decode(batch, num_beams=fitted.n_items)
    assert (items > 0).all()
    order = exact[:, 1:].argsort(dim=1, descending=True) + 1
    assert torch.equal(items[:, :10], order[:, :10])
    torch.testing.assert_close(scores, exact.gather(1, items), rtol=1e-4, atol=1e-4)


def test_recommendations_survive_save_load(fitted, tmp_path) -> None:
    """(Seen-item exclusion and the rest of the public API: the shared contract.)"""
    users = fitted.user_map.external_ids
    recs = fitted.recommend(users, k=10)
    loaded = genrec.load(fitted.save(tmp_path / "art"))
    assert isinstance(loaded, SIDSplit)
    again = loaded.recommend(users, k=10)
    np.testing.assert_array_equal(recs.internal_item_ids, again.internal_item_ids)
    np.testing.assert_allclose(recs.scores, again.scores, rtol=1e-5, atol=1e-6)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="n_user_buckets must be 0"):
        SIDSplitConfig(n_user_buckets=8)
    with pytest.raises(ConfigError, match="divisible by n_heads"):
        SIDSplitConfig(embedding_dim=30, n_heads=4)


def test_update_skips_repeated_interactions_and_refuses_when_nothing_is_new(fitted, split):
    """genrec update with data the model already has: exact repeats are skipped with a
    warning, and only repeats is a clear error (not an IndexError, as before 2026-12-08)."""
    from genrec.errors import DataValidationError, DuplicateInteractionWarning

    with pytest.raises(DataValidationError, match="no new interactions: all"):
        update_model(fitted, split.train)
    frame = split.train.interactions[["user_id", "item_id", "timestamp"]]
    extra = frame.iloc[:1].assign(timestamp=frame["timestamp"].max() + 1.0)
    with pytest.warns(DuplicateInteractionWarning, match="repeat an interaction"):
        upd, rep = update_model(fitted, pd.concat([frame.iloc[:5], extra]), epochs=1)
    assert rep.n_new_interactions == 1 and rep.mode == "warm-start"
