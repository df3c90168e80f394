"""The shared trainer (minGPT's ``Trainer``, grown up): AdamW, warm-up, gradient clipping,
bf16 autocast (CUDA; the CPU with ``cpu_amp``), seeding, a progress bar, early stopping on a
validation metric computed by the real evaluator, best-checkpoint restore, atomic
checkpoints with exact resume, and DistributedDataParallel under ``torchrun`` with the same
code path.

Checkpoints (``<checkpoint_dir>/last/``) hold ``state.safetensors`` (weights, optimizer
moments, the best weights so far, RNG state of every process) and ``trainer.json`` (epoch,
step, metric history, optimizer hyper-parameters). The folder is replaced atomically after
each epoch (written beside it, then renamed), so a ``kill -9`` leaves the previous complete
checkpoint; if the kill lands between the two renames of the swap, the previous checkpoint
is found under ``.last.old-*`` and resumed from (see :func:`find_checkpoint`).

Distributed training (DDP)
--------------------------
Launch the ordinary command under ``torchrun``; nothing else changes::

    torchrun --standalone --nproc_per_node=N -m genrec train sasrec --dataset ... --out model
    # several machines: torchrun --nnodes=M --node_rank=R --master_addr=HOST ... -m genrec ...

Each process reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` from torchrun's environment, joins
a process group (NCCL on CUDA, gloo on CPU; one GPU per process, ``cuda:LOCAL_RANK``) and
trains on every N-th batch of the same seeded epoch order (``batch_size`` is per process; a
few trailing batches are dropped so that every rank runs the same number of steps).
Gradients are averaged by DDP, so all ranks hold identical weights. Validation runs on rank 0
with the unwrapped network and its metric is broadcast, so early stopping agrees everywhere;
only rank 0 writes checkpoints (and ``genrec train`` only saves the artifact on rank 0). The
history's ``loss`` is the mean over ranks, ``sequences_per_second`` the sum. A process group
created by the trainer is destroyed when ``fit`` returns; one created by the caller is left
as it was.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch.distributed as dist

from genrec.console import log_line, progress_console
from genrec.data.sequences import epoch_generator
from genrec.data.splitting import Holdout, Split
from genrec.errors import GenrecError
from genrec.evaluation.evaluator import evaluate
from genrec.paths import (
    OutputPathError,
    atomic_dir,
    ensure_writable_dir,
    follow_umask,
    refuse_foreign,
    to_jsonable,
)

if TYPE_CHECKING:
    from genrec.data.dataset import Dataset


class Trainable(Protocol):
    """What the trainer needs of a model (:class:`~genrec.training.neural.NeuralTrainingMixin`
    provides it): its name and config, one epoch of batches, the loss of a batch; and for
    validation, the model is evaluated as a whole (:func:`genrec.evaluate`)."""

    name: str
    config: Any

    def epoch_batches(self, dataset: Dataset, generator: torch.Generator) -> Any: ...

    def training_step(self, net: torch.nn.Module, batch: dict[str, torch.Tensor]) -> Any: ...


CHECKPOINT_FORMAT = 1


class TrainingError(GenrecError, RuntimeError):
    """Training cannot go on (e.g. the loss became NaN)."""


def _dist_info() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return rank, world, local


def process_rank() -> int:
    """This process's rank under ``torchrun`` (0 when not distributed)."""
    return _dist_info()[0]


