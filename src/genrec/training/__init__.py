"""Training: the one generic loop shared by every neural model."""

from genrec.training.trainer import (
    Trainer,
    TrainingError,
    find_checkpoint,
    process_rank,
    progress_console,
)

__all__ = ["Trainer", "TrainingError", "find_checkpoint", "process_rank", "progress_console"]
