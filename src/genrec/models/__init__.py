"""Built-in models. Importing this package registers them all."""

from genrec.models import (  # noqa: F401
    als,
    bert4rec,
    cascade,
    cvae,
    diffrec,
    ease,
    gru4rec,
    hstu,
    irgan,
    itemknn,
    ldiffrec,
    lightgcn,
    multdae,
    multvae,
    nextitnet,
    popularity,
    recvae,
    sasrec,
    tdiffrec,
    textknn,
    tiger,
)
from genrec.models.base import (
    GenerativeRecommender,
    Recommendations,
    Recommender,
    ScoringRecommender,
)

__all__ = ["GenerativeRecommender", "Recommendations", "Recommender", "ScoringRecommender"]
