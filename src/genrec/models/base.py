"""The base classes a model file imports: the :class:`Recommender` contract and its two
ranking strategies, defined in :mod:`genrec.core.recommender` (see there)."""

from genrec.core.recommender import (
    AllowedItems,
    FitOptions,
    GenerativeRecommender,
    Ranking,
    RankRequest,
    Recommendations,
    Recommender,
    ScoringRecommender,
    allowed_items,
    check_k,
)

__all__ = [
    "AllowedItems",
    "FitOptions",
    "GenerativeRecommender",
    "RankRequest",
    "Ranking",
    "Recommendations",
    "Recommender",
    "ScoringRecommender",
    "allowed_items",
    "check_k",
]
