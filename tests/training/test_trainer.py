from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from toy import Toy

import genrec
import genrec.console
from genrec.errors import ConfigError
from genrec.testing import make_synthetic_dataset
from genrec.training import TrainingError, find_checkpoint


@pytest.fixture(scope="module")
def split():
    return genrec.split_dataset(make_synthetic_dataset(n_users=80, n_items=40, seed=3), "loo")


def _weights(model):
    return {k: v.detach().clone() for k, v in model.network_.state_dict().items()}


def test_trains_and_beats_random(split):
    model = Toy(epochs=15, lr=0.05, progress=False, patience=0).fit(split.train, split.valid)
    hist = model.training_history_
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert "ndcg@10" in hist[0] and hist[0]["sequences_per_second"] > 0
    res = genrec.evaluate(model, split, ks=[10])
    assert res.metrics["recall@10"] > 0.5  # random is ~10/33


def test_early_stopping_restores_best(split):
    model = Toy(epochs=40, lr=0.3, patience=2, progress=False).fit(split.train, split.valid)
    info = model.training_info_
    assert info["stopped_early"] and info["epochs_run"] < 40
    best = max(h["ndcg@10"] for h in model.training_history_)
    assert info["best_metric"] == pytest.approx(best)
    res = genrec.evaluate(model, split, stage="valid", ks=[10], metrics=["ndcg"])
    assert res.metrics["ndcg@10"] == pytest.approx(best)


def test_same_seed_same_weights(split):
    a = Toy(epochs=3, progress=False, seed=1).fit(split.train, split.valid)
    b = Toy(epochs=3, progress=False, seed=1).fit(split.train, split.valid)
    c = Toy(epochs=3, progress=False, seed=2).fit(split.train, split.valid)
    wa, wb, wc = _weights(a), _weights(b), _weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


