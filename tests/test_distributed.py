"""genrec.distributed: batch inference to Parquet and sharded evaluation, local engine always,
Ray engine when Ray is installed (one local instance with 2 CPUs for the module)."""

from __future__ import annotations

import contextlib
import importlib.util
import os

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pyarrow")

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

import genrec  # noqa: E402
from genrec.data.splitting import leave_one_out  # noqa: E402
from genrec.distributed import (  # noqa: E402
    batch_recommend,
    evaluate_sharded,
    is_genrec_recommendations,
    read_user_ids,
    shard_holdout,
)
from genrec.errors import (  # noqa: E402
    ArtifactError,
    ConfigError,
    DataValidationError,
    MissingExtraError,
    UnknownIdError,
    UnknownNameError,
)
from genrec.paths import OutputPathError  # noqa: E402
from genrec.testing import make_synthetic_dataset  # noqa: E402

HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (genrec[distributed])")


def fit_and_save(folder, string_ids: bool):
    """An EASE model on the synthetic data, its split and its saved artifact."""
    ds = make_synthetic_dataset(n_users=60, n_items=40, string_ids=string_ids, noise=0.2)
    split = leave_one_out(ds)
    model = genrec.get_model("ease")(l2=10.0).fit(split.train)
    return model, split, model.save(folder / "ease")


@pytest.fixture(scope="module", params=[False, True], ids=["int-ids", "str-ids"])
def fitted(request, tmp_path_factory):
    return fit_and_save(tmp_path_factory.mktemp("artifact"), request.param)


@pytest.fixture(scope="module")
def fitted_str(tmp_path_factory):
    """String ids only: the Ray tests are slow to start, and strings are the harder case."""
    return fit_and_save(tmp_path_factory.mktemp("artifact"), True)


def users_file(path, users) -> str:
    pq.write_table(pa.table({"user_id": users}), path)
    return str(path)


def all_users(model) -> list:
    return list(model.user_map.external_ids)


# ---------------------------------------------------------------------- batch inference
def test_local_output_is_recommend_to_frame(fitted, tmp_path):
    model, _, art = fitted
    users = all_users(model)[::-1]  # any order: the output keeps the file's order
    out = tmp_path / "recs.parquet"
    result = batch_recommend(art, users_file(tmp_path / "u.parquet", users), out, k=5)
    got = pd.read_parquet(out)
    want = genrec.load(art).recommend(users, k=5).to_frame()
    assert list(got.columns) == ["user_id", "rank", "item_id", "score"]
    assert got["user_id"].tolist() == want["user_id"].tolist()
    assert got["item_id"].tolist() == want["item_id"].tolist()
    assert got["rank"].tolist() == want["rank"].tolist()
    np.testing.assert_array_equal(got["score"].to_numpy(), want["score"].to_numpy())
    assert result.n_users == len(users) and result.n_rows == len(got) == 5 * len(users)
    assert result.engine == "local" and result.users_per_second > 0
    assert 0 < result.first_batch_seconds <= result.seconds and result.first_batch_users == 60
    assert is_genrec_recommendations(out)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_cli_recommend_for_a_file_of_users(fitted_str, tmp_path, capsys):
    """``genrec recommend ARTIFACT --users FILE --out OUT`` writes what batch_recommend
    writes; its flags are checked and its errors name the CLI's flags."""
    from genrec.cli import main

    model, _, art = fitted_str
    users = users_file(tmp_path / "u.parquet", all_users(model)[:10])
    out = tmp_path / "recs.parquet"
    assert main(["recommend", str(art), "--users", users, "--out", str(out), "--k", "3"]) == 0
    got = pd.read_parquet(out)
    want = genrec.load(art).recommend(all_users(model)[:10], k=3).to_frame()
    assert got["item_id"].tolist() == want["item_id"].tolist()
    assert "wrote" in capsys.readouterr().err
    again = ["recommend", str(art), "--users", users, "--out", str(out)]
    assert main(again) == 2 and "--overwrite" in capsys.readouterr().err
    assert main([*again, "--overwrite", "--k", "2"]) == 0
    assert pd.read_parquet(out)["rank"].max() == 2
    assert main(["recommend", str(art), "--users", users]) == 2
    assert "needs --out" in capsys.readouterr().err
    assert main(["recommend", str(art), "--user", "u1", "--out", str(out)]) == 2
    assert "--out applies to --users" in capsys.readouterr().err
    assert main([*again, "--overwrite", "--workers", "2"]) == 2
    assert "--engine ray" in capsys.readouterr().err


