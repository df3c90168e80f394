"""genrec: generative recommendation with honest baselines.

Public API::

    import genrec
    ds = genrec.load_dataset("movielens-small")
    split = genrec.split_dataset(ds, "loo")
    model = genrec.get_model("ease")(l2=500).fit(split.train)
    result = genrec.evaluate(model, split)
    model.save("artifacts/ease"); genrec.load("artifacts/ease")
"""

from __future__ import annotations

from typing import Any

from genrec import models  # noqa: F401  (declares the built-in models; imports no model)
from genrec._version import __version__
from genrec.data.dataset import Dataset, IdMap
from genrec.data.splitting import Split, split_dataset
from genrec.io import load
from genrec.registry import get_model, list_models, register_model

# Imported on first use (PEP 562), so that `import genrec` and the command line start
# without torch: name -> (module, attribute).
_LAZY = {
    "load_dataset": ("genrec.data.loaders", "load_dataset"),
    "evaluate": ("genrec.evaluation.evaluator", "evaluate"),
    "search": ("genrec.text.search", "search"),
    "RankRequest": ("genrec.core.recommender", "RankRequest"),
    "Ranking": ("genrec.core.recommender", "Ranking"),
    "Recommender": ("genrec.core.recommender", "Recommender"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'genrec' has no attribute {name!r}")


__all__ = [
    "Dataset",
    "IdMap",
    "RankRequest",
    "Ranking",
    "Recommender",
    "Split",
    "__version__",
    "evaluate",
    "get_model",
    "list_models",
    "load",
    "load_dataset",
    "register_model",
    "search",
    "split_dataset",
]
