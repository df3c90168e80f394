"""Hyper-parameter search with Optuna (extra ``tune``), on the validation split only.

``tune(model, dataset)`` samples configs from the model's search space (declared next to its
config as ``<Model>Config.SEARCH_SPACE``), fits each on ``split.train`` and scores it with
the shared evaluator on ``split.valid`` (``stage="valid"``). The test holdout is never read.
Neural models report the validation metric after every epoch so Optuna's median pruner can
stop hopeless trials early; closed-form models report once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from genrec.data.dataset import Dataset
from genrec.data.splitting import Split


@dataclass
class TuneResult:
    """Outcome of :func:`tune`.

    Attributes:
        best_config: override-only config of the best trial (``base_config`` plus the tuned
            keys), loadable by ``get_model(model).config_class.from_dict``.
        best_value: its validation metric.
        n_trials: finished trials in the study (complete + pruned, earlier runs included).
        n_pruned: how many of them were pruned.
        elapsed_s: wall-clock seconds of this call.
        study_name: Optuna study name.
        storage: Optuna storage URL (``None`` = in memory).
    """

    best_config: dict[str, Any]
    best_value: float
    n_trials: int
    n_pruned: int
    elapsed_s: float
    study_name: str
    storage: str | None


def tune(
    model: str,
    dataset: Dataset,
    split: Split | None = None,
    *,
    n_trials: int | None = None,
    budget_minutes: float | None = None,
    metric: str = "ndcg@10",
    base_config: dict[str, Any] | None = None,
    space: dict[str, Any] | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    seed: int = 0,
    progress: bool = False,
) -> TuneResult:
    """Tune ``model``'s hyper-parameters on the validation split of ``dataset``.

    Args:
        model: registered model name (``"ease"``, ``"sasrec"``, ...).
        dataset: the data; split with leave-one-out unless ``split`` is given.
        split: a precomputed split; only ``split.train`` and ``split.valid`` are used.
        n_trials: trials to run in this call (continuing a stored study adds to it).
        budget_minutes: wall-clock budget of this call; no trial starts after it and
            neural trials are capped to the time left. At least one budget is required.
        metric: validation metric to maximise, ``name@k`` (e.g. ``"ndcg@10"``).
        base_config: fixed overrides every trial starts from (e.g. a shipped preset).
        space: search space replacing the model's default ``SEARCH_SPACE``.
        storage: Optuna storage URL or a ``.db`` path (SQLite); ``None`` keeps the study
            in memory. With a storage an existing study of the same name is continued.
        study_name: default ``"<model>-<dataset>-<split>-<metric>"``.
        seed: seed of the TPE sampler.
        progress: print one line per finished trial.

    Raises:
        ConfigError: no budget, no or invalid search space, bad metric, or a stored study
            made for another model/dataset/split/metric.
        MissingExtraError: Optuna is not installed (``pip install 'genrec[tune]'``).
    """
    raise NotImplementedError