def test_batch_size_does_not_change_the_output(fitted, tmp_path):
    _, _, art = fitted
    users = users_file(tmp_path / "u.parquet", all_users(fitted[0]))
    batch_recommend(art, users, tmp_path / "a.parquet", k=7, batch_size=7)
    batch_recommend(art, users, tmp_path / "b.parquet", k=7, batch_size=1000)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    )


def test_exclude_seen_is_honoured(fitted, tmp_path):
    model, _, art = fitted
    users = all_users(model)[:10]
    out = tmp_path / "recs.parquet"
    batch_recommend(art, users_file(tmp_path / "u.parquet", users), out, k=10)
    seen = model.train_histories_.matrix
    frame = pd.read_parquet(out)
    for user, items in frame.groupby("user_id", sort=False)["item_id"]:
        row = model.user_map.to_internal([user])[0]
        history = set(seen.indices[seen.indptr[row] : seen.indptr[row + 1]])
        assert history.isdisjoint(model.item_map.to_internal(items.tolist()))


def test_unknown_users_are_named_or_ranked_by_popularity(fitted, tmp_path):
    model, _, art = fitted
    known = all_users(model)[:3]
    strange = ["nobody-1", "nobody-2"] if isinstance(known[0], str) else [9_999_001, 9_999_002]
    users = users_file(tmp_path / "u.parquet", known + strange)
    out = tmp_path / "recs.parquet"
    with pytest.raises(UnknownIdError) as info:
        batch_recommend(art, users, out)
    assert repr(strange[0]) in str(info.value) and "on_unknown='popular'" in str(info.value)
    assert not out.exists()
    batch_recommend(art, users, out, k=4, on_unknown="popular")
    frame = pd.read_parquet(out)
    want = model.recommend(known + strange, k=4, on_unknown="popular").to_frame()
    assert frame["item_id"].tolist() == want["item_id"].tolist()
    popular = model.recommend(strange[:1], k=4, on_unknown="popular").item_ids[0].tolist()
    cold = frame[frame["user_id"] == strange[1]]["item_id"].tolist()
    assert cold == popular  # both unknown users get the same popularity list


def test_bad_users_files(fitted, tmp_path):
    _, _, art = fitted
    out = tmp_path / "recs.parquet"
    pq.write_table(pa.table({"user": [1, 2]}), tmp_path / "col.parquet")
    with pytest.raises(DataValidationError, match="no 'user_id' column.*user"):
        batch_recommend(art, tmp_path / "col.parquet", out)
    pq.write_table(pa.table({"user_id": pa.array([], pa.int64())}), tmp_path / "empty.parquet")
    with pytest.raises(DataValidationError, match="holds no users"):
        batch_recommend(art, tmp_path / "empty.parquet", out)
    pq.write_table(pa.table({"user_id": [501, None]}), tmp_path / "null.parquet")
    with pytest.raises(DataValidationError, match="1 of 2 user ids are missing.*row 1"):
        read_user_ids(tmp_path / "null.parquet")
    (tmp_path / "text.parquet").write_text("user_id\n501\n")
    with pytest.raises(DataValidationError, match="not a readable Parquet file"):
        batch_recommend(art, tmp_path / "text.parquet", out)
    with pytest.raises(DataValidationError, match="not found"):
        batch_recommend(art, tmp_path / "absent.parquet", out)
    with pytest.raises(ArtifactError, match="no artifact"):
        batch_recommend(tmp_path / "nope", users_file(tmp_path / "u.parquet", [1]), out)
    assert not out.exists()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"k": 0}, ConfigError, "k must be a positive integer"),
        ({"engine": "spark"}, ConfigError, "engine must be one of local, ray"),
        ({"batch_size": 0}, ConfigError, "batch_size must be a positive integer"),
        ({"num_workers": -1}, ConfigError, "num_workers must be a positive integer"),
        ({"on_unknown": "raise"}, ConfigError, "on_unknown must be 'error' or 'popular'"),
    ],
)
def test_bad_options(fitted, tmp_path, kwargs, error, message):
    _, _, art = fitted
    with pytest.raises(error, match=message):
        batch_recommend(art, users_file(tmp_path / "u.parquet", [1]), tmp_path / "r", **kwargs)


