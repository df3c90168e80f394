"""The core of genrec: the :class:`Recommender` contract (one public ranking call,
:meth:`Recommender.rank`, and its two strategies) and exact top-k with pessimistic
tie-breaking. Everything that ranks (evaluation, serving, the cascade) builds on it; every
model (:mod:`genrec.models`) implements it."""

from genrec.core.recommender import (
    AllowedItems,
    FitOptions,
    GenerativeRecommender,
    Ranking,
    RankRequest,
    Recommendations,
    Recommender,
    ScoringRecommender,
)
from genrec.core.topk import topk_with_ties

__all__ = [
    "AllowedItems",
    "FitOptions",
    "GenerativeRecommender",
    "RankRequest",
    "Ranking",
    "Recommendations",
    "Recommender",
    "ScoringRecommender",
    "topk_with_ties",
]
