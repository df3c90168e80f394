"""``genrec train`` with checkpoints: ``--checkpoint-dir`` / ``--resume`` for neural models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import genrec
from genrec.cli import main
from genrec.io import load_model
from genrec.testing import make_synthetic_dataset

TINY_SASREC = [
    "--set", "embedding_dim=8", "--set", "n_blocks=1", "--set", "max_seq_len=8",
    "--set", "batch_size=32", "--set", "progress=false", "--set", "device=cpu",
]  # fmt: skip


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory) -> Path:
    ds = make_synthetic_dataset(n_users=60, n_items=30, seed=1, noise=0.1)
    path = tmp_path_factory.mktemp("data") / "inter.csv"
    ds.interactions[["user_id", "item_id", "timestamp"]].to_csv(path, index=False)
    return path


def _train(csv_path, *extra: str) -> int:
    return main(["train", *extra[:1], "--dataset", "csv", "--data-dir", str(csv_path), *extra[1:]])


@pytest.mark.parametrize("flag", [["--resume"], ["--checkpoint-dir", "x"]])
def test_checkpoint_flags_rejected_for_closed_form_models(csv_path, tmp_path, capsys, flag):
    code = _train(csv_path, "ease", "--out", str(tmp_path / "m"), *flag)
    assert code == 2
    err = capsys.readouterr().err
    assert f"{flag[0]} only applies to models trained epoch by epoch" in err and "'ease'" in err
    assert not (tmp_path / "m").exists()


def test_sasrec_checkpoint_resume_and_summary(csv_path, tmp_path, capsys):
    if "sasrec" not in genrec.list_models():
        pytest.skip("sasrec is not registered yet")
    out = tmp_path / "sasrec"
    code = _train(csv_path, "sasrec", "--out", str(out), "--set", "epochs=2", *TINY_SASREC,
                  "--resume")  # fmt: skip
    assert code == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert "trained 2 epochs, best epoch" in err and "ndcg@10" in err
    ckpt = Path(str(out) + ".ckpt")  # the default for --resume without --checkpoint-dir
    assert json.loads((ckpt / "last" / "trainer.json").read_text())["epoch"] == 2
    info = json.loads((out / "config.json").read_text())["training"]
    assert info["epochs_run"] == 2 and len(info["history"]) == 2  # summary kept in artifact
    assert info["split"] == "loo" and info["resumed_from_epoch"] is None

    more = tmp_path / "more"
    code = _train(csv_path, "sasrec", "--out", str(more), "--set", "epochs=3", *TINY_SASREC,
                  "--checkpoint-dir", str(ckpt), "--resume")  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    assert "trained 3 epochs" in err and "resumed after epoch 2" in err
    info = json.loads((more / "config.json").read_text())["training"]
    assert info["resumed_from_epoch"] == 2 and len(info["history"]) == 3
    model = load_model(more)
    user = model.user_map.to_external([1])[0]
    assert model.recommend([user], k=3).item_ids.shape == (1, 3)