def test_fused_adamw_trains_like_the_default_loop(split, monkeypatch):
    """fused_adamw (default) builds torch's fused AdamW; its weights match the default
    implementation's after the same epochs (same seed) up to float rounding."""
    made = []
    real = torch.optim.AdamW

    def spy(*args, **kwargs):
        made.append(kwargs.get("fused"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", spy)
    a = Toy(epochs=3, progress=False, seed=1).fit(split.train, split.valid)
    b = Toy(epochs=3, progress=False, seed=1, fused_adamw=False).fit(split.train, split.valid)
    assert made == [True, None]
    wa, wb = _weights(a), _weights(b)
    assert all(torch.allclose(wa[k].float(), wb[k].float(), atol=1e-5) for k in wa)
    assert any(not torch.equal(wa[k], wa[k] * 0) for k in wa)


def test_resume_can_extend_training_but_not_change_config(split, tmp_path):
    full = Toy(epochs=6, progress=False, patience=0).fit(split.train, split.valid)
    ckpt = tmp_path / "ckpt"
    Toy(epochs=3, progress=False, patience=0).fit(split.train, split.valid, checkpoint_dir=ckpt)
    with pytest.raises(TrainingError, match="differs in \\['lr'\\]"):
        Toy(epochs=6, lr=0.5, progress=False, patience=0).fit(
            split.train, split.valid, checkpoint_dir=ckpt, resume=True
        )
    longer = Toy(epochs=6, progress=False, patience=0)
    longer.fit(split.train, split.valid, checkpoint_dir=ckpt, resume=True)
    assert longer.training_info_["resumed_from_epoch"] == 3
    wa, wb = _weights(full), _weights(longer)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_after_interrupt_identical(split, tmp_path):
    ckpt = tmp_path / "ckpt"
    full = Toy(epochs=6, batch_size=16, progress=False, patience=0).fit(split.train, split.valid)

    class BoomError(Exception):
        pass

    model = Toy(epochs=6, batch_size=16, progress=False, patience=0)
    calls = {"n": 0}
    original = Toy.training_step

    def flaky(self, net, batch):
        calls["n"] += 1
        if calls["n"] == 13:  # 5 batches per epoch: dies in the middle of the third epoch
            raise BoomError
        return original(self, net, batch)

    Toy.training_step = flaky
    try:
        with pytest.raises(BoomError):
            model.fit(split.train, split.valid, checkpoint_dir=ckpt)
    finally:
        Toy.training_step = original
    resumed = Toy(epochs=6, batch_size=16, progress=False, patience=0)
    resumed.fit(split.train, split.valid, checkpoint_dir=ckpt, resume=True)
    assert resumed.training_info_["resumed_from_epoch"] == 2
    wa, wb = _weights(full), _weights(resumed)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert [h["loss"] for h in resumed.training_history_] == [
        h["loss"] for h in full.training_history_
    ]


def test_nan_loss_stops_with_clear_message(split, tmp_path):
    model = Toy(epochs=2, progress=False)
    original = Toy.training_step
    Toy.training_step = lambda self, net, batch: original(self, net, batch) * float("nan")
    try:
        with pytest.raises(TrainingError, match="loss became nan"):
            model.fit(split.train, split.valid, checkpoint_dir=tmp_path / "c")
    finally:
        Toy.training_step = original


def test_save_load_round_trip_unregistered_is_clear(split, tmp_path):
    model = Toy(epochs=1, progress=False).fit(split.train)
    scores = model.recommend([split.train.user_map.to_external([1])[0]], k=5).scores
    assert np.isfinite(scores).all()


def test_config_validation():
    with pytest.raises(ConfigError, match="val_metric"):
        Toy(val_metric="ndcg")
    with pytest.raises(ConfigError, match="epochs must be > 0"):
        Toy(epochs=0)
    with pytest.raises(ConfigError, match="resume=True needs a checkpoint_dir"):
        Toy().fit(make_synthetic_dataset(n_users=10, n_items=8, seed=0), resume=True)


def test_nan_keeps_last_good_checkpoint_loadable(split, tmp_path):
    ckpt = tmp_path / "ckpt"
    cfg = dict(epochs=5, batch_size=16, progress=False, patience=0)  # 5 batches per epoch
    model = Toy(**cfg)
    calls = {"n": 0}
    original = Toy.training_step

    def nan_in_third_epoch(self, net, batch):
        calls["n"] += 1
        loss = original(self, net, batch)
        return loss * float("nan") if calls["n"] > 10 else loss

    Toy.training_step = nan_in_third_epoch
    try:
        with pytest.raises(TrainingError) as exc:
            model.fit(split.train, split.valid, checkpoint_dir=ckpt)
    finally:
        Toy.training_step = original
    message = str(exc.value)
    assert "loss became nan at epoch 3" in message
    assert str(ckpt / "last") in message and "after epoch 2" in message
    assert find_checkpoint(ckpt) == ckpt / "last"
    meta = json.loads((ckpt / "last" / "trainer.json").read_text())
    assert meta["epoch"] == 2 and len(meta["history"]) == 2
    mask = os.umask(0)
    os.umask(mask)  # the weights follow the umask, not safetensors' 0600
    assert (ckpt / "last" / "state.safetensors").stat().st_mode & 0o777 == 0o666 & ~mask
    # loadable, and exactly the weights of 2 good epochs
    two = Toy(**{**cfg, "epochs": 2}).fit(split.train, split.valid)
    resumed = Toy(**{**cfg, "epochs": 2})
    resumed.fit(split.train, split.valid, checkpoint_dir=ckpt, resume=True)
    assert resumed.training_info_["resumed_from_epoch"] == 2
    wa, wb = _weights(two), _weights(resumed)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_nan_without_checkpoint_says_so(split, tmp_path):
    original = Toy.training_step
    Toy.training_step = lambda self, net, batch: original(self, net, batch) * float("nan")
    try:
        with pytest.raises(TrainingError, match="no checkpoint was written"):
            Toy(epochs=2, progress=False).fit(split.train, checkpoint_dir=tmp_path / "c")
    finally:
        Toy.training_step = original


def test_silent_without_progress(split, capfd):
    Toy(epochs=2, progress=False).fit(split.train, split.valid)
    assert capfd.readouterr() == ("", "")


def test_logs_one_line_per_validated_epoch_when_not_a_terminal(split, monkeypatch):
    import io

    from rich.console import Console

    from genrec.training import trainer

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=200)
    monkeypatch.setattr(genrec.console, "progress_console", lambda: console)
    monkeypatch.setattr(trainer, "progress_console", lambda: console)
    model = Toy(epochs=4, eval_every=2, patience=0, progress=True)
    model.fit(split.train, split.valid)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2, lines  # epochs 2 and 4 ran validation; no bar in a log
    hist = model.training_history_
    for line, rec in zip(lines, (hist[1], hist[3])):
        assert f"epoch {rec['epoch'] + 1}/4 loss {rec['loss']:.4f}" in line
        assert f"ndcg@10 {rec['ndcg@10']:.4f} (best " in line
    buf.truncate(0), buf.seek(0)
    Toy(epochs=3, progress=True).fit(split.train)  # no validation data: every epoch
    assert [ln.split("] ", 1)[1].split(" loss")[0] for ln in buf.getvalue().splitlines()] == [
        f"toy: epoch {e}/3" for e in (1, 2, 3)
    ]


def test_progress_bar_on_a_terminal_is_transient(split, monkeypatch):
    import io

    from rich.console import Console

    from genrec.training import trainer

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=100)
    monkeypatch.setattr(genrec.console, "progress_console", lambda: console)
    monkeypatch.setattr(trainer, "progress_console", lambda: console)
    Toy(epochs=2, progress=True).fit(split.train, split.valid)
    assert "epoch 1/2" in buf.getvalue() or "epoch 2/2" in buf.getvalue()
    assert "toy: epoch 2/2 loss" in buf.getvalue()  # the validated epoch's line stays


def test_history_counts_sequences(split):
    model = Toy(epochs=1, batch_size=16, progress=False).fit(split.train)
    (rec,) = model.training_history_
    assert rec["sequences"] == 80 and rec["batches"] == 5
    assert rec["sequences_per_second"] == pytest.approx(rec["sequences"] / rec["seconds"])


