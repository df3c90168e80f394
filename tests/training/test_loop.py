"""The small shared minibatch loop (genrec.training.loop) of the helper networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genrec.training.loop import minibatch_epochs


def test_loop_steps_once_per_batch_and_weights_the_epoch_mean():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.tensor([3.0]))
    opt = torch.optim.SGD([w], lr=0.1)
    seen, epochs_seen, after = [], [], []

    def step(rows):
        seen.append(list(rows))
        if 0 in rows and len(seen) > 3:  # a batch with nothing to learn: no step
            return None
        return (w**2).sum(), float(len(rows))

    losses = minibatch_epochs(
        opt, n_rows=5, batch_size=2, epochs=2, permutation=np.arange, step=step,
        clip_params=[w], clip_norm=0.5, after_step=lambda: after.append(float(w)),
        on_epoch_end=lambda e, loss: epochs_seen.append((e, loss)),
    )  # fmt: skip
    assert seen == [[0, 1], [2, 3], [4], [0, 1], [2, 3], [4]]
    assert len(after) == 5  # one batch skipped
    assert [e for e, _ in epochs_seen] == [0, 1] and len(losses) == 2
    # every step moves w by lr x the clipped gradient (norm 0.5)
    assert after[0] == pytest.approx(3.0 - 0.05)
    assert losses[0] == pytest.approx((3.0**2 * 2 + 2.95**2 * 2 + 2.9**2) / 5, rel=1e-5)


def test_loop_refuses_bad_sizes():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="batch_size"):
        minibatch_epochs(opt, n_rows=3, batch_size=0, epochs=1, permutation=np.arange,
                         step=lambda r: None)  # fmt: skip
