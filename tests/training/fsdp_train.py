"""Run under ``torchrun --nproc_per_node=2``: SASRec's network, sharded with FSDP2 by
:func:`genrec.distributed.fully_shard_network` (gloo, CPU), takes a few SGD steps on its half
of a fixed batch; beside it, an unsharded copy in the same process takes the same steps on
the whole batch. Writes ``OUTDIR/rank{r}.json``: the shard sizes (weights and Adam moments),
the gradient and weight differences against the copy, the losses of both, and the scores of
``score_last`` (a registered forward method) against the copy's.

Usage: ``python -m torch.distributed.run --standalone --nproc_per_node=2 fsdp_train.py OUTDIR``
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from genrec.distributed import fully_shard_network
from genrec.models.sasrec import SASRecConfig, SASRecNetwork

N_ITEMS = 101  # 102 table rows (row 0 = padding): 51 per rank
STEPS = 4


def main(out: Path) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)  # the same initial weights on every rank
    config = SASRecConfig(embedding_dim=16, n_blocks=1, n_heads=2, max_seq_len=8, dropout=0.0)
    net = SASRecNetwork(N_ITEMS, config)
    reference = copy.deepcopy(net)  # unsharded, trained on the whole batch
    g = torch.Generator().manual_seed(1)
    seq = torch.randint(1, N_ITEMS + 1, (8, 8), generator=g)
    targets = torch.randint(1, N_ITEMS + 1, (8, 8), generator=g)
    seq_parts, target_parts = seq.chunk(world), targets.chunk(world)

    def whole_batch_loss() -> torch.Tensor:  # the mean of the ranks' losses
        return sum(reference(s, t) for s, t in zip(seq_parts, target_parts)) / world

    fully_shard_network(net, forward_methods=("score_last",))
    # SGD with momentum: its update is linear in the gradient, so the sharded run and the
    # copy stay equal up to float rounding (Adam's first steps are lr * sign(gradient): a
    # gradient of 1e-9 against -1e-9 moves a weight by 2 lr, which says nothing of sharding).
    opt = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9)
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.5, momentum=0.9)
    losses, ref_losses, grad_diffs = [], [], []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = net(seq_parts[rank], target_parts[rank])
        loss.backward()  # gradients reduce-scattered (averaged) over the ranks
        mean = loss.detach().clone()
        dist.all_reduce(mean)
        losses.append(mean.item() / world)
        ref_opt.zero_grad()
        ref = whole_batch_loss()
        ref.backward()
        ref_losses.append(ref.item())
        grad_diffs.append(
            max(
                (p.grad.full_tensor() - reference.get_parameter(name).grad).abs().max().item()
                for name, p in net.named_parameters()
            )
        )
        opt.step()
        ref_opt.step()

    table = net.item_emb.weight
    diffs = {
        name: (p.full_tensor() - reference.get_parameter(name)).abs().max().item()
        for name, p in net.named_parameters()
    }
    with torch.no_grad():
        score_diff = (net.score_last(seq) - reference.score_last(seq)).abs().max().item()

    adam = torch.optim.Adam(net.parameters(), lr=0.01)  # its two moments are sharded too
    adam.zero_grad()
    net(seq_parts[rank], target_parts[rank]).backward()
    adam.step()
    info = {
        "table_type": type(table).__name__,
        "table_local_rows": table.to_local().shape[0],
        "table_rows": table.shape[0],
        "local_numel": sum(p.to_local().numel() for p in net.parameters()),
        "numel": sum(p.numel() for p in net.parameters()),
        "adam_local_numel": sum(
            v.to_local().numel()
            for state in adam.state.values()
            for k, v in state.items()
            if k in ("exp_avg", "exp_avg_sq")
        ),
        "max_param_diff": max(diffs.values()),
        "param_diffs": diffs,
        "grad_diffs": grad_diffs,
        "score_diff": score_diff,
        "losses": losses,
        "ref_losses": ref_losses,
    }
    (out / f"rank{rank}.json").write_text(json.dumps(info))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
