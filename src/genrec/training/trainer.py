"""The shared trainer (minGPT's ``Trainer``, grown up): AdamW, warm-up, gradient clipping,
bf16 autocast on CUDA, seeding, a progress bar, early stopping on a validation metric
computed by the real evaluator, best-checkpoint restore, atomic checkpoints with exact
resume, and DistributedDataParallel under ``torchrun`` with the same code path.

Checkpoints (``<checkpoint_dir>/last/``) hold ``state.safetensors`` (weights, optimizer
moments, the best weights so far, RNG state) and ``trainer.json`` (epoch, step, metric
history, optimizer hyper-parameters). The folder is replaced atomically after each epoch,
so a ``kill -9`` leaves the previous complete checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from genrec.errors import GenrecError
from genrec.io import atomic_dir, to_jsonable

if TYPE_CHECKING:
    from genrec.data.dataset import Dataset
    from genrec.models.neural import NeuralRecommender

CHECKPOINT_FORMAT = 1


class TrainingError(GenrecError, RuntimeError):
    """Training cannot go on (e.g. the loss became NaN)."""


def _dist_info() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


class Trainer:
    """Trains a :class:`~genrec.models.neural.NeuralRecommender`.

    Args:
        model: the estimator; its ``network_`` is already built on its device.
        checkpoint_dir: write a checkpoint after every epoch (rank 0 only).
        resume: continue from the checkpoint in ``checkpoint_dir`` if there is one.
    """

    def __init__(
        self,
        model: NeuralRecommender,
        *,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
    ):
        self.model = model
        self.cfg = model.config
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.resume = resume
        self.rank, self.world, self.local_rank = _dist_info()
        self.best_metric = -math.inf
        self.best_epoch = -1
        self.bad_evals = 0
        self.epoch = 0
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stopped_early = False
        self.resumed_from: int | None = None

    # ------------------------------------------------------------------ setup
    def _setup_distributed(self) -> None:
        if self.world <= 1:
            return
        if not dist.is_initialized():
            backend = "nccl" if self.model.device_.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend)
        if self.model.device_.type == "cuda":
            self.model.device_ = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(self.model.device_)
            self.model.network_.to(self.model.device_)  # type: ignore[union-attr]

    def _lr(self, step: int) -> float:
        warm = self.cfg.warmup_steps
        return self.cfg.lr * min(1.0, (step + 1) / warm) if warm > 0 else self.cfg.lr

    # ------------------------------------------------------------------ main loop
    def fit(self, dataset: Dataset, valid: Any) -> list[dict[str, Any]]:
        """Run the loop; returns the per-epoch history (loss, validation metric, seconds)."""
        model = self.model
        net = model.network_
        assert net is not None
        self._setup_distributed()
        train_net: torch.nn.Module = net
        if self.world > 1:
            ids = [model.device_.index] if model.device_.type == "cuda" else None
            train_net = torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)
        model.train_net_ = train_net
        optimizer = torch.optim.AdamW(
            net.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay
        )
        if self.resume and self.checkpoint_dir is not None:
            self._load_checkpoint(optimizer)
        use_amp = self.cfg.amp and model.device_.type == "cuda"
        try:
            while self.epoch < self.cfg.epochs and not self.stopped_early:
                self._run_epoch(dataset, valid, optimizer, use_amp)
        finally:
            model.train_net_ = None
        if self.best_state is not None:  # best-checkpoint restore
            net.load_state_dict(self.best_state)
        return self.history

    def _run_epoch(self, dataset: Dataset, valid: Any, optimizer, use_amp: bool) -> None:
        from genrec.data.sequences import epoch_generator

        model, net = self.model, self.model.network_
        assert net is not None
        start = time.perf_counter()
        batches = list(model._epoch_batches(dataset, epoch_generator(self.cfg.seed, self.epoch)))
        if self.world > 1:  # equal batch counts on every rank, or DDP would hang
            n = len(batches) // self.world * self.world
            batches = batches[self.rank : n : self.world]
        net.train()
        total, count, n_seq = 0.0, 0, 0
        bar = self._progress(len(batches))
        for batch in batches:
            batch = {k: v.to(model.device_, non_blocking=True) for k, v in batch.items()}
            for group in optimizer.param_groups:
                group["lr"] = self._lr(self.step)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                loss = model.training_step(batch)
            if not torch.isfinite(loss):
                where = f" (last good checkpoint: {self.checkpoint_dir / 'last'})" if (
                    self.checkpoint_dir and (self.checkpoint_dir / "last").exists()
                ) else ""
                raise TrainingError(
                    f"loss became {loss.item()} at epoch {self.epoch}, step {self.step}; "
                    f"try a lower lr (now {self.cfg.lr}) or grad_clip{where}"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(net.parameters(), self.cfg.grad_clip)
            optimizer.step()
            self.step += 1
            total += float(loss.detach())
            count += 1
            first = next(iter(batch.values()))
            n_seq += int(first.shape[0])
            if bar is not None:
                elapsed = max(time.perf_counter() - start, 1e-9)
                bar[0].update(bar[1], advance=1, loss=total / count, rate=n_seq / elapsed)
        if bar is not None:
            bar[0].stop()
        seconds = time.perf_counter() - start
        record: dict[str, Any] = {
            "epoch": self.epoch,
            "loss": total / max(count, 1),
            "seconds": seconds,
            "sequences_per_second": n_seq * self.world / max(seconds, 1e-9),
        }
        if valid is not None and (self.epoch + 1) % self.cfg.eval_every == 0:
            record[self.cfg.val_metric] = metric = self._validate(valid)
            if metric > self.best_metric:
                self.best_metric, self.best_epoch, self.bad_evals = metric, self.epoch, 0
                self.best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            else:
                self.bad_evals += 1
                if self.cfg.patience and self.bad_evals >= self.cfg.patience:
                    self.stopped_early = True
        self.history.append(record)
        self.epoch += 1
        if self.checkpoint_dir is not None and self.rank == 0:
            self._save_checkpoint(optimizer)

    def _validate(self, valid: Any) -> float:
        """The validation metric, computed by the real evaluator on rank 0 and shared."""
        from genrec.evaluation.evaluator import evaluate

        name, k = self.cfg.val_metric.split("@")
        value = [0.0]
        if self.rank == 0:
            res = evaluate(self.model, valid, stage="valid", ks=[int(k)], metrics=[name],
                           beyond_accuracy=False)
            value = [res.metrics[self.cfg.val_metric]]
        if self.world > 1:
            dist.broadcast_object_list(value, src=0)
        return float(value[0])

    def _progress(self, total: int):
        if not self.cfg.progress or self.rank != 0 or total == 0:
            return None
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(
            TextColumn(f"epoch {self.epoch + 1}/{self.cfg.epochs}"),
            BarColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  {task.fields[rate]:.0f} seq/s"),
            TimeRemainingColumn(),
            transient=True,
        )
        task = progress.add_task("train", total=total, loss=float("nan"), rate=0.0)
        progress.start()
        return progress, task

    def summary(self) -> dict[str, Any]:
        """Facts for the artifact and the report."""
        return {
            "epochs_run": self.epoch,
            "best_epoch": self.best_epoch,
            "best_metric": None if self.best_epoch < 0 else self.best_metric,
            "val_metric": self.cfg.val_metric,
            "stopped_early": self.stopped_early,
            "resumed_from_epoch": self.resumed_from,
            "world_size": self.world,
        }

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, optimizer: torch.optim.Optimizer) -> None:
        from safetensors.torch import save_file

        net = self.model.network_
        assert net is not None and self.checkpoint_dir is not None
        tensors: dict[str, torch.Tensor] = {}
        for k, v in net.state_dict().items():
            tensors[f"model.{k}"] = v.detach().cpu().contiguous()
        if self.best_state is not None:
            for k, v in self.best_state.items():
                tensors[f"best.{k}"] = v.detach().cpu().contiguous()
        opt_state = optimizer.state_dict()
        for idx, state in opt_state["state"].items():
            for name, value in state.items():
                t = value if torch.is_tensor(value) else torch.tensor(value)
                tensors[f"optim.{idx}.{name}"] = t.detach().cpu().contiguous()
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and self.model.device_.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.model.device_)
        meta = {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.name,
            "config": self.model.config.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best_metric": self.best_metric if self.best_epoch >= 0 else None,
            "best_epoch": self.best_epoch,
            "bad_evals": self.bad_evals,
            "stopped_early": self.stopped_early,
            "history": self.history,
            "param_groups": opt_state["param_groups"],
        }
        with atomic_dir(self.checkpoint_dir / "last") as tmp:
            save_file(tensors, str(tmp / "state.safetensors"))
            (tmp / "trainer.json").write_text(json.dumps(to_jsonable(meta)))

    def _load_checkpoint(self, optimizer: torch.optim.Optimizer) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        assert self.checkpoint_dir is not None
        path = self.checkpoint_dir / "last"
        if not (path / "trainer.json").is_file():
            return  # nothing to resume: start from scratch
        try:
            meta = json.loads((path / "trainer.json").read_text())
            tensors = load_file(str(path / "state.safetensors"))
        except (OSError, json.JSONDecodeError, SafetensorError) as exc:
            raise TrainingError(f"checkpoint at {path} is unreadable: {exc}") from exc
        # a resumed run may train longer or show/hide the bar; anything else must match
        free = {"epochs", "progress"}
        own = {k: v for k, v in self.model.config.to_dict().items() if k not in free}
        saved = {k: v for k, v in meta.get("config", {}).items() if k not in free}
        if meta.get("model") != self.model.name or saved != own:
            diff = sorted(k for k in own if saved.get(k) != own[k])
            raise TrainingError(
                f"checkpoint at {path} was written by {meta.get('model')} with a different "
                f"config (differs in {diff}); use another --checkpoint-dir or the same config"
            )
        net = self.model.network_
        assert net is not None
        dev = self.model.device_
        net.load_state_dict({k[6:]: v.to(dev) for k, v in tensors.items() if k.startswith("model.")})
        best = {k[5:]: v.to(dev) for k, v in tensors.items() if k.startswith("best.")}
        self.best_state = best or None
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, idx, name = key.split(".", 2)
                state.setdefault(int(idx), {})[name] = value
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        torch.set_rng_state(tensors["rng.torch"])
        if "rng.cuda" in tensors and dev.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], dev)
        self.epoch, self.step = int(meta["epoch"]), int(meta["step"])
        self.best_epoch, self.bad_evals = int(meta["best_epoch"]), int(meta["bad_evals"])
        self.best_metric = -math.inf if meta["best_metric"] is None else float(meta["best_metric"])
        self.stopped_early = bool(meta["stopped_early"])
        self.history = list(meta["history"])
        self.resumed_from = self.epoch
