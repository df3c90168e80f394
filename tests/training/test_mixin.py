"""The training mixin: every epoch-trained model computes its loss through the network the
trainer hands it (under DDP, the wrapper that averages gradients), never around it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

import genrec
from genrec.data.sequences import epoch_generator
from genrec.testing import make_synthetic_dataset

TINY_DIR = Path(__file__).resolve().parents[1] / "models" / "tiny"


def _tiny(name: str) -> dict:
    path = TINY_DIR / f"{name}.yaml"
    return (yaml.safe_load(path.read_text()) or {}).get("config", {}) if path.is_file() else {}


class Spy(nn.Module):
    """Wraps a network like DDP does and counts the forward passes through it."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.calls = 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)


EPOCH_TRAINED = [n for n in genrec.list_models() if genrec.get_model(n).epoch_trained]


@pytest.mark.parametrize("name", EPOCH_TRAINED)
def test_training_step_forwards_through_the_given_net(name):
    if name == "cvae":
        pytest.skip("cvae needs item content features (covered by its own tests)")
    split = genrec.split_dataset(make_synthetic_dataset(n_users=40, n_items=25, seed=1), "loo")
    cls = genrec.get_model(name)
    model = cls(**{**_tiny(name), "epochs": 1, "progress": False}).fit(split.train)
    batch = next(iter(model.epoch_batches(split.train, epoch_generator(0, 0))))
    spy = Spy(model.network_)
    loss = model.training_step(spy, batch)
    assert spy.calls >= 1, f"{name}.training_step bypassed the network it was given"
    assert torch.is_tensor(loss) and loss.dim() == 0
