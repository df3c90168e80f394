"""Built-in models. Importing this package registers them all."""

from genrec.models import (  # noqa: F401
    als,
    bert4rec,
    ease,
    gru4rec,
    hstu,
    itemknn,
    nextitnet,
    popularity,
    sasrec,
)
from genrec.models.base import (
    GenerativeRecommender,
    Recommendations,
    Recommender,
    ScoringRecommender,
)

__all__ = ["GenerativeRecommender", "Recommendations", "Recommender", "ScoringRecommender"]
