"""Neural scorers: :class:`NeuralRecommender` = the training mixin
(:class:`~genrec.training.neural.NeuralTrainingMixin`) + the scoring strategy
(:class:`~genrec.models.base.ScoringRecommender`).

A subclass implements the mixin's ``_build_network``, ``epoch_batches`` and
``training_step`` plus ``_score_network(batch) -> Tensor[B, n_items + 1]`` on
``self.device_``; scoring runs in eval mode without gradients.
"""

from __future__ import annotations

from abc import abstractmethod

import torch

from genrec.data.dataset import HistoryBatch
from genrec.models.base import ScoringRecommender
from genrec.training.neural import NeuralConfig, NeuralTrainingMixin, resolve_device

__all__ = ["NeuralConfig", "NeuralRecommender", "resolve_device"]


class NeuralRecommender(NeuralTrainingMixin, ScoringRecommender):
    """A scoring model with a torch network trained by the shared trainer."""

    @abstractmethod
    def _score_network(self, batch: HistoryBatch) -> torch.Tensor:
        """Scores ``(B, n_items + 1)`` on ``self.device_`` for a batch of histories."""

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
