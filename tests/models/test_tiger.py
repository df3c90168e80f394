"""TIGER specifics beyond the shared contract: KV cache, exact scoring vs beam search,
codebook checks, cold-start items, artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import genrec
from genrec.data.sequences import trim_left_padding
from genrec.errors import ConfigError, DataValidationError
from genrec.models.tiger import TIGER, TIGERConfig, TIGERNetwork, random_codebook
from genrec.testing import random_recall_at_k, recall_at_k
from genrec.tokenizers import ItemCodebook

TINY = yaml.safe_load((Path(__file__).parent / "tiny" / "tiger.yaml").read_text())["config"]


@pytest.fixture(scope="module")
def fitted(split):
    return TIGER(**TINY).fit(split.train)


def test_incremental_kv_cache_matches_full_recomputation() -> None:
    torch.manual_seed(0)
    cfg = TIGERConfig(
        embedding_dim=24,
        n_heads=3,
        head_dim=8,
        ffn_dim=32,
        n_encoder_layers=2,
        n_decoder_layers=2,
        max_seq_len=5,
        n_user_buckets=7,
        dropout=0.0,
    )
    sizes = [5, 4, 3, 2]
    net = TIGERNetwork(sizes, cfg).eval()
    B, G = 3, 4  # 3 users, 4 decoder rows each (beams)
    tokens = torch.randint(0, 1 + sum(sizes), (B, 5 * 4))
    tokens[0, :8] = 0  # left padding
    enc, real = net.encode(torch.tensor([0, 3, 6]), tokens)
    mem = net.memory(enc, real)
    codes = torch.stack([torch.randint(0, s, (B * G,)) for s in sizes], 1)  # (B*G, L)
    with torch.no_grad():
        h = net.decode(codes, mem)  # (B*G, L, D) full causal recomputation
        cache = None
        total = torch.zeros(B * G)
        for t in range(len(sizes)):
            lp, cache = net.step(codes[:, :t], cache, mem)  # (B*G, V_t)
            full = torch.log_softmax(net.level_logits(h[:, t], t), -1)
            torch.testing.assert_close(lp, full, rtol=1e-5, atol=1e-5)
            total += lp.gather(1, codes[:, t : t + 1]).squeeze(1)
        torch.testing.assert_close(total, net.log_likelihood(codes, mem), rtol=1e-5, atol=1e-5)
        # a row grouped with its user's memory equals the same row decoded alone
        one = [tuple(x[1:2] for x in m[:2]) + (m[2][1:2],) for m in mem]
        lp_alone = net.log_likelihood(codes[G : G + 1], one)
        torch.testing.assert_close(lp_alone, net.log_likelihood(codes, mem)[G : G + 1])


def test_trains_and_beats_random(fitted, split) -> None:
    recall, chance = recall_at_k(fitted, split), random_recall_at_k(split)
    assert recall > chance + 0.3, (recall, chance)


def test_beam_search_equals_exact_scoring_when_exhaustive(fitted, split) -> None:
    users = np.arange(1, 13)
    batch = fitted.train_histories_.batch(users)
    exact = fitted.score_all_items(batch)  # (B, n_items + 1)
    assert exact.shape == (12, fitted.n_items + 1)
    assert torch.isneginf(exact[:, 0]).all()
    _, scores, items = fitted.decode(batch, num_beams=fitted.n_items)
    assert (items > 0).all()  # every decoded code maps to a real item
    order = exact[:, 1:].argsort(dim=1, descending=True) + 1
    assert torch.equal(items[:, :10], order[:, :10])
    torch.testing.assert_close(scores, exact.gather(1, items), rtol=1e-4, atol=1e-4)
    # with few beams every tuple is still a real item
    _, _, items5 = fitted.decode(batch, num_beams=5)
    assert (items5 > 0).all() and items5.shape == (12, 5)
    rate = fitted.invalid_code_rate(fitted.user_map.external_ids[:10])
    assert 0.0 <= rate <= 1.0


def test_num_beams_smaller_than_k(fitted) -> None:
    small = TIGER(**{**TINY, "num_beams": 10})
    with pytest.raises(ConfigError, match="num_beams"):
        TIGER(**{**TINY, "num_beams": 5})  # below val_metric's k
    small.__dict__.update({k: v for k, v in fitted.__dict__.items() if k != "config"})
    user = fitted.user_map.external_ids[:2]
    assert small.recommend(user, k=10).item_ids.shape == (2, 10)
    with pytest.raises(ConfigError, match="num_beams=10"):
        small.recommend(user, k=11)


def test_codebook_checks(split, tmp_path: Path) -> None:
    ids = split.train.item_map.to_list()
    cb = random_codebook(len(ids), 3, 8, 0, ids)
    cb.save(tmp_path / "cb3")
    with pytest.raises(ConfigError, match="3 levels but TIGERConfig.n_levels is 2"):
        TIGER(**{**TINY, "codebook_path": str(tmp_path / "cb3")}).fit(split.train)
    with pytest.raises(ConfigError, match="exceed"):
        TIGER(
            **{**TINY, "n_levels": 3, "codebook_size": 4, "codebook_path": str(tmp_path / "cb3")}
        ).fit(split.train)
    same = random_codebook(len(ids), 2, 8, 0, ids)
    codes = same.codes.copy()
    codes[2] = codes[1]  # two items with one tuple
    ItemCodebook(codes, same.codebook_sizes, ids).save(tmp_path / "repeats")
    with pytest.raises(DataValidationError, match="unusable codebook: code tuples are not unique"):
        TIGER(**{**TINY, "codebook_path": str(tmp_path / "repeats")}).fit(split.train)
    other = random_codebook(len(ids), 2, 8, 0, [f"x{i}" for i in range(len(ids))])
    other.save(tmp_path / "other")
    with pytest.raises(DataValidationError, match="another catalogue"):
        TIGER(**{**TINY, "codebook_path": str(tmp_path / "other")}).fit(split.train)
    with pytest.raises(ConfigError, match="rqvae-not-here"):
        TIGER(**{**TINY, "codebook": "rqvae-not-here"})
    # a saved codebook is used as is, and ends up in the artifact
    good = random_codebook(len(ids), 2, 8, 5, ids)
    good.save(tmp_path / "good")
    model = TIGER(**{**TINY, "epochs": 1, "codebook_path": str(tmp_path / "good")})
    model.fit(split.train)
    np.testing.assert_array_equal(model.codes_, good.codes)


def test_save_load_keeps_codes(fitted, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    path = fitted.save(tmp_path / "art")
    arrays = load_file(str(path / "weights.safetensors"))
    np.testing.assert_array_equal(arrays["model.codebook.codes"], fitted.codes_)
    loaded = genrec.load(path)
    np.testing.assert_array_equal(loaded.codes_, fitted.codes_)
    users = fitted.user_map.external_ids
    a, b = fitted.recommend(users, k=10), loaded.recommend(users, k=10)
    np.testing.assert_array_equal(a.internal_item_ids, b.internal_item_ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)


def test_add_items_recodes_into_the_trie(split) -> None:
    model = TIGER(**{**TINY, "epochs": 1}).fit(split.train)
    used = {tuple(r) for r in model.codes_[1:].tolist()}
    free = next(
        (a, b) for a in range(8) for b in range(model.codebook_sizes_[1]) if (a, b) not in used
    )
    item = model.item_map.external_ids[3]
    model.add_items([item], np.array([free]))
    assert model.trie_.lookup(torch.tensor([free])).tolist() == [4]
    _, _, items = model.decode(model.train_histories_.batch(np.arange(1, 4)), num_beams=40)
    assert (items == 4).any(1).all()  # the re-coded item is decodable for everyone
    taken = model.codes_[5]
    with pytest.raises(DataValidationError, match="not unique"):
        model.add_items([model.item_map.external_ids[0]], taken[None])
    # semantic levels only (a tokenizer's encode): the collision code is picked
    sem, size = model.codes_[1:, 0], model.codebook_sizes_[-1]
    counts = np.bincount(sem, minlength=8)
    prefix = int(np.flatnonzero((counts > 0) & (counts < size))[0])
    mover = 1 + int(np.flatnonzero(sem != prefix)[0])  # an item of another group
    model.add_items([model.item_map.external_ids[mover - 1]], np.array([[prefix]]))
    new = model.codes_[mover]
    assert new[0] == prefix
    others = model.codes_[1:][(sem == prefix) & (np.arange(1, 41) != mover)]
    assert new[1] not in others[:, 1].tolist()
    assert model.trie_.lookup(torch.from_numpy(new[None])).tolist() == [mover]
    full = np.flatnonzero(np.bincount(model.codes_[1:, 0], minlength=8) == size)
    if len(full):
        outsider = 1 + int(np.flatnonzero(model.codes_[1:, 0] != full[0])[0])
        with pytest.raises(DataValidationError, match="collision codes"):
            model.add_items([model.item_map.external_ids[outsider - 1]], np.array([[full[0]]]))
    with pytest.raises(genrec.errors.UnknownIdError):
        model.add_items(["ghost"], np.array([free]))


def test_fit_time_tokenizer_from_item_vectors(split, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(split.train.n_items, 8)).astype(np.float32)
    np.save(tmp_path / "v.npy", vectors)
    model = TIGER(
        **{**TINY, "epochs": 1, "codebook": "rkmeans", "item_vectors_path": str(tmp_path / "v.npy")}
    ).fit(split.train)
    assert model.codes_.shape == (split.train.n_items + 1, 2)
    assert len(model.codebook_sizes_) == 2 and model.codebook_sizes_[0] == 8
    recs = model.recommend(model.user_map.external_ids[:3], k=10)
    assert (recs.internal_item_ids > 0).all()


def test_missing_text_raise_stops_fit_and_bad_values_are_config_errors(split) -> None:
    items = split.train.items.iloc[3:]  # the first 3 items lose their metadata
    bare = genrec.Dataset(split.train.interactions, items=items)
    with pytest.raises(DataValidationError, match=r"3 of 40 items have no title.*1001"):
        TIGER(**{**TINY, "codebook": "rkmeans", "missing_text": "raise"}).fit(bare)
    with pytest.raises(ConfigError, match="missing_text must be 'fallback' or 'raise'"):
        TIGER(**{**TINY, "missing_text": "skip"})


def test_codebook_fitted_ahead_equals_fit_time_codebook(split, tmp_path: Path) -> None:
    """fit_codebook + codebook_path (the GPU-run workflow) gives exactly the codes TIGER
    builds itself from the same vectors and seed."""
    from genrec.text import load_item_vectors
    from genrec.tokenizers import fit_codebook

    rng = np.random.default_rng(1)
    np.save(tmp_path / "v.npy", rng.normal(size=(split.train.n_items, 8)).astype(np.float32))
    cfg = {**TINY, "epochs": 1, "codebook": "rkmeans", "item_vectors_path": str(tmp_path / "v.npy")}
    built = TIGER(**cfg).fit(split.train)
    vectors = load_item_vectors(tmp_path / "v.npy", split.train)
    ids = split.train.item_map.to_list()
    cb = fit_codebook(
        "rkmeans", vectors, ids, n_levels=TINY["n_levels"], codebook_size=TINY["codebook_size"],
        seed=TINY.get("seed", 0), balanced=True,
    )  # fmt: skip
    np.testing.assert_array_equal(cb.codes, built.codes_)
    cb.save(tmp_path / "cb")
    ahead = TIGER(**{**TINY, "epochs": 1, "codebook_path": str(tmp_path / "cb")}).fit(split.train)
    np.testing.assert_array_equal(ahead.codes_, built.codes_)


def test_fit_codebook_random_is_tigers_control_and_health_of_nothing(split) -> None:
    from genrec.tokenizers import codebook_health, fit_codebook

    ids = split.train.item_map.to_list()
    vectors = np.zeros((len(ids) + 1, 4), np.float32)
    cb = fit_codebook("random", vectors, ids, n_levels=3, codebook_size=8, seed=4)
    np.testing.assert_array_equal(cb.codes, random_codebook(len(ids), 3, 8, 4, ids).codes)
    with pytest.raises(ConfigError, match="no options"):
        fit_codebook("random", vectors, ids, n_levels=3, codebook_size=8, epochs=3)
    cf = np.ones((len(ids) + 1, 2), np.float32)
    with pytest.raises(ConfigError, match=r"no options, got \['collaborative'\]"):
        fit_codebook("random", vectors, ids, n_levels=3, codebook_size=8, collaborative=cf)
    with pytest.raises(ConfigError, match="the rkmeans tokenizer does not use them"):
        fit_codebook("rkmeans", vectors, ids, n_levels=3, codebook_size=8, collaborative=cf)
    empty = np.full((5, 3), -1)
    assert codebook_health(empty, [8, 8, 2]) == {"n_coded_items": 0}
    health = codebook_health(cb.codes, cb.codebook_sizes)
    assert health["n_coded_items"] == len(ids) and health["collision_rate_before_dedup"] >= 0


def test_fit_codebook_passes_collaborative_vectors_to_letter_rqvae(split) -> None:
    from genrec.tokenizers import fit_codebook

    ids = split.train.item_map.to_list()
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(ids) + 1, 8)).astype(np.float32)
    cf = rng.normal(size=(len(ids) + 1, 4)).astype(np.float32)
    opts = {"n_levels": 3, "codebook_size": 4, "epochs": 2, "hidden_dims": (16,), "latent_dim": 4}
    cb = fit_codebook("rqvae", vectors, ids, collaborative=cf, cf_weight=1.0, **opts)
    assert cb.is_unique() and cb.n_levels == 3
    with pytest.raises(ConfigError, match="needs fit\\(..., collaborative=vectors\\)"):
        fit_codebook("rqvae", vectors, ids, cf_weight=1.0, **opts)  # LETTER without the vectors


def test_trimmed_left_padding_gives_the_same_memory() -> None:
    torch.manual_seed(1)
    cfg = TIGERConfig(
        embedding_dim=16, n_heads=2, head_dim=8, ffn_dim=32, n_encoder_layers=2, n_decoder_layers=1,
        max_seq_len=6, n_user_buckets=5, dropout=0.0,
    )  # fmt: skip
    sizes = [4, 3, 2]
    net = TIGERNetwork(sizes, cfg).eval()
    tokens = torch.randint(1, 1 + sum(sizes), (3, 6 * 3))
    tokens[:, :6] = 0  # two padding items in every row
    tokens[0, :9] = 0
    users = torch.tensor([0, 2, 4])
    with torch.no_grad():
        full, real_full = net.encode(users, tokens)
        trim, real_trim = net.encode(users, tokens[:, 6:])
        torch.testing.assert_close(trim[:, 0], full[:, 0], rtol=1e-5, atol=1e-5)  # user token
        keep = real_trim[:, 1:]
        torch.testing.assert_close(trim[:, 1:][keep], full[:, 7:][keep], rtol=1e-5, atol=1e-5)
        codes = torch.stack([torch.randint(0, s, (3,)) for s in sizes], 1)
        torch.testing.assert_close(
            net.log_likelihood(codes, net.memory(trim, real_trim)),
            net.log_likelihood(codes, net.memory(full, real_full)),
            rtol=1e-5, atol=1e-5,
        )  # fmt: skip
        with pytest.raises(ValueError, match="19 code tokens per row, more than"):
            net.encode(users, torch.ones(3, 19, dtype=torch.long))


def test_decoding_a_trimmed_batch_equals_the_padded_batch(fitted, monkeypatch) -> None:
    import genrec.models.tiger as tiger_module

    lens = np.diff(fitted.train_histories_.seq_indptr)
    users = np.argsort(lens[1:], kind="stable")[:12] + 1  # the shortest histories
    batch = fitted.train_histories_.batch(users)
    padded = torch.from_numpy(batch.padded_sequences(fitted.config.max_seq_len))
    assert trim_left_padding(padded).shape[1] < padded.shape[1]  # really trimmed
    exact = fitted.score_all_items(batch)
    _, scores, items = fitted.decode(batch)
    monkeypatch.setattr(tiger_module, "trim_left_padding", lambda x: x)  # padded path
    torch.testing.assert_close(fitted.score_all_items(batch), exact, rtol=1e-5, atol=1e-5)
    _, scores_p, items_p = fitted.decode(batch)
    assert torch.equal(items_p, items)
    torch.testing.assert_close(scores_p, scores, rtol=1e-5, atol=1e-5)


def test_length_bucketed_training_batches(split) -> None:
    from genrec.data.sequences import epoch_generator

    def batches(bucket_batches: int) -> list[dict[str, torch.Tensor]]:
        model = TIGER(**{**TINY, "bucket_batches": bucket_batches, "batch_size": 16, "epochs": 1})
        model.fit(split.train)  # only to set up the codes; its data order is what we check
        return list(model.epoch_batches(split.train, epoch_generator(0, 0)))

    def pairs(bs: list[dict[str, torch.Tensor]]) -> list[tuple[int, ...]]:
        rows = []
        for b in bs:
            items = b["items"]
            pad = torch.zeros(len(items), 8 - items.shape[1], dtype=items.dtype)
            rows += torch.cat([pad, items, b["targets"][:, None]], 1).tolist()
        return sorted(map(tuple, rows))

    plain, bucketed = batches(0), batches(4)
    assert pairs(plain) == pairs(bucketed)  # the same (context, target) examples
    assert sum(b["items"].numel() for b in bucketed) < sum(b["items"].numel() for b in plain)
    for b in bucketed:  # trimmed: no column is padding in every row
        assert (b["items"][:, 0] > 0).any()
    with pytest.raises(ConfigError, match="bucket_batches"):
        TIGER(bucket_batches=-1)


def test_rank_batches_users_by_history_length(fitted, split, monkeypatch) -> None:
    from genrec.core.recommender import RankRequest, Recommender
    from genrec.data.dataset import UserHistories

    rng = np.random.default_rng(0)
    items = split.train.item_map.to_external(np.arange(1, split.train.n_items + 1))
    histories = [list(rng.choice(items, size=n)) for n in rng.integers(1, 12, size=60)]
    sorted_recs = fitted.recommend_for_history(histories, k=5)
    seqs = [fitted.item_map.to_internal(h, what="item") for h in histories]
    request = RankRequest(
        histories=UserHistories.from_sequences(seqs, fitted.n_items),
        rows=np.arange(len(seqs)),
        k=5,
        user_ids=np.zeros(len(seqs), np.int64),
        batch_size=16,
    )
    widths: list[int] = []
    real_batch = TIGER._rank_batch

    def spy(self, batch, *args):
        widths.append(int(np.diff(batch.seq_indptr).clip(max=self.config.max_seq_len).max()))
        return real_batch(self, batch, *args)

    monkeypatch.setattr(TIGER, "_rank_batch", spy)
    by_length = fitted.rank(request)
    assert widths == sorted(widths) and widths[0] < widths[-1]  # short histories first
    sorted_widths = widths.copy()
    widths.clear()
    monkeypatch.setattr(TIGER, "_row_order", Recommender._row_order)  # the given order
    plain = fitted.rank(request)
    assert sum(widths) > sum(sorted_widths)  # user order pads more
    np.testing.assert_array_equal(by_length.items, plain.items)
    np.testing.assert_array_equal(sorted_recs.internal_item_ids, plain.items)
    np.testing.assert_allclose(sorted_recs.scores, plain.scores, rtol=1e-5, atol=1e-5)


def test_seen_items_are_excluded_without_a_catalogue_table(fitted, split) -> None:
    """rank() hands TIGER the seen items as a deny-list (no (B, n_items + 1) table): the
    beams equal those of the dense allow-list, and with candidates the dense path runs."""
    from genrec.core.recommender import AllowedItems

    users = np.arange(1, 17)
    batch = fitted.train_histories_.batch(users)
    allowed = AllowedItems.build(batch, fitted.n_items, True, None)
    assert allowed.catalogue_free and allowed._dense is None
    free = fitted.decode(batch, item_mask=allowed)
    assert allowed._dense is None  # the search never built the table
    dense = fitted.decode(batch, item_mask=allowed.dense())
    for a, b in zip(free, dense):
        assert torch.equal(a, b)
    seen = batch.matrix.toarray() > 0
    alive = torch.isfinite(free[1]).numpy()
    assert not seen[np.arange(len(users))[:, None], free[2].numpy()][alive].any()
    cand = np.zeros(fitted.n_items + 1, dtype=bool)
    cand[1::2] = True
    with_cand = AllowedItems.build(batch, fitted.n_items, True, cand)
    assert not with_cand.catalogue_free
    _, _, items = fitted.decode(batch, item_mask=with_cand)
    assert (items[items > 0] % 2 == 1).all()