def test_output_file_rules(fitted, tmp_path):
    model, _, art = fitted
    users = users_file(tmp_path / "u.parquet", all_users(model)[:4])
    foreign = tmp_path / "mine.parquet"
    pq.write_table(pa.table({"x": [1]}), foreign)  # a Parquet file genrec did not write
    with pytest.raises(OutputPathError, match="not written by genrec"):
        batch_recommend(art, users, foreign, overwrite=True)
    assert pq.read_table(foreign).column_names == ["x"]
    out = tmp_path / "recs.parquet"
    batch_recommend(art, users, out, k=2)
    with pytest.raises(OutputPathError, match="pass --overwrite"):
        batch_recommend(art, users, out, k=3, flag="--overwrite")
    batch_recommend(art, users, out, k=3, overwrite=True)
    assert pd.read_parquet(out)["rank"].max() == 3
    with pytest.raises(OutputPathError, match="folder"):
        batch_recommend(art, users, tmp_path)


def test_a_failed_job_leaves_nothing(fitted, tmp_path, monkeypatch):
    model, _, art = fitted
    users = users_file(tmp_path / "u.parquet", all_users(model)[:4])
    out = tmp_path / "recs.parquet"
    batch_recommend(art, users, out, k=2)
    before = out.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("worker died")

    monkeypatch.setattr("genrec.distributed.recommend_frame", broken)
    with pytest.raises(RuntimeError, match="worker died"):
        batch_recommend(art, users, out, k=5, overwrite=True)
    assert out.read_bytes() == before  # the earlier output is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recs.parquet", "u.parquet"]


@pytest.mark.skipif(HAS_RAY, reason="ray is installed")
def test_ray_engine_names_the_extra(fitted_str, tmp_path):
    _, _, art = fitted_str
    with pytest.raises(MissingExtraError, match=r"genrec\[distributed\]"):
        batch_recommend(art, users_file(tmp_path / "u.parquet", [1]), tmp_path / "r", engine="ray")


# ---------------------------------------------------------------------- sharded evaluation
def assert_same_evaluation(got, want):
    assert np.array_equal(got.users, want.users)
    assert np.array_equal(got.ranked, want.ranked)
    assert list(got.per_user) == list(want.per_user)
    for key in want.per_user:
        np.testing.assert_array_equal(got.per_user[key], want.per_user[key], err_msg=key)
    assert list(got.metrics) == list(want.metrics)
    for key, value in want.metrics.items():
        assert got.metrics[key] == value, key  # exact: same arrays, same reductions


def test_shards_tile_the_holdout(fitted):
    _, split, _ = fitted
    shards = shard_holdout(split.test, 4)
    assert [len(s) for s in shards] == [15, 15, 15, 15]
    assert np.array_equal(np.concatenate([s.users for s in shards]), split.test.users)
    assert len(shard_holdout(split.test, 1000)) == len(split.test)  # never an empty shard
    with pytest.raises(ConfigError, match="num_shards"):
        shard_holdout(split.test, 0)


@pytest.mark.parametrize("num_shards", [1, 3, 7])
def test_local_sharded_evaluation_equals_one_process(fitted, num_shards):
    model, split, art = fitted
    want = genrec.evaluate(model, split)
    assert any(k.startswith("ild_genre") for k in want.metrics)  # beyond-accuracy covered
    got = evaluate_sharded(art, split, num_shards=num_shards, batch_size=4)
    assert_same_evaluation(got, want)
    assert got.info["engine"] == "local" and got.info["num_shards"] == num_shards
    assert len(got.info["shard_seconds"]) == num_shards


