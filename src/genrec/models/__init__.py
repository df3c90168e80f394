"""Models. Importing this package declares every built-in model in the registry.

The declarations are lazy (``"module:Class"`` strings, :meth:`genrec.registry.Registry.add_lazy`):
a model's module is imported the first time :func:`genrec.get_model` asks for it, so listing
models or importing :mod:`genrec` imports no model code. A model added to genrec is one file
in this package (decorated with :func:`genrec.registry.register_model`) plus a line below;
``tests/models/test_registry.py`` checks that the two agree. Third-party models just use the
decorator.
"""

from typing import Any

from genrec.registry import MODELS

#: name -> "module:Class" of every built-in model
BUILTIN_MODELS: dict[str, str] = {
    "popularity": "genrec.models.popularity:Popularity",
    "itemknn": "genrec.models.itemknn:ItemKNN",
    "ease": "genrec.models.ease:EASE",
    "als": "genrec.models.als:ALS",
    "sasrec": "genrec.models.sasrec:SASRec",
    "bert4rec": "genrec.models.bert4rec:BERT4Rec",
    "gru4rec": "genrec.models.gru4rec:GRU4Rec",
    "nextitnet": "genrec.models.nextitnet:NextItNet",
    "hstu": "genrec.models.hstu:HSTU",
    "tiger": "genrec.models.tiger:TIGER",
    "sidsplit": "genrec.models.sidsplit:SIDSplit",
    "multvae": "genrec.models.multvae:MultVAE",
    "multdae": "genrec.models.multdae:MultDAE",
    "recvae": "genrec.models.recvae:RecVAE",
    "cvae": "genrec.models.cvae:CVAE",
    "diffrec": "genrec.models.diffrec:DiffRec",
    "ldiffrec": "genrec.models.ldiffrec:LDiffRec",
    "tdiffrec": "genrec.models.tdiffrec:TDiffRec",
    "irgan": "genrec.models.irgan:IRGAN",
    "textknn": "genrec.models.textknn:TextKNN",
    "graphgan": "genrec.models.graphgan:GraphGAN",
    "gpt4rec": "genrec.models.gpt4rec:GPT4Rec",
    "lightgcn": "genrec.models.lightgcn:LightGCN",
    # composite: candidate generators + a gradient-boosted ranker (the ranking floor)
    "cascade": "genrec.ranking.cascade:Cascade",
    "cascade-sasrec": "genrec.ranking.cascade:GenerativeCascade",
    # composite: any registered model plus exploration slots for predicted novel clusters
    "explore": "genrec.ranking.explore:Explore",
}

for _name, _target in BUILTIN_MODELS.items():
    MODELS.add_lazy(_name, _target)

_BASE = ("GenerativeRecommender", "RankRequest", "Recommendations", "Recommender")
_BASE += ("ScoringRecommender",)


def __getattr__(name: str) -> Any:
    """The base classes of :mod:`genrec.core.recommender`, imported on first use (PEP 562):
    the declarations above import neither torch nor any model."""
    if name in _BASE:
        from genrec.core import recommender

        return getattr(recommender, name)
    raise AttributeError(f"module 'genrec.models' has no attribute {name!r}")


__all__ = [
    "BUILTIN_MODELS",
    "GenerativeRecommender",
    "RankRequest",
    "Recommendations",
    "Recommender",
    "ScoringRecommender",
]
