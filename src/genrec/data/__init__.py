"""Data: the :class:`Dataset`, loaders, preprocessing and splits."""

from genrec.data.dataset import Dataset, HistoryBatch, IdMap, UserHistories

__all__ = ["Dataset", "HistoryBatch", "IdMap", "UserHistories"]
