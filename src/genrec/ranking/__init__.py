"""The industrial cascade: candidate generation, features and a gradient-boosted ranker.

The registered models ``cascade`` and ``cascade-sasrec`` (:mod:`genrec.ranking.cascade`)
put the pieces together; see ``docs/ranking.md``.

* :mod:`genrec.ranking.candidates` -- union of several models' top-N with ranks and scores,
  :func:`candidate_recall`;
* :mod:`genrec.ranking.features` -- :class:`FeatureBuilder` (source, popularity, recency,
  user, sequence, category, vector features);
* :mod:`genrec.ranking.ranker` -- :class:`Ranker` (CatBoost YetiRank/PairLogit, LightGBM
  lambdarank), saved without pickle;
* :mod:`genrec.ranking.interest` -- next-interest-category prediction.
"""

from genrec.ranking.candidates import (
    CandidateSet,
    SourceSpec,
    candidate_recall,
    parse_sources,
    source_top_n,
    union_candidates,
)
from genrec.ranking.features import FeatureBuilder
from genrec.ranking.ranker import Ranker

__all__ = [
    "CandidateSet",
    "FeatureBuilder",
    "Ranker",
    "SourceSpec",
    "candidate_recall",
    "parse_sources",
    "source_top_n",
    "union_candidates",
]
