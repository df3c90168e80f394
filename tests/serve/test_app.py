"""The HTTP API over saved artifacts: answers equal ``recommend()``; bad requests are 4xx."""

from __future__ import annotations

import asyncio
import importlib
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

with warnings.catch_warnings():  # starlette's note about httpx vs httpx2 is not ours
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

import genrec  # noqa: E402
from genrec.data.loaders.files import split_genres  # noqa: E402
from genrec.errors import MissingExtraError  # noqa: E402
from genrec.serve import create_app  # noqa: E402
from genrec.serve.app import MicroBatcher, ServedModel, load_models  # noqa: E402
from genrec.testing import make_synthetic_dataset  # noqa: E402

MODELS = ("popularity", "itemknn", "ease")


@pytest.fixture(scope="module")
def dataset() -> genrec.Dataset:
    return make_synthetic_dataset(n_users=40, n_items=30, seq_len=6, seed=3)


@pytest.fixture(scope="module")
def artifacts(dataset, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("artifacts")
    out = {}
    for name in MODELS:
        out[name] = genrec.get_model(name)().fit(dataset).save(root / name)
    return out


@pytest.fixture(scope="module")
def client(artifacts, dataset) -> TestClient:
    app = create_app([str(p) for p in artifacts.values()], dataset.items)
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def loaded(artifacts) -> dict[str, Any]:
    return {name: genrec.load(path) for name, path in artifacts.items()}


def _ids(items: list[dict]) -> list[Any]:
    return [it["item_id"] for it in items]


def _expected(recs, row: int = 0) -> list[Any]:
    return [int(i) for i, n in zip(recs.item_ids[row], recs.internal_item_ids[row]) if n > 0]


# ---------------------------------------------------------------------- meta
def test_health_and_models(client, dataset):
    assert client.get("/health").json() == {"status": "ok", "models": list(MODELS)}
    models = {m["name"]: m for m in client.get("/models").json()}
    assert set(models) == set(MODELS)
    assert models["ease"]["model"] == "ease"
    assert models["ease"]["model_class"] == "EASE"
    assert models["ease"]["n_users"] == dataset.n_users
    assert models["ease"]["n_items"] == dataset.n_items
    assert "l2" in models["ease"]["config"]


def test_openapi_docs_and_demo_page(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    for path in ("/recommend", "/recommend/batch", "/similar", "/items", "/items/{item_id}"):
        assert path in spec["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "http" not in page.text.split("<body")[0].replace("http-equiv", "")  # no CDN
    for asset in ("app.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200


# ---------------------------------------------------------------------- recommend
@pytest.mark.parametrize("name", MODELS)
def test_recommend_user_matches_model(client, loaded, dataset, name):
    user = int(dataset.user_map.external_ids[5])
    resp = client.post("/recommend", json={"model": name, "user_id": user, "k": 5})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model"] == name and body["user_id"] == user and body["k"] == 5
    assert _ids(body["items"]) == _expected(loaded[name].recommend([user], k=5))
    assert [it["rank"] for it in body["items"]] == [1, 2, 3, 4, 5]
    scores = [it["score"] for it in body["items"]]
    assert scores == sorted(scores, reverse=True)
    item = body["items"][0]
    assert item["title"] and item["genres"] and item["genres"][0].startswith("Cluster")
    seen = set(dataset.interactions.loc[dataset.interactions["user_id"] == user, "item_id"])
    assert not seen & set(_ids(body["items"]))
    assert body["history_length"] == len(seen)


def test_recommend_options(client, loaded, dataset):
    user = int(dataset.user_map.external_ids[0])
    as_string = client.post("/recommend", json={"model": "ease", "user_id": str(user), "k": 3})
    assert as_string.status_code == 200
    assert _ids(as_string.json()["items"]) == _expected(loaded["ease"].recommend([user], k=3))
    keep = client.post(
        "/recommend", json={"model": "ease", "user_id": user, "k": 4, "exclude_seen": False}
    ).json()
    assert _ids(keep["items"]) == _expected(
        loaded["ease"].recommend([user], k=4, exclude_seen=False)
    )
    cands = [int(i) for i in dataset.item_map.external_ids[:6]]
    restricted = client.post(
        "/recommend",
        json={"model": "itemknn", "user_id": user, "k": 3, "candidates": cands},
    ).json()
    assert set(_ids(restricted["items"])) <= set(cands)
    assert _ids(restricted["items"]) == _expected(
        loaded["itemknn"].recommend([user], k=3, candidates=cands)
    )


def test_recommend_history_matches_model(client, loaded, dataset):
    history = [int(i) for i in dataset.item_map.external_ids[[0, 1, 2]]]
    resp = client.post("/recommend", json={"model": "itemknn", "history": history, "k": 4})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["user_id"] is None and body["history_length"] == 3
    assert _ids(body["items"]) == _expected(loaded["itemknn"].recommend_for_history([history], k=4))
    assert not set(history) & set(_ids(body["items"]))


def test_cold_user_popular_fallback(client, loaded):
    resp = client.post(
        "/recommend", json={"model": "ease", "user_id": 999_999, "k": 3, "on_unknown": "popular"}
    )
    assert resp.status_code == 200
    expected = loaded["popularity"].recommend_for_history([[]], k=3)
    assert _ids(resp.json()["items"]) == _expected(expected)


def test_batch_is_one_model_call(client, loaded, dataset):
    served: ServedModel = client.app.state.models["ease"]
    calls = []
    original = served.model.recommend

    def counting(users, *args, **kwargs):
        calls.append(len(users))
        return original(users, *args, **kwargs)

    served.model.recommend = counting  # type: ignore[method-assign]
    try:
        users = [int(u) for u in dataset.user_map.external_ids[:7]]
        resp = client.post("/recommend/batch", json={"model": "ease", "user_ids": users, "k": 3})
    finally:
        del served.model.recommend
    assert resp.status_code == 200, resp.text
    assert calls == [7]
    results = resp.json()["results"]
    direct = loaded["ease"].recommend(users, k=3)
    assert [r["user_id"] for r in results] == users
    assert [_ids(r["items"]) for r in results] == [_expected(direct, i) for i in range(7)]


def test_batch_histories(client, loaded, dataset):
    ids = [int(i) for i in dataset.item_map.external_ids]
    histories = [[ids[0]], [ids[10], ids[11]], []]
    resp = client.post("/recommend/batch", json={"model": "ease", "histories": histories, "k": 2})
    assert resp.status_code == 200, resp.text
    direct = loaded["ease"].recommend_for_history(histories, k=2)
    assert [_ids(r["items"]) for r in resp.json()["results"]] == [
        _expected(direct, i) for i in range(3)
    ]


def test_micro_batcher_merges_concurrent_requests(loaded, dataset):
    model = loaded["ease"]
    batcher = MicroBatcher(ServedModel("ease", model), max_batch=64)
    users = [int(u) for u in dataset.user_map.external_ids[:20]]

    async def burst():
        return await asyncio.gather(*(batcher.recommend(u, 3, True) for u in users))

    try:
        answers = asyncio.run(burst())
    finally:
        batcher.close()
    assert batcher.users == 20 and batcher.calls == 1  # 20 concurrent requests, one call
    direct = model.recommend(users, k=3)
    for i, (recs, row) in enumerate(answers):
        assert list(recs.item_ids[row]) == list(direct.item_ids[i])


def test_micro_batcher_passes_errors_to_each_request(loaded):
    batcher = MicroBatcher(ServedModel("ease", loaded["ease"]))

    async def burst():
        return await asyncio.gather(
            *(batcher.recommend(u, k, True) for u, k in ((501, 0), (502, 0))),
            return_exceptions=True,
        )

    try:
        errors = asyncio.run(burst())
    finally:
        batcher.close()
    assert all(isinstance(e, genrec.errors.ConfigError) for e in errors)


def test_similar_items(client, loaded, dataset):
    item = int(dataset.item_map.external_ids[4])
    resp = client.post("/similar", json={"model": "itemknn", "item_id": item, "k": 5})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["item"]["item_id"] == item and body["item"]["title"]
    assert item not in _ids(body["items"])
    assert _ids(body["items"]) == _expected(loaded["itemknn"].recommend_for_history([[item]], k=5))


# ---------------------------------------------------------------------- items and users
def test_item_metadata_and_search(client, dataset):
    row = dataset.items.iloc[3]
    item = client.get(f"/items/{row['item_id']}").json()
    assert item["item_id"] == int(row["item_id"])
    assert item["title"] == row["title"]
    assert item["genres"] == split_genres(row["genres"]) and item["genres"]
    assert item["year"] == int(row["year"])
    assert set(item["models"]) == set(MODELS)
    assert item["popularity"] >= 0
    found = client.get("/items", params={"query": row["title"][:4].lower(), "limit": 50}).json()
    assert found["total"] >= 1 and row["title"] in [it["title"] for it in found["items"]]
    assert all(row["title"][:4].lower() in it["title"].lower() for it in found["items"])
    assert client.get("/items", params={"query": "zzz-no-such-title"}).json()["total"] == 0


def test_users_and_history(client, dataset):
    users = client.get("/users", params={"model": "ease", "limit": 5}).json()
    assert users["total"] == dataset.n_users
    assert users["user_ids"] == [int(u) for u in dataset.user_map.external_ids[:5]]
    user = users["user_ids"][2]
    hist = client.get(f"/users/{user}/history", params={"model": "ease", "limit": 3}).json()
    seq = dataset.interactions.loc[dataset.interactions["user_id"] == user, "item_id"].tolist()
    assert hist["n_interactions"] == len(seq)
    assert _ids(hist["items"]) == [int(i) for i in seq[-3:]]


# ---------------------------------------------------------------------- the error contract
BAD_REQUESTS = [
    # (method, path, json body or raw bytes, expected status, word in the message)
    ("post", "/recommend", {"model": "nope", "user_id": 501}, 404, "nope"),
    ("post", "/recommend", {"model": "eas", "user_id": 501}, 404, "ease"),
    ("post", "/recommend", {"model": "ease", "user_id": 999_999}, 404, "999999"),
    ("post", "/recommend", {"model": "ease", "user_id": "ghost"}, 404, "ghost"),
    ("post", "/recommend", {"model": "ease", "history": [1001, 424242]}, 404, "424242"),
    ("post", "/recommend", {"model": "ease", "user_id": 501, "candidates": [77777]}, 404, "77777"),
    ("post", "/recommend", {"user_id": 501}, 422, "several models"),
    ("post", "/recommend", {"model": "ease", "user_id": 501, "k": 0}, 422, "k"),
    ("post", "/recommend", {"model": "ease", "user_id": 501, "k": 1001}, 422, "k"),
    ("post", "/recommend", {"model": "ease", "user_id": 501, "k": "5"}, 422, "k"),
    ("post", "/recommend", {"model": "ease", "user_id": 501, "k": 2.5}, 422, "k"),
    ("post", "/recommend", {"model": "ease", "user_id": True}, 422, "user_id"),
    ("post", "/recommend", {"model": "ease", "user_id": 1.5}, 422, "user_id"),
    ("post", "/recommend", {"model": "ease", "user_id": [501]}, 422, "user_id"),
    ("post", "/recommend", {"model": "ease", "user_id": ""}, 422, "user_id"),
    ("post", "/recommend", {"model": "ease", "user_id": 10**30}, 422, "64-bit"),
    ("post", "/recommend", {"model": "ease"}, 422, "exactly one"),
    ("post", "/recommend", {"model": "ease", "user_id": 501, "history": [1001]}, 422, "exactly"),
    ("post", "/recommend", {"model": "ease", "history": "1001"}, 422, "history"),
    ("post", "/recommend", {"model": "ease", "history": [1001] * 1001}, 422, "history"),
    ("post", "/recommend", {"model": "ease", "user_id": 501, "candidates": []}, 422, "candidates"),
    ("post", "/recommend", {"model": "ease", "user_id": 501, "exclude_seen": "x"}, 422, "exclude"),
    ("post", "/recommend", {"model": "ease", "user_id": 501, "kk": 3}, 422, "kk"),
    ("post", "/recommend", {"model": "ease", "user_id": 501, "on_unknown": "x"}, 422, "on_unknown"),
    ("post", "/recommend", [1, 2], 422, "body"),
    ("post", "/recommend", b'{"model": "ease", "user_id": ', 400, "JSON"),
    ("post", "/recommend", b"\xff\xfe", 400, "JSON"),
    ("post", "/recommend/batch", {"model": "ease", "user_ids": []}, 422, "user_ids"),
    ("post", "/recommend/batch", {"model": "ease", "user_ids": [501, 999_999]}, 404, "999999"),
    ("post", "/recommend/batch", {"model": "ease", "user_ids": [501] * 1001}, 422, "user_ids"),
    ("post", "/similar", {"model": "ease", "item_id": 31337}, 404, "31337"),
    ("post", "/similar", {"model": "ease"}, 422, "item_id"),
    ("get", "/items/31337", None, 404, "31337"),
    ("get", "/items", None, 422, "query"),
    ("get", "/items?query=toy&limit=0", None, 422, "limit"),
    ("get", "/users?model=ease&limit=abc", None, 422, "limit"),
    ("get", "/users/ghost/history?model=ease", None, 404, "ghost"),
    ("get", "/users?model=nope", None, 404, "nope"),
    ("get", "/recommend", None, 405, "Method"),
    ("get", "/no/such/path", None, 404, "Not Found"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "word"), BAD_REQUESTS)
def test_bad_requests_are_4xx_json(client, method, path, body, status, word):
    if isinstance(body, bytes):
        resp = client.request(
            method, path, content=body, headers={"Content-Type": "application/json"}
        )
    elif body is None:
        resp = client.request(method, path)
    else:
        resp = client.request(method, path, json=body)
    assert resp.status_code == status, resp.text
    data = resp.json()
    assert set(data) >= {"error", "detail"}
    assert word.lower() in data["detail"].lower(), data


def test_oversized_body_is_413(client):
    resp = client.post(
        "/recommend",
        content=b" " * (5 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 413
    assert resp.json()["error"] == "too_large"


def test_single_model_needs_no_name(artifacts, dataset):
    with TestClient(create_app([str(artifacts["ease"])])) as c:
        resp = c.post("/recommend", json={"user_id": int(dataset.user_map.external_ids[0])})
        assert resp.status_code == 200 and len(resp.json()["items"]) == 10
        item = c.get(f"/items/{int(dataset.item_map.external_ids[0])}").json()
        assert item["title"] and item["genres"] is None  # titles only without --dataset


def test_duplicate_model_types_named_by_directory(dataset, tmp_path):
    for name, l2 in (("ease-a", 10.0), ("ease-b", 100.0)):
        genrec.get_model("ease")(l2=l2).fit(dataset).save(tmp_path / name)
    genrec.get_model("popularity")().fit(dataset).save(tmp_path / "pop")
    names = load_models([tmp_path / "ease-a", tmp_path / "ease-b", tmp_path / "pop"])
    assert list(names) == ["ease-a", "ease-b", "popularity"]
    (tmp_path / "x").mkdir()
    genrec.get_model("ease")().fit(dataset).save(tmp_path / "x" / "ease-a")
    names = load_models([tmp_path / "ease-a", tmp_path / "x" / "ease-a"])
    assert list(names) == ["ease-a", "ease-a-2"]


def test_bad_artifact_path_is_a_clear_error(tmp_path):
    with pytest.raises(genrec.errors.ArtifactError, match="no artifact"):
        create_app([str(tmp_path / "missing")])


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi -> ImportError
    monkeypatch.delitem(sys.modules, "genrec.serve.app")
    with pytest.raises(MissingExtraError, match=r"pip install 'genrec\[serve\]'"):
        importlib.import_module("genrec.serve.app")


def test_cli_serve_builds_the_app(artifacts, monkeypatch):
    uvicorn = pytest.importorskip("uvicorn")
    from genrec import cli

    seen: dict[str, Any] = {}

    def fake_run(app, host, port, **kwargs):
        seen.update(app=app, host=host, port=port)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    rc = cli.main(["serve", str(artifacts["ease"]), str(artifacts["itemknn"]), "--port", "8123"])
    assert rc == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    with TestClient(seen["app"]) as c:
        assert c.get("/health").json()["models"] == ["ease", "itemknn"]


def test_scores_are_finite_json(client, dataset):
    user = int(dataset.user_map.external_ids[1])
    body = client.post("/recommend", json={"model": "popularity", "user_id": user, "k": 30})
    assert body.status_code == 200
    items = body.json()["items"]
    assert len(items) <= dataset.n_items and all(np.isfinite(it["score"]) for it in items)