def test_beyond_accuracy_is_computed_over_the_merged_lists(fitted):
    """Coverage of the merged lists is not the mean of the shards' coverages."""
    model, split, _ = fitted
    shards = shard_holdout(split.test, 3)
    per_shard = [genrec.evaluate(model, s).metrics["coverage@5"] for s in shards]
    merged = evaluate_sharded(model, split, num_shards=3).metrics["coverage@5"]
    assert merged == genrec.evaluate(model, split).metrics["coverage@5"]
    assert merged != pytest.approx(float(np.mean(per_shard)))


def test_sharded_evaluation_options_and_errors(fitted):
    model, split, _ = fitted
    want = genrec.evaluate(model, split, stage="valid", ks=(3,), metrics=("ndcg",))
    got = evaluate_sharded(model, split, stage="valid", ks=(3,), metrics=("ndcg",))
    assert_same_evaluation(got, want)
    with pytest.raises(UnknownNameError, match="Did you mean 'recall'"):
        evaluate_sharded(model, split, metrics=("recal",))
    with pytest.raises(ConfigError, match="engine"):
        evaluate_sharded(model, split, engine="dask")


# ---------------------------------------------------------------------- Ray
@contextlib.contextmanager
def ray_home(folder):
    """A new local Ray instance writes an authentication token to ``~/.ray``: give it a
    temporary home (token authentication stays on), restored afterwards."""
    saved = os.environ.get("RAY_AUTH_MODE")  # Ray sets it in this process
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(folder))
        try:
            yield
        finally:
            os.environ.pop("RAY_AUTH_MODE", None)
            if saved is not None:
                os.environ["RAY_AUTH_MODE"] = saved


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    ray = pytest.importorskip("ray")
    with ray_home(tmp_path_factory.mktemp("home")):
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            yield ray
        finally:
            ray.shutdown()


@needs_ray
def test_ray_batch_inference_equals_local(fitted_str, ray_instance, tmp_path):
    model, _, art = fitted_str
    users = all_users(model)[::-1] + all_users(model)[:5]  # repeats too
    path = users_file(tmp_path / "u.parquet", users)
    local = batch_recommend(art, path, tmp_path / "local.parquet", k=6, batch_size=16)
    remote = batch_recommend(
        art, path, tmp_path / "ray.parquet", k=6, batch_size=16, engine="ray", num_workers=2
    )
    assert (remote.engine, remote.num_workers) == ("ray", 2)
    a, b = pd.read_parquet(tmp_path / "local.parquet"), pd.read_parquet(tmp_path / "ray.parquet")
    pd.testing.assert_frame_equal(a, b)  # same rows in the same order, same dtypes
    key = ["user_id", "rank"]
    pd.testing.assert_frame_equal(
        a.sort_values(key, kind="stable").reset_index(drop=True),
        b.sort_values(key, kind="stable").reset_index(drop=True),
    )
    assert remote.n_rows == local.n_rows == 6 * len(users)
    assert ray_instance.is_initialized()  # the caller's Ray is left running


@needs_ray
def test_ray_sharded_evaluation_equals_one_process(fitted_str, ray_instance):
    model, split, art = fitted_str
    want = genrec.evaluate(model, split)
    # 3 shards on 2 actors (one evaluates two shards with the artifact it loaded once)
    got = evaluate_sharded(art, split, engine="ray", num_shards=3, num_workers=2)
    assert_same_evaluation(got, want)
    assert got.info["num_shards"] == 3
    got = evaluate_sharded(model, split, engine="ray", num_shards=2, num_workers=1)  # an object
    assert_same_evaluation(got, want)
    assert got.info["engine"] == "ray"


@needs_ray
@pytest.mark.slow
def test_a_private_ray_instance_is_started_and_shut_down(fitted_str, tmp_path):
    """The command line's path: no Ray running, no address: a local instance for the job."""
    import ray

    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    model, _, art = fitted_str
    path = users_file(tmp_path / "u.parquet", all_users(model)[:20])
    batch_recommend(art, path, tmp_path / "local.parquet", k=3)
    with ray_home(tmp_path):
        result = batch_recommend(
            art, path, tmp_path / "ray.parquet", k=3, engine="ray", num_workers=1
        )
    assert result.num_workers == 1 and not ray.is_initialized()
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "local.parquet"), pd.read_parquet(tmp_path / "ray.parquet")
    )
