"""Continuous training (genrec.update, genrec update)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import genrec
from genrec.cli import main
from genrec.testing import make_synthetic_dataset
from genrec.update import (
    UpdateError,
    grow_state,
    grow_tensor,
    history_frame,
    merged_dataset,
    update_model,
)

NEW_USER, NEW_ITEM = 9999, 7777


@pytest.fixture(scope="module")
def parts():
    ds = make_synthetic_dataset(n_users=60, n_items=40, seed=0)
    df = ds.interactions
    cut = df["timestamp"].quantile(0.8)
    old = ds.subset(df["timestamp"].to_numpy() <= cut)
    new = df.loc[df["timestamp"] > cut, ["user_id", "item_id", "timestamp"]]
    t = float(df["timestamp"].max())
    extra = pd.DataFrame(
        {
            "user_id": [NEW_USER] * 3,
            "item_id": [1001, 1002, NEW_ITEM],
            "timestamp": [t + 1, t + 2, t + 3],
        }
    )
    return old, pd.concat([new, extra], ignore_index=True)


def test_grow_tensor_keeps_old_rows_and_moves_trailing_tokens():
    old = torch.arange(12, dtype=torch.float32).reshape(4, 3)  # pad + 2 items + mask token
    fresh = torch.full((6, 3), -1.0)  # 2 new items
    out = grow_tensor(old, fresh, {2: 2})
    np.testing.assert_array_equal(out[:3], old[:3])  # padding and old items in place
    np.testing.assert_array_equal(out[3:5], fresh[3:5])  # new items: fresh init
    np.testing.assert_array_equal(out[5], old[3])  # the mask token moved to the end
    # a column axis (a decoder over n items, no padding) grows the same way
    w = torch.ones(5, 2)
    assert grow_tensor(w, torch.zeros(5, 4), {2: 2})[:, :2].sum() == 10
    with pytest.raises(UpdateError, match="cannot grow"):
        grow_tensor(old, torch.zeros(9, 3), {2: 2})
    with pytest.raises(UpdateError, match="differ"):
        grow_state({"a": old}, {"b": fresh}, {2: 2})


def test_history_frame_and_merge(parts):
    old, new = parts
    model = genrec.get_model("popularity")().fit(old)
    frame = history_frame(model)
    assert len(frame) == old.n_interactions
    ds, is_new = merged_dataset(model, new)
    assert ds.n_interactions == old.n_interactions + len(new)
    assert int(is_new.sum()) == len(new)
    # old ids keep their internal ids; new ones are appended
    assert ds.item_map.to_list()[: old.n_items] == old.item_map.to_list()
    assert ds.user_map.to_list()[-1] == NEW_USER and ds.item_map.to_list()[-1] == NEW_ITEM
    marked = ds.interactions[is_new]
    assert set(marked["user_id"]) == set(new["user_id"])


@pytest.mark.parametrize(
    "name, config",
    [
        ("sasrec", {"embedding_dim": 16, "n_blocks": 1, "max_seq_len": 10, "epochs": 2,
                    "progress": False, "device": "cpu"}),
        ("multvae", {"epochs": 2, "progress": False, "device": "cpu"}),
    ],
)  # fmt: skip
def test_warm_start_grows_tables_and_keeps_the_old_model(parts, name, config):
    old, new = parts
    model = genrec.get_model(name)(**config).fit(old)
    before = {k: v.copy() for k, v in model._state_dict().items()}
    upd, rep = update_model(model, new, epochs=1)
    assert rep.mode == "warm-start" and rep.n_new_users == 1 and rep.n_new_items == 1
    assert upd is not model and upd.n_items == old.n_items + 1
    for k, v in model._state_dict().items():  # the old model is untouched
        np.testing.assert_array_equal(v, before[k])
    recs = upd.recommend([NEW_USER, 501], k=5)
    assert (recs.internal_item_ids > 0).all()
    # the new user's history is known: its items are filtered as seen
    assert not {1001, 1002, NEW_ITEM} & set(recs.item_ids[0].tolist())
    assert upd.training_info_["update"]["mode"] == "warm-start"


def test_warm_start_starts_from_the_old_weights(parts):
    import copy

    old, new = parts
    cfg = {"embedding_dim": 16, "n_blocks": 1, "max_seq_len": 10, "epochs": 3, "progress": False}
    model = genrec.get_model("sasrec")(**cfg).fit(old)
    frozen = copy.copy(model)  # same weights; a learning rate of ~0 keeps them where they start
    frozen.config = model.config.replace(lr=1e-12)
    upd, _ = update_model(frozen, new, epochs=1)
    w_old = torch.from_numpy(model._state_dict()["item_emb.weight"])
    w_new = upd.network_.item_emb.weight.detach()
    assert w_new.shape[0] == w_old.shape[0] + 1
    torch.testing.assert_close(w_new[: w_old.shape[0]], w_old, atol=1e-5, rtol=0)
    assert not torch.equal(w_new[-1], torch.zeros_like(w_new[-1]))  # fresh init, not zeros


def test_als_fold_in(parts):
    pytest.importorskip("implicit")
    old, new = parts
    model = genrec.get_model("als")(embedding_dim=8, iterations=5, num_threads=1).fit(old)
    upd, rep = update_model(model, new)
    assert rep.mode == "fold-in"
    n_old_users = model.user_map.size
    # unaffected users keep their factors; the new user's factors are the fold-in solution
    affected = set(new["user_id"])
    for u in model.user_map.external_ids:
        i = model.user_map.to_internal([u])[0]
        if u not in affected:
            np.testing.assert_array_equal(upd.user_factors_[i], model.user_factors_[i])
    j = upd.user_map.to_internal([NEW_USER])[0]
    assert j == n_old_users + 1
    row = upd.train_histories_.matrix[[j]]
    np.testing.assert_allclose(upd.user_factors_[j], upd.fold_in(row)[0], rtol=1e-4, atol=1e-5)
    k = upd.item_map.to_internal([NEW_ITEM])[0]
    assert np.abs(upd.item_factors_[k]).sum() > 0  # the new item got factors
    assert np.abs(model.item_factors_).sum() == pytest.approx(
        np.abs(upd.item_factors_[: model.item_factors_.shape[0]]).sum()
    )


def test_refit_models_say_so(parts):
    old, new = parts
    model = genrec.get_model("ease")(l2=10.0).fit(old)
    upd, rep = update_model(model, new)
    assert rep.mode == "refit" and "refitted" in rep.note
    ds, _ = merged_dataset(model, new)
    ref = genrec.get_model("ease")(l2=10.0).fit(ds)
    users = ds.user_map.external_ids
    np.testing.assert_array_equal(
        upd.recommend(users, k=5).internal_item_ids, ref.recommend(users, k=5).internal_item_ids
    )


def test_bad_inputs(parts):
    old, new = parts
    model = genrec.get_model("popularity")().fit(old)
    with pytest.raises(Exception, match="user_id"):
        update_model(model, new.rename(columns={"user_id": "u"}))
    with pytest.raises(Exception, match="no new interactions"):
        update_model(model, new.iloc[:0])
    with pytest.raises(Exception, match="replay"):
        update_model(model, new, replay=2.0)


def test_cli_update_writes_a_new_artifact(parts, tmp_path, capsys):
    old, new = parts
    art = tmp_path / "ease"
    genrec.get_model("ease")(l2=10.0).fit(old).save(art)
    stamp = (art / "weights.safetensors").read_bytes()
    data = tmp_path / "new.csv"
    new.to_csv(data, index=False)
    out = tmp_path / "ease-2"
    assert main(["update", str(art), "--data", str(data), "--out", str(out)]) == 0
    assert "refit" in capsys.readouterr().out
    assert (art / "weights.safetensors").read_bytes() == stamp  # the old artifact is unchanged
    upd = genrec.load(out)
    assert upd.user_map.size == old.user_map.size + 1
    # never over the old artifact, even with --overwrite
    code = main(["update", str(art), "--data", str(data), "--out", str(art), "--overwrite"])
    assert code == 2 and "leaves the old one" in capsys.readouterr().err
    # an existing output needs --overwrite
    assert main(["update", str(art), "--data", str(data), "--out", str(out)]) == 2
    assert main(["update", str(art), "--data", str(data), "--out", str(out), "--overwrite"]) == 0
    # a folder genrec did not write is never replaced, even with --overwrite
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for extra in ([], ["--overwrite"]):
        code = main(["update", str(art), "--data", str(data), "--out", str(mine), *extra])
        assert code == 2 and "notes.txt" not in capsys.readouterr().out
    assert (mine / "notes.txt").read_text() == "keep me"
    # nor a file
    assert main(["update", str(art), "--data", str(data), "--out", str(data), "--overwrite"]) == 2
    assert data.read_text() == new.to_csv(index=False)


# ---------------------------------------------------------------- semantic-ID models
_SID = {
    "embedding_dim": 16, "n_decoder_layers": 1, "n_heads": 2, "head_dim": 8, "ffn_dim": 32,
    "max_seq_len": 8, "n_levels": 3, "codebook_size": 16, "num_beams": 20, "epochs": 2,
    "progress": False, "device": "cpu",
}  # fmt: skip


@pytest.mark.parametrize("name, extra", [("tiger", {"n_encoder_layers": 1}), ("sidsplit", {})])
def test_semantic_id_models_update_with_codes_for_new_items(parts, name, extra):
    """TIGER and SID-split warm-start: old items keep their codes, the new item gets a free
    tuple, every old weight is the starting point, and the old model is untouched."""
    import copy

    old, new = parts
    model = genrec.get_model(name)(**_SID, **extra, codebook="random").fit(old)
    before = {k: v.copy() for k, v in model._state_dict().items()}
    frozen = copy.copy(model)  # a learning rate of ~0 keeps the weights where they start
    frozen.config = model.config.replace(lr=1e-12)
    upd, rep = update_model(frozen, new, epochs=1)
    assert rep.mode == "warm-start" and rep.n_new_items == 1 and "random codes" in rep.note
    for k, v in model._state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    np.testing.assert_array_equal(upd.codes_[: len(model.codes_)], model.codes_)
    k = upd.item_map.to_internal([NEW_ITEM])[0]
    assert (upd.codes_[k] >= 0).all()
    assert len({tuple(r) for r in upd.codes_[1:].tolist()}) == upd.n_items  # unique tuples
    for key, value in model.network_.state_dict().items():
        w = upd.network_.state_dict()[key]
        torch.testing.assert_close(w[: value.shape[0]], value, atol=1e-5, rtol=0)
    # the new item is decodable: exhaustive beams reach it for some user
    batch = upd.train_histories_.batch(np.arange(1, 11))
    _, _, items = upd.decode(batch, num_beams=upd.n_items)
    assert (items == k).any()
    recs = upd.recommend([NEW_USER], k=5)
    assert not {1001, 1002, NEW_ITEM} & set(recs.item_ids[0].tolist())


def test_grown_codebook_encodes_with_the_fitted_tokenizer_which_the_artifact_keeps(parts, tmp_path):
    old, new = parts
    rng = np.random.default_rng(0)
    vec_old = rng.normal(size=(old.n_items, 8)).astype(np.float32)
    np.save(tmp_path / "v.npy", vec_old)
    cfg = {**_SID, "n_encoder_layers": 1, "epochs": 1}
    path = str(tmp_path / "v.npy")
    model = genrec.get_model("tiger")(**cfg, codebook="rkmeans", item_vectors_path=path).fit(old)
    assert model.tokenizer_ is not None
    ds, _ = merged_dataset(model, new)
    vectors = np.zeros((ds.n_items + 1, 8), np.float32)
    vectors[1 : old.n_items + 1] = vec_old
    vectors[old.n_items + 1 :] = rng.normal(size=(ds.n_items - old.n_items, 8))
    cb = model.grown_codebook(ds, vectors)
    np.testing.assert_array_equal(cb.codes[: old.n_items + 1], model.codes_)
    sem = model.tokenizer_.encode(vectors[old.n_items + 1 :])
    np.testing.assert_array_equal(cb.codes[old.n_items + 1 :, :-1], sem)
    # the artifact keeps the tokenizer (safetensors, no pickle): the same codes after load
    loaded = genrec.load(model.save(tmp_path / "art"))
    assert loaded.tokenizer_ is not None
    np.testing.assert_array_equal(
        loaded.tokenizer_.encode(vectors[1:]), model.tokenizer_.encode(vectors[1:])
    )
    np.testing.assert_array_equal(loaded.grown_codebook(ds, vectors).codes, cb.codes)
    with pytest.raises(Exception, match="item map does not extend"):
        model.grown_codebook(_reordered(old), None)
    # update_model / genrec update --item-vectors: the grown catalogue's vectors (.npy)
    np.save(tmp_path / "grown.npy", vectors[1:])
    upd, rep = update_model(model, new, epochs=1, item_vectors=str(tmp_path / "grown.npy"))
    np.testing.assert_array_equal(upd.codes_, cb.codes)
    assert "rkmeans tokenizer" in rep.note
    with pytest.raises(Exception, match="rows for a catalogue"):
        update_model(model, new, epochs=1)  # item_vectors_path covers the old catalogue only


def _reordered(ds):
    """A dataset over the same items with another internal order."""
    from genrec.data.dataset import Dataset

    frame = ds.interactions[["user_id", "item_id", "timestamp"]]
    frame = frame.assign(item_id=frame["item_id"].map(lambda i: f"x{i}"))
    return Dataset(frame)


def test_rqvae_tokenizer_state_round_trip():
    from genrec.tokenizers import RQVAETokenizer

    x = np.random.default_rng(1).normal(size=(31, 6)).astype(np.float32)
    x[0] = 0
    tok = RQVAETokenizer(n_levels=2, codebook_size=4, epochs=3, hidden_dims=(8,), latent_dim=4)
    tok.fit(x)
    again = RQVAETokenizer.from_state_arrays(tok.state_arrays(), tok.config)
    np.testing.assert_array_equal(again.encode(x[1:]), tok.encode(x[1:]))
    with pytest.raises(Exception, match="unusable rqvae tokenizer state"):
        RQVAETokenizer.from_state_arrays({"dim": np.asarray(6)}, tok.config)


def test_semantic_id_model_without_a_tokenizer_refuses(parts, tmp_path):
    old, new = parts
    model = genrec.get_model("tiger")(**_SID, n_encoder_layers=1, codebook="random").fit(old)
    path = tmp_path / "cb"
    from genrec.tokenizers import ItemCodebook

    ItemCodebook(model.codes_, model.codebook_sizes_, old.item_map.to_list()).save(path)
    fixed = genrec.get_model("tiger")(**_SID, n_encoder_layers=1, codebook_path=str(path))
    fixed.fit(old)
    with pytest.raises(UpdateError, match="no fitted tokenizer"):
        update_model(fixed, new)


def test_semantic_id_warm_start_grows_only_the_code_token_table():
    """A longer collision level adds code tokens at the end of the table: grow_state with the
    sizes update_model gives a semantic-ID model ({old tokens - 1: growth}) copies the old
    rows and keeps the new ones fresh; any other shape change is refused."""

    class Net(torch.nn.Module):
        def __init__(self, n_tokens: int, n_pos: int = 3):
            super().__init__()
            self.token_emb = torch.nn.Embedding(n_tokens, 4)
            self.pos = torch.nn.Parameter(torch.randn(n_pos, 4))

    torch.manual_seed(0)
    old = Net(10)
    fresh = Net(12)
    new_rows = fresh.token_emb.weight.detach()[10:].clone()
    state = {k: v.detach().clone() for k, v in old.state_dict().items()}
    sizes = {10 - 1: 12 - 10}  # as update_model: n_tokens - 1 -> 1 + sum(new sizes) - n_tokens
    fresh.load_state_dict(grow_state(state, fresh.state_dict(), sizes))
    torch.testing.assert_close(fresh.token_emb.weight[:10], old.token_emb.weight)
    torch.testing.assert_close(fresh.token_emb.weight[10:], new_rows)
    torch.testing.assert_close(fresh.pos, old.pos)
    with pytest.raises(UpdateError, match="cannot grow"):
        grow_state(state, Net(12, n_pos=5).state_dict(), sizes)  # positions never grow
