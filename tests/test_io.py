import json

import numpy as np
import pandas as pd
import pytest

import genrec
from genrec import Dataset
from genrec.errors import ArtifactError
from genrec.paths import atomic_dir


@pytest.fixture
def fitted(tiny_frame):
    items = pd.DataFrame({"item_id": list("abcdef"), "title": [f"T{c}" for c in "abcdef"]})
    return genrec.get_model("popularity")().fit(Dataset(tiny_frame, items=items))


def test_round_trip_identical(fitted, tmp_path):
    path = fitted.save(tmp_path / "art")
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "ids.json",
        "items.json",
        "weights.safetensors",
    ]
    loaded = genrec.load(path)
    a = fitted.recommend([1, 2, 3, 4], k=3)
    b = loaded.recommend([1, 2, 3, 4], k=3)
    assert (a.item_ids == b.item_ids).all()
    np.testing.assert_allclose(a.scores, b.scores)
    assert loaded.item_titles_[1] == "Ta"


def test_no_pickle_in_artifact(fitted, tmp_path):
    path = fitted.save(tmp_path / "art")
    for f in path.iterdir():
        assert b"\x80\x04\x95" not in f.read_bytes()[:64]  # pickle protocol-4 header


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / "weights.safetensors").unlink(), "missing weights.safetensors"),
        (lambda p: (p / "config.json").write_text("{not json"), "not valid JSON"),
        (lambda p: (p / "weights.safetensors").write_bytes(b"\x00" * 20), "corrupt"),
        (
            lambda p: (p / "ids.json").write_text(json.dumps({"users": [1], "items": []})),
            "does not match",
        ),
        (lambda p: (p / "config.json").write_text(json.dumps({"format_version": 1})), "lacks"),
    ],
)
def test_corrupt_artifacts_raise_clear_errors(fitted, tmp_path, damage, message):
    path = fitted.save(tmp_path / "art")
    damage(path)
    with pytest.raises(ArtifactError, match=message):
        genrec.load(path)


def test_missing_directory(tmp_path):
    with pytest.raises(ArtifactError, match="no artifact directory"):
        genrec.load(tmp_path / "nothing")


def test_atomic_dir_leaves_old_artifact_on_failure(fitted, tmp_path):
    path = fitted.save(tmp_path / "art")
    before = sorted(p.name for p in path.iterdir())
    with pytest.raises(RuntimeError), atomic_dir(path) as tmp:
        (tmp / "partial").write_text("x")
        raise RuntimeError("crash mid-write")
    assert sorted(p.name for p in path.iterdir()) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # temp cleaned up
    genrec.load(path)


def test_written_files_are_readable_by_others(fitted, tmp_path):
    from genrec.paths import atomic_write_text

    atomic_write_text(tmp_path / "r.txt", "x")
    assert (tmp_path / "r.txt").stat().st_mode & 0o044  # group/other read (umask allowing)
    path = fitted.save(tmp_path / "art")
    assert path.stat().st_mode & 0o055