def find_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder in ``checkpoint_dir``: ``last/``, or the
    previous one left as ``.last.old-*`` by a kill between the two renames of the swap."""
    root = Path(checkpoint_dir)
    if (root / "last" / "trainer.json").is_file():
        return root / "last"
    old = [d for d in root.glob(".last.old-*") if (d / "trainer.json").is_file()]
    return max(old, key=lambda d: d.stat().st_mtime) if old else None


@contextlib.contextmanager
def checkpoint_lock(checkpoint_dir: str | Path) -> Iterator[None]:
    """Hold ``<checkpoint_dir>/.genrec.lock`` while a run writes its checkpoints there, so
    that two runs never share (and clean up after) one checkpoint folder.

    Raises:
        OutputPathError: another live process holds the folder.
    """
    import fcntl

    root = Path(checkpoint_dir)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".genrec.lock", "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise OutputPathError(
                f"checkpoint folder {root} is in use by another training run ({holder}); "
                "wait for it or use another --checkpoint-dir"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def check_checkpoint_dir(
    checkpoint_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    flags: tuple[str, str] = ("resume=True", "overwrite=True"),
) -> Path:
    """Check a checkpoint folder before training writes ``<checkpoint_dir>/last/``.

    ``checkpoint_dir`` must be a folder (created if missing) that can be written. A ``last/``
    inside it must be a genrec checkpoint; one from an earlier run is continued with
    ``resume`` or replaced with ``overwrite``, and is an error otherwise (``flags`` spell the
    two options as the caller's surface does, e.g. ``("--resume", "--overwrite")``).

    Raises:
        OutputPathError: the folder is a file, not writable, its ``last/`` is not a genrec
            checkpoint, or an earlier checkpoint is there without ``resume``/``overwrite``.
    """
    root = Path(checkpoint_dir).expanduser()
    if root.exists() and not root.is_dir():
        raise OutputPathError(
            f"checkpoint folder {root} exists and is a file; choose a folder path"
        )
    last = root / "last"
    if not resume and not overwrite and find_checkpoint(root) is not None:
        raise OutputPathError(
            f"{root} holds a checkpoint of an earlier run; pass {flags[0]} to continue it, "
            f"{flags[1]} to start over, or choose another folder"
        )
    refuse_foreign(last, "checkpoint")
    ensure_writable_dir(root)
    return root


class Trainer:
    """Trains the network of a model with the :class:`~genrec.training.neural.NeuralTrainingMixin`.

    The trainer reads the model (its config, :meth:`epoch_batches`, :meth:`training_step`)
    and evaluates it for validation, but never writes into it: the network and the device
    are given, and the caller keeps the returned history and :meth:`summary`.

    Under ``torchrun`` (``WORLD_SIZE > 1``) the same loop runs with DDP; see the module
    docstring for how to launch it. With ``config.progress`` the trainer prints on rank 0 one
    timestamped line per epoch that ran validation (every epoch without validation data: loss,
    sequences/s, seconds, the validation metric and the best so far), so a long unattended
    run shows its progress in a log; on a terminal a transient progress bar shows the epoch
    in flight as well (no bar in logs and pipes). With ``progress=False`` it prints nothing.

    Args:
        model: the estimator being trained (read only).
        network: its network, already on ``device``; trained in place (the best epoch's
            weights are restored at the end).
        device: the training device (under ``torchrun`` with CUDA: ``cuda:LOCAL_RANK``).
        checkpoint_dir: write a checkpoint after every epoch (rank 0 only) to its ``last/``
            folder. The folder may hold other files; a ``last/`` that is not a genrec
            checkpoint is never touched (:class:`~genrec.paths.OutputPathError`).
        resume: continue from the checkpoint in ``checkpoint_dir`` if there is one.
        overwrite: start over, replacing a checkpoint of an earlier run in
            ``checkpoint_dir`` (without it, or ``resume``, such a checkpoint is an error).
        on_epoch_end: called as ``on_epoch_end(epoch, record)`` after every epoch (0-based
            epoch; ``record`` is that epoch's history entry, with the validation metric when
            it was evaluated). An exception it raises (e.g. Optuna's ``TrialPruned``) stops
            training and propagates out of ``fit``.
    """

    def __init__(
        self,
        model: Trainable,
        network: torch.nn.Module,
        device: torch.device,
        *,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        overwrite: bool = False,
        on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
    ):
        self.model = model
        self.network = network
        self.device = device
        self.overwrite = overwrite
        self.on_epoch_end = on_epoch_end
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
        self.out_of_time = False
        self.resumed_from: int | None = None
        self._owns_process_group = False

    # ------------------------------------------------------------------ setup
    def _setup_distributed(self) -> None:
        if self.world <= 1:
            return
        if not dist.is_available():
            raise TrainingError(
                f"WORLD_SIZE={self.world} but this torch build has no torch.distributed"
            )
        if self.device.type == "cuda":
            if self.device.index != self.local_rank:
                raise TrainingError(
                    f"under torchrun, rank {self.rank} must train on cuda:{self.local_rank}, "
                    f"got {self.device}; build the network on training_device(config)"
                )
            torch.cuda.set_device(self.device)
        if not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            dist.init_process_group(backend=backend)
            self._owns_process_group = True
        if dist.get_world_size() != self.world:
            raise TrainingError(
                f"WORLD_SIZE={self.world} but the process group has {dist.get_world_size()}"
            )
        # same initial weights everywhere (DDP also broadcasts rank 0's), but each rank
        # draws its own dropout masks
        torch.manual_seed(int(self.cfg.seed) * 1_000_003 + 7919 * (self.rank + 1))

    def _teardown_distributed(self) -> None:
        if self._owns_process_group and dist.is_initialized():
            dist.destroy_process_group()
        self._owns_process_group = False

    def _lr(self, step: int) -> float:
        warm = self.cfg.warmup_steps
        return self.cfg.lr * min(1.0, (step + 1) / warm) if warm > 0 else self.cfg.lr

    # ------------------------------------------------------------------ main loop
    def fit(self, dataset: Dataset, valid: Any) -> list[dict[str, Any]]:
        """Run the loop; returns the per-epoch history (loss, validation metric, seconds)."""
        net = self.network
        lock = contextlib.nullcontext()
        if self.checkpoint_dir is not None and self.rank == 0:
            check_checkpoint_dir(self.checkpoint_dir, resume=self.resume, overwrite=self.overwrite)
            lock = checkpoint_lock(self.checkpoint_dir)
        with lock:
            return self._fit_locked(dataset, valid, net)

    def _fit_locked(self, dataset: Dataset, valid: Any, net: torch.nn.Module) -> list[dict]:
        self._setup_distributed()
        try:
            fused = self.cfg.fused_adamw and self.device.type in ("cpu", "cuda")
            optimizer = torch.optim.AdamW(
                net.parameters(),
                lr=self.cfg.lr,
                weight_decay=self.cfg.weight_decay,
                betas=(0.9, self.cfg.adam_beta2),
                **({"fused": True} if fused else {}),
            )
            if self.resume and self.checkpoint_dir is not None:
                self._load_checkpoint(optimizer)  # before DDP, which broadcasts rank 0's
            train_net: torch.nn.Module = net
            if self.world > 1:
                ids = [self.device.index] if self.device.type == "cuda" else None
                train_net = torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)
            kind = self.device.type
            use_amp = self.cfg.amp if kind == "cuda" else kind == "cpu" and self.cfg.cpu_amp
            valid = self._validation_users(valid)  # drawn once: the same sample every epoch
            started = time.perf_counter()
            budget = self.cfg.time_budget_minutes * 60.0
            while self.epoch < self.cfg.epochs and not self.stopped_early:
                self._run_epoch(dataset, valid, optimizer, use_amp, train_net)
                if budget and time.perf_counter() - started >= budget:
                    self.out_of_time = True  # a fair, stated budget: the best epoch is kept
                    break
        finally:
            self._teardown_distributed()
        if self.best_state is not None:  # best-checkpoint restore
            net.load_state_dict(self.best_state)
        return self.history

    def _run_epoch(
        self,
        dataset: Dataset,
        valid: Any,
        optimizer: torch.optim.Optimizer,
        use_amp: bool,
        train_net: torch.nn.Module,
    ) -> None:
        model, net = self.model, self.network
        start = time.perf_counter()
        batches = list(model.epoch_batches(dataset, epoch_generator(self.cfg.seed, self.epoch)))
        if self.world > 1:  # equal batch counts on every rank, or DDP would hang
            n = len(batches) // self.world * self.world
            if n == 0:
                raise TrainingError(
                    f"only {len(batches)} training batches for {self.world} processes; "
                    "lower batch_size or use fewer processes"
                )
            batches = batches[self.rank : n : self.world]
        net.train()
        total, count, n_seq = 0.0, 0, 0
        bar = self._progress(len(batches))
        try:
            for batch in batches:
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                for group in optimizer.param_groups:
                    group["lr"] = self._lr(self.step)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_amp):
                    loss = model.training_step(train_net, batch)
                value = loss.detach().float()
                if self.world > 1:  # every rank sees a NaN anywhere, and the mean loss
                    value = value.clone()
                    dist.all_reduce(value)
                    value /= self.world
                value = float(value)
                if not math.isfinite(value):
                    self._raise_not_finite(value)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.cfg.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(net.parameters(), self.cfg.grad_clip)
                optimizer.step()
                self.step += 1
                total += value
                count += 1
                first = next(iter(batch.values()))
                n_seq += int(first.shape[0])
                if bar is not None:
                    elapsed = max(time.perf_counter() - start, 1e-9)
                    rate = n_seq * self.world / elapsed
                    bar[0].update(bar[1], advance=1, loss=total / count, rate=rate)
        finally:
            if bar is not None:
                bar[0].stop()
        seconds = time.perf_counter() - start
        n_batches = count
        if self.world > 1:  # throughput of the whole job: sequences of all ranks / slowest
            sums = torch.tensor([n_seq, count], dtype=torch.float64)
            slowest = torch.tensor([seconds], dtype=torch.float64)
            dist.all_reduce(sums)
            dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
            n_seq, n_batches, seconds = int(sums[0]), int(sums[1]), float(slowest[0])
        record: dict[str, Any] = {
            "epoch": self.epoch,
            "loss": total / max(count, 1),
            "seconds": seconds,
            "sequences": n_seq,
            "batches": n_batches,
            "sequences_per_second": n_seq / max(seconds, 1e-9),
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
        self._log_epoch(record, has_valid=valid is not None)
        self.epoch += 1
        if self.checkpoint_dir is not None:
            self._save_checkpoint(optimizer)  # every rank sends its RNG state; rank 0 writes
        if self.on_epoch_end is not None:
            self.on_epoch_end(self.epoch - 1, record)

    def _raise_not_finite(self, value: float) -> None:
        where = ""
        if self.checkpoint_dir is not None:
            found = find_checkpoint(self.checkpoint_dir)
            if found is not None:
                done = json.loads((found / "trainer.json").read_text()).get("epoch")
                where = f"; the last good checkpoint (after epoch {done}) is at {found}"
            else:
                where = f"; no checkpoint was written to {self.checkpoint_dir} yet"
        raise TrainingError(
            f"loss became {value} at epoch {self.epoch + 1}, step {self.step}; "
            f"try a lower lr (now {self.cfg.lr}) or grad_clip{where}"
        )

    def _validation_users(self, valid: Any) -> Any:
        """``valid``, or a seeded sample of ``val_users`` of its users when that is set."""

        n = self.cfg.val_users
        if not n or not isinstance(valid, (Split, Holdout)):
            return valid
        holdout = valid.valid if isinstance(valid, Split) else valid
        return valid if holdout is None else holdout.sample(n, seed=self.cfg.seed)

    def _validate(self, valid: Any) -> float:
        """The validation metric, computed by the real evaluator on rank 0 and shared."""

        name, k = self.cfg.val_metric.split("@")
        value = [0.0]
        if self.rank == 0:  # scores with the unwrapped network_, in eval mode
            res = evaluate(
                self.model,
                valid,
                stage="valid",
                ks=[int(k)],
                metrics=[name],
                beyond_accuracy=False,
            )
            value = [res.metrics[self.cfg.val_metric]]
        if self.world > 1:
            dist.broadcast_object_list(value, src=0)
        return float(value[0])

    def _log_epoch(self, record: dict[str, Any], has_valid: bool) -> None:
        """One timestamped line per validated epoch (per epoch without validation data): kept
        on a terminal above the transient bar, and the only output in logs and pipes."""
        metric = self.cfg.val_metric
        validated = metric in record
        if not self.cfg.progress or self.rank != 0 or (has_valid and not validated):
            return
        name = getattr(self.model, "name", type(self.model).__name__)
        msg = (
            f"{name}: epoch {record['epoch'] + 1}/{self.cfg.epochs} loss {record['loss']:.4f}, "
            f"{record['sequences_per_second']:,.0f} seq/s, {record['seconds']:.1f} s"
        )
        if validated:
            msg += (
                f"; {metric} {record[metric]:.4f} "
                f"(best {self.best_metric:.4f} at epoch {self.best_epoch + 1})"
            )
        log_line(msg)

    def _progress(self, total: int):
        if not self.cfg.progress or self.rank != 0 or total == 0:
            return None
        console = progress_console()
        if not console.is_terminal:  # CI logs, pipes, files: no bar at all
            return None
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(
            TextColumn(f"epoch {self.epoch + 1}/{self.cfg.epochs}"),
            BarColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  {task.fields[rate]:.0f} seq/s"),
            TimeRemainingColumn(),
            console=console,
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
            "val_users": self.cfg.val_users or None,  # None: all validation users
            "stopped_early": self.stopped_early,
            "out_of_time": self.out_of_time,
            "resumed_from_epoch": self.resumed_from,
            "world_size": self.world,
        }

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, optimizer: torch.optim.Optimizer) -> None:
        from safetensors.torch import save_file

        rng = torch.get_rng_state()
        all_rng = [rng]
        if self.world > 1:
            all_rng = [torch.empty(0, dtype=torch.uint8)] * self.world
            dist.all_gather_object(all_rng, rng)
        if self.rank != 0:
            return
        net = self.network
        assert self.checkpoint_dir is not None
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
        tensors["rng.torch"] = rng
        for r, state in enumerate(all_rng[1:], start=1):
            tensors[f"rng.torch.rank{r}"] = state.cpu().contiguous()
        if torch.cuda.is_available() and self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        meta = {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.name,
            "config": self.model.config.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "world_size": self.world,
            "best_metric": self.best_metric if self.best_epoch >= 0 else None,
            "best_epoch": self.best_epoch,
            "bad_evals": self.bad_evals,
            "stopped_early": self.stopped_early,
            "history": self.history,
            "param_groups": opt_state["param_groups"],
        }
        root = self.checkpoint_dir
        with atomic_dir(root / "last", kind="checkpoint") as tmp:
            save_file(tensors, str(tmp / "state.safetensors"))
            follow_umask(tmp / "state.safetensors")  # safetensors creates it 0600
            _write_synced(tmp / "trainer.json", json.dumps(to_jsonable(meta)))
            _fsync(tmp / "state.safetensors")
        # leftovers of a run killed mid-swap (ours are gone once atomic_dir returns)
        for stale in [*root.glob(".last.old-*"), *root.glob(".last.tmp-*")]:
            shutil.rmtree(stale, ignore_errors=True)

    def _load_checkpoint(self, optimizer: torch.optim.Optimizer) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        assert self.checkpoint_dir is not None
        path = find_checkpoint(self.checkpoint_dir)
        if path is None:
            return  # nothing to resume: start from scratch
        try:
            meta = json.loads((path / "trainer.json").read_text())
            tensors = load_file(str(path / "state.safetensors"))
        except (OSError, json.JSONDecodeError, SafetensorError) as exc:
            raise TrainingError(f"checkpoint at {path} is unreadable: {exc}") from exc
        # a resumed run may train longer or show/hide the bar; anything else must match
        free = {"epochs", "progress", "time_budget_minutes"}
        own = {k: v for k, v in self.model.config.to_dict().items() if k not in free}
        # fields added to the config class after the checkpoint was written: their defaults
        defaults = type(self.model.config)().to_dict()
        recorded = type(self.model.config).current_keys(meta.get("config", {}))  # old names
        saved = {**defaults, **recorded}
        saved = {k: v for k, v in saved.items() if k not in free}
        if meta.get("model") != self.model.name or saved != own:
            diff = sorted(k for k in {*own, *saved} if saved.get(k) != own.get(k))
            raise TrainingError(
                f"checkpoint at {path} was written by {meta.get('model')} with a different "
                f"config (differs in {diff}); use another --checkpoint-dir or the same config"
            )
        net = self.network
        dev = self.device
        weights = {k[6:]: v.to(dev) for k, v in tensors.items() if k.startswith("model.")}
        net.load_state_dict(weights)
        best = {k[5:]: v.to(dev) for k, v in tensors.items() if k.startswith("best.")}
        self.best_state = best or None
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, idx, name = key.split(".", 2)
                state.setdefault(int(idx), {})[name] = value
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        own_rng = f"rng.torch.rank{self.rank}"
        same_world = int(meta.get("world_size", 1)) == self.world
        torch.set_rng_state(tensors[own_rng if same_world and own_rng in tensors else "rng.torch"])
        if "rng.cuda" in tensors and dev.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], dev)
        self.epoch, self.step = int(meta["epoch"]), int(meta["step"])
        self.best_epoch, self.bad_evals = int(meta["best_epoch"]), int(meta["bad_evals"])
        self.best_metric = -math.inf if meta["best_metric"] is None else float(meta["best_metric"])
        self.stopped_early = bool(meta["stopped_early"])
        self.history = list(meta["history"])
        self.resumed_from = self.epoch


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
