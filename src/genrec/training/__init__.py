"""Training: the one generic loop shared by every neural model."""

from genrec.training.trainer import Trainer, TrainingError

__all__ = ["Trainer", "TrainingError"]