def test_time_budget_stops_after_the_epoch(split):
    model = Toy(epochs=500, progress=False, patience=0, time_budget_minutes=1e-6)
    model.fit(split.train, split.valid)
    info = model.training_info_
    assert info["out_of_time"] and info["epochs_run"] == 1
    with pytest.raises(ConfigError, match="time_budget_minutes must be >= 0"):
        Toy(time_budget_minutes=-1)


def test_adam_beta2_reaches_the_optimizer_and_is_validated(split, monkeypatch) -> None:
    from genrec.models.sasrec import SASRecConfig

    with pytest.raises(ConfigError, match="adam_beta2"):
        SASRecConfig(adam_beta2=1.0)
    seen: list[tuple[float, float]] = []
    real = torch.optim.AdamW

    def spy(params, **kw):
        seen.append(kw["betas"])
        return real(params, **kw)

    monkeypatch.setattr(torch.optim, "AdamW", spy)
    Toy(epochs=1, progress=False, adam_beta2=0.98).fit(split.train, split.valid)
    assert seen == [(0.9, 0.98)]


def test_val_users_validates_on_a_fixed_sample(split, monkeypatch) -> None:
    import genrec.training.trainer as ev

    real, seen = ev.evaluate, []

    def spy(model, holdout, **kw):
        seen.append(tuple(holdout.users))
        return real(model, holdout, **kw)

    monkeypatch.setattr(ev, "evaluate", spy)
    model = Toy(epochs=3, progress=False, patience=0, val_users=20).fit(split.train, split.valid)
    assert len(seen) == 3 and len(set(seen)) == 1  # one sample, reused every epoch
    assert model.training_info_["val_users"] == 20
    assert len(seen[0]) == 20 and set(seen[0]) <= set(split.valid.users.tolist())
    # best_metric is the sampled value, which differs from the full validation metric
    full = real(model, split, stage="valid", ks=[10], metrics=["ndcg"]).metrics["ndcg@10"]
    assert model.training_info_["best_metric"] != pytest.approx(full)
    seen.clear()
    Toy(epochs=1, progress=False, val_users=10_000).fit(split.train, split.valid)
    assert len(seen[0]) == len(split.valid)  # more than there are: all of them
    with pytest.raises(ConfigError, match="val_users"):
        Toy(val_users=-1)


def test_holdout_sample(split) -> None:
    h = split.valid
    s = h.sample(7, seed=3)
    assert len(s) == 7 and s.history is h.history
    rows = np.searchsorted(h.users, s.users)
    assert (h.users[rows] == s.users).all()
    assert (h.targets[rows] != s.targets).nnz == 0
    assert tuple(h.sample(7, seed=3).users) == tuple(s.users)
    assert h.sample(len(h) + 5) is h
    for bad in (0, -1):  # val_users=0 means "all" in the config; sample(0) is an error
        with pytest.raises(ConfigError, match="n >= 1"):
            h.sample(bad)


def test_resume_a_checkpoint_written_before_a_config_field_existed(split, tmp_path):
    """A checkpoint whose config lacks a field added later (e.g. val_users) resumes when the
    run uses that field's default, and is refused when it does not."""
    ckpt = tmp_path / "ckpt"
    Toy(epochs=2, progress=False, patience=0).fit(split.train, split.valid, checkpoint_dir=ckpt)
    meta_path = find_checkpoint(ckpt) / "trainer.json"
    meta = json.loads(meta_path.read_text())
    del meta["config"]["val_users"], meta["config"]["adam_beta2"]
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(TrainingError, match="differs in \\['val_users'\\]"):
        Toy(epochs=3, progress=False, patience=0, val_users=5).fit(
            split.train, split.valid, checkpoint_dir=ckpt, resume=True
        )
    model = Toy(epochs=3, progress=False, patience=0)
    model.fit(split.train, split.valid, checkpoint_dir=ckpt, resume=True)
    assert model.training_info_["resumed_from_epoch"] == 2


@pytest.mark.parametrize("cpu_amp", [False, True])
def test_cpu_amp_autocasts_training_only(split, monkeypatch, cpu_amp) -> None:
    seen: dict[str, bool] = {}
    train_step, score = Toy.training_step, Toy._score_network

    def step(self, net, batch):
        seen["train"] = torch.is_autocast_enabled("cpu")
        return train_step(self, net, batch)

    def scoring(self, batch):
        seen["eval"] = torch.is_autocast_enabled("cpu")
        return score(self, batch)

    monkeypatch.setattr(Toy, "training_step", step)
    monkeypatch.setattr(Toy, "_score_network", scoring)
    model = Toy(epochs=2, progress=False, device="cpu", cpu_amp=cpu_amp)
    model.fit(split.train, split.valid)
    assert seen == {"train": cpu_amp, "eval": False}
    assert all(np.isfinite(r["loss"]) for r in model.training_history_)
