"""Built-in models. Importing this package registers them all."""

from genrec.models import als, ease, itemknn, popularity  # noqa: F401
from genrec.models.base import (
    GenerativeRecommender,
    Recommendations,
    Recommender,
    ScoringRecommender,
)

__all__ = ["GenerativeRecommender", "Recommendations", "Recommender", "ScoringRecommender"]
