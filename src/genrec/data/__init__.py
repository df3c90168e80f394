"""Data: the :class:`Dataset`, loaders, preprocessing and splits."""

from genrec.data.dataset import Dataset, HistoryBatch, IdMap, UserHistories
from genrec.data.preprocessing import preprocess
from genrec.data.splitting import (
    Holdout,
    Split,
    leave_one_out,
    ratio_split,
    split_dataset,
    temporal_split,
)

__all__ = [
    "Dataset",
    "HistoryBatch",
    "Holdout",
    "IdMap",
    "Split",
    "UserHistories",
    "leave_one_out",
    "preprocess",
    "ratio_split",
    "split_dataset",
    "temporal_split",
]
