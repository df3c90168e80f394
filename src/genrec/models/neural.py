"""Base of every torch model: :class:`NeuralConfig` (training fields shared by all neural
models) and :class:`NeuralRecommender` (network building, scoring on the right device,
weights as plain tensors). The loop itself lives in :mod:`genrec.training.trainer`.

A subclass implements:

* ``_build_network() -> nn.Module``: the pure network (nanoGPT style: no data, no metrics);
* ``_epoch_batches(dataset, generator) -> Iterable[dict[str, Tensor]]``: one epoch of
  training batches, ordered by ``generator`` only (resumable);
* ``training_step(batch) -> Tensor``: the scalar loss of one batch; it must call
  ``self.train_net_`` (the network, wrapped in DDP under ``torchrun``) for its forward pass;
* ``_score_network(batch: HistoryBatch) -> Tensor``: scores ``(B, n_items + 1)``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from genrec.config import ModelConfig, field
from genrec.data.dataset import Dataset, HistoryBatch
from genrec.errors import ConfigError
from genrec.models.base import Recommendations, ScoringRecommender


@dataclass(frozen=True)
class NeuralConfig(ModelConfig):
    """Training fields shared by every neural model."""

    epochs: int = field(50, "maximum number of training epochs")
    batch_size: int = field(128, "training sequences per batch (per process under DDP)")
    lr: float = field(1e-3, "AdamW learning rate")
    weight_decay: float = field(0.0, "AdamW weight decay")
    adam_beta2: float = field(
        0.999, "AdamW second-moment decay (0.98 as in the SASRec paper and RecTools)"
    )
    warmup_steps: int = field(0, "linear learning-rate warm-up steps")
    grad_clip: float = field(1.0, "clip the gradient norm to this value (0 = off)")
    patience: int = field(5, "stop after this many evaluations without improvement (0 = off)")
    val_metric: str = field("ndcg@10", "validation metric for early stopping and best restore")
    eval_every: int = field(1, "evaluate on the validation split every N epochs")
    val_users: int = field(
        0, "validate on a fixed seeded sample of this many validation users (0 = all)"
    )
    device: str = field("auto", "'auto' (cuda if available), 'cpu', 'cuda', 'cuda:1', ...")
    amp: bool = field(True, "bfloat16 autocast of training on CUDA (see cpu_amp for the CPU)")
    cpu_amp: bool = field(
        False,
        "bfloat16 autocast of training on the CPU too: faster on CPUs with AVX512-BF16 or AMX, "
        "slower on others; off by default (evaluation always runs in float32)",
    )
    progress: bool = field(True, "show a progress bar")
    time_budget_minutes: float = field(
        0.0, "stop after the epoch during which this many minutes of training passed (0 = off)"
    )

    def validate(self) -> None:
        self.positive("epochs", "batch_size", "lr", "eval_every")
        self.positive("time_budget_minutes", allow_zero=True)
        self.positive("weight_decay", "warmup_steps", "grad_clip", "patience", allow_zero=True)
        self.positive("val_users", allow_zero=True)
        if not 0.0 < self.adam_beta2 < 1.0:
            raise ConfigError(f"adam_beta2 must be in (0, 1), got {self.adam_beta2!r}")
        if "@" not in self.val_metric:
            raise ConfigError(f"val_metric must look like 'ndcg@10', got {self.val_metric!r}")


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    return device


class NeuralRecommender(ScoringRecommender):
    """A scoring model with a torch network trained by the shared trainer."""

    config_class: ClassVar[type[ModelConfig]] = NeuralConfig
    config: NeuralConfig

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.network_: nn.Module | None = None
        self.train_net_: nn.Module | None = None
        self.device_ = torch.device("cpu")
        self.training_history_: list[dict[str, Any]] = []
        self._checkpoint_dir: Path | None = None
        self._resume = False
        self._overwrite_checkpoint = False
        self._on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None

    # ------------------------------------------------------------------ subclass API
    @abstractmethod
    def _build_network(self) -> nn.Module:
        """A fresh network for ``self.n_items`` items."""

    @abstractmethod
    def _epoch_batches(
        self, dataset: Dataset, generator: torch.Generator
    ) -> Iterable[dict[str, torch.Tensor]]:
        """Training batches of one epoch (CPU tensors), ordered by ``generator`` only."""

    @abstractmethod
    def training_step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scalar loss of one batch (already on the training device)."""

    @abstractmethod
    def _score_network(self, batch: HistoryBatch) -> torch.Tensor:
        """Scores ``(B, n_items + 1)`` on ``self.device_`` for a batch of histories."""

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        dataset: Dataset,
        valid: Any = None,
        *,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        overwrite: bool = False,
        on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
    ) -> NeuralRecommender:
        """Train with early stopping on ``valid`` (a :class:`~genrec.data.splitting.Holdout`
        or ``None``). With ``checkpoint_dir`` a checkpoint is written atomically after every
        epoch; ``resume=True`` continues from it (same seed -> same final weights), and
        ``overwrite=True`` replaces a checkpoint left there by an earlier run (without either,
        such a checkpoint is an error: nothing is replaced silently).
        ``on_epoch_end(epoch, record)`` is called after every epoch with its history entry
        (used by :func:`genrec.tuning.tune` to report and prune)."""
        self._on_epoch_end = on_epoch_end
        self._checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self._resume = resume
        self._overwrite_checkpoint = overwrite
        if resume and self._checkpoint_dir is None:
            raise ConfigError("resume=True needs a checkpoint_dir")
        return super().fit(dataset, valid)  # type: ignore[return-value]

    def _fit(self, dataset: Dataset, valid: Any) -> None:
        from genrec.training.trainer import Trainer

        self.device_ = resolve_device(self.config.device)
        self.network_ = self._build_network().to(self.device_)
        trainer = Trainer(
            self,
            checkpoint_dir=self._checkpoint_dir,
            resume=self._resume,
            overwrite=self._overwrite_checkpoint,
            on_epoch_end=self._on_epoch_end,
        )
        self.training_history_ = trainer.fit(dataset, valid)
        self.training_info_ = {"history": self.training_history_, **trainer.summary()}

    # ------------------------------------------------------------------ scoring
    def _score(self, batch: HistoryBatch) -> torch.Tensor:
        assert self.network_ is not None
        was_training = self.network_.training
        self.network_.eval()
        try:
            with torch.no_grad():
                scores = self._score_network(batch).float()
        finally:
            self.network_.train(was_training)
        return scores.cpu()

    def recommend_for_sequence(
        self, items: list[Any], k: int = 10, exclude_seen: bool = True
    ) -> Recommendations:
        """Top-``k`` for one ad-hoc chronological item sequence (external ids)."""
        return self.recommend_for_history([items], k=k, exclude_seen=exclude_seen)

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict[str, np.ndarray]:
        assert self.network_ is not None
        return {k: v.detach().cpu().numpy() for k, v in self.network_.state_dict().items()}

    def _load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.device_ = resolve_device(self.config.device)
        self.network_ = self._build_network()
        self.network_.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        self.network_.to(self.device_)
