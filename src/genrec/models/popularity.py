"""Most-popular items: the weakest sensible control, and the cold-start fallback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from genrec.config import ModelConfig, field
from genrec.data.dataset import Dataset, HistoryBatch
from genrec.models.base import ScoringRecommender
from genrec.registry import register_model


@dataclass(frozen=True)
class PopularityConfig(ModelConfig):
    """Config of :class:`Popularity`."""

    count: Literal["users", "interactions"] = field(
        "users", "count distinct users per item, or every interaction"
    )


@register_model("popularity")
class Popularity(ScoringRecommender):
    """Scores every item by its training popularity; the same list for every user."""

    deterministic = True
    popular_for_empty_history = False  # its own scores already are popularity
    config_class = PopularityConfig
    config: PopularityConfig

    def _fit(self, dataset: Dataset, valid: object) -> None:
        if self.config.count == "users":
            counts = dataset.item_popularity()
        else:
            counts = np.bincount(dataset.item_idx, minlength=dataset.n_items + 1)
        self.scores_ = counts.astype(np.float32)  # (n_items + 1,)

    def _score(self, batch: HistoryBatch) -> torch.Tensor:
        return torch.from_numpy(self.scores_)[None, :].expand(len(batch), -1)

    def _state_dict(self) -> dict[str, np.ndarray]:
        return {"scores": self.scores_}

    def _load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.scores_ = state["scores"]
