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

__version__ = "0.1.0"

from genrec.data.dataset import Dataset, IdMap
from genrec.data.splitting import Split, split_dataset
from genrec.io import load
from genrec.registry import get_model, list_models, register_model


def load_dataset(name: str, **kwargs):  # noqa: ANN201 - re-exported with full docs
    """Load a named dataset; see :func:`genrec.data.loaders.load_dataset`."""
    from genrec.data.loaders import load_dataset as _load

    return _load(name, **kwargs)


def evaluate(model, split, **kwargs):  # noqa: ANN001, ANN201
    """Evaluate a fitted model on a split; see :func:`genrec.evaluation.evaluator.evaluate`."""
    from genrec.evaluation.evaluator import evaluate as _evaluate

    return _evaluate(model, split, **kwargs)


def search(model_or_artifact, query, k=10, history=None, **kwargs):  # noqa: ANN001, ANN201
    """Free-text item search; see :func:`genrec.text.search.search`."""
    from genrec.text.search import search as _search

    return _search(model_or_artifact, query, k, history, **kwargs)


__all__ = [
    "Dataset",
    "IdMap",
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
