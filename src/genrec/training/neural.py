"""Training as a mixin: :class:`NeuralTrainingMixin` gives a model a torch network trained
by the shared :class:`~genrec.training.trainer.Trainer` (early stopping on the real evaluator,
checkpoints, resume, DDP), whatever its ranking strategy. A neural scorer
(:class:`genrec.models.neural.NeuralRecommender`) and a neural generator (TIGER) share it
without inheriting each other's ranking.

:class:`NeuralConfig` holds the training fields shared by every neural model.

A model with the mixin implements:

* ``_build_network() -> nn.Module``: the pure network (nanoGPT style: no data, no metrics);
* ``epoch_batches(dataset, generator) -> Iterable[dict[str, Tensor]]``: one epoch of
  training batches, ordered by ``generator`` only (so a resumed run repeats them exactly);
* ``training_step(net, batch) -> Tensor``: the scalar loss of one batch, computed with
  ``net`` (the network, wrapped in DDP under ``torchrun``).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from genrec.config import ModelConfig, field
from genrec.core.recommender import Recommendations
from genrec.data.dataset import Dataset
from genrec.errors import ConfigError
from genrec.training.trainer import Trainer


def ce_chunk_size_field(note: str = "") -> Any:
    """The ``ce_chunk_size`` field of the sequence models' configs (one help text)."""
    return field(128, f"positions per chunk of the fused full-softmax loss (cache-sized{note})")


def bucket_batches_field() -> Any:
    """The ``bucket_batches`` field of the sequence models' configs (one help text)."""
    return field(
        50,
        "length-bucketed batches: sort chunks of this many batches by length, cut them into "
        "batches of batch_size x mean-length tokens and drop all-padding columns (0 = random "
        "batches of batch_size sequences, still trimmed)",
    )


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
    fused_adamw: bool = field(
        True,
        "AdamW as one fused kernel on the CPU and CUDA (torch's fused=True; 1.07-1.25x faster "
        "Beauty epochs measured for SASRec, BERT4Rec, Mult-VAE, DiffRec); False: torch's default",
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


def training_device(config: NeuralConfig) -> torch.device:
    """The device to train on: :func:`resolve_device` of ``config.device``, except under
    ``torchrun`` with CUDA, where each process takes ``cuda:LOCAL_RANK``."""
    device = resolve_device(config.device)
    if device.type == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


class NeuralTrainingMixin(ABC):
    """A torch network trained by the shared trainer; combine it with a ranking strategy,
    e.g. ``class SASRec(NeuralTrainingMixin, ScoringRecommender)``.

    Attributes set by :meth:`fit` (and by loading an artifact):
        network_: the trained network (best validation epoch restored).
        device_: where it lives.
        training_history_: one record per epoch (loss, seconds, validation metric).
    """

    config: NeuralConfig
    config_class: ClassVar[type[ModelConfig]] = NeuralConfig
    epoch_trained: ClassVar[bool] = True

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)  # type: ignore[call-arg]
        self.network_: nn.Module | None = None
        self.device_ = torch.device("cpu")
        self.training_history_: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ subclass API
    @abstractmethod
    def _build_network(self) -> nn.Module:
        """A fresh network for ``self.n_items`` items."""

    @abstractmethod
    def epoch_batches(
        self, dataset: Dataset, generator: torch.Generator
    ) -> Iterable[dict[str, torch.Tensor]]:
        """Training batches of one epoch (CPU tensors), ordered by ``generator`` only."""

    @abstractmethod
    def training_step(self, net: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scalar loss of one batch (already on the training device), computed with ``net``
        (``self.network_``, or its DDP wrapper under ``torchrun``)."""

    # ------------------------------------------------------------------ fitting
    def _fit(self, dataset: Dataset, valid: Any) -> None:
        """Build the network and train it with the shared :class:`Trainer`, using the
        :class:`~genrec.core.recommender.FitOptions` of this ``fit`` call (checkpoints, resume,
        per-epoch callback)."""
        options = self._fit_options  # type: ignore[attr-defined]
        self.device_ = training_device(self.config)
        network = self._build_network()
        if options.warm_start is not None:  # e.g. an older model's grown weights
            options.warm_start(network)
        self.network_ = network.to(self.device_)
        trainer = Trainer(
            self,
            self.network_,
            self.device_,
            checkpoint_dir=options.checkpoint_dir,
            resume=options.resume,
            overwrite=options.overwrite,
            on_epoch_end=options.on_epoch_end,
        )
        self.training_history_ = trainer.fit(dataset, valid)
        self.training_info_ = {"history": self.training_history_, **trainer.summary()}

    def recommend_for_sequence(
        self, items: list[Any], k: int = 10, exclude_seen: bool = True
    ) -> Recommendations:
        """Top-``k`` for one ad-hoc chronological item sequence (external ids)."""
        return self.recommend_for_history([items], k=k, exclude_seen=exclude_seen)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ capabilities
    def item_embeddings(self) -> np.ndarray | None:
        """The network's item table ``network_.item_emb`` rows ``0..n_items`` (rows past the
        catalogue, e.g. BERT4Rec's mask token, dropped), or ``None`` without one."""
        emb = getattr(self.network_, "item_emb", None)
        if not isinstance(emb, nn.Embedding):
            return None
        n = self.n_items + 1  # type: ignore[attr-defined]
        return emb.weight.detach()[:n].float().cpu().numpy().copy()

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict[str, np.ndarray]:
        assert self.network_ is not None
        return {k: v.detach().cpu().numpy() for k, v in self.network_.state_dict().items()}

    def _load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.device_ = resolve_device(self.config.device)
        self.network_ = self._build_network()
        self.network_.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        self.network_.to(self.device_)
