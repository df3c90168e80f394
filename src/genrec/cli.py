"""Command line: ``genrec datasets|train|evaluate|recommend|benchmark|tune|report|serve``."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from genrec.errors import ConfigError, GenrecError, GenrecWarning, UnknownIdError

#: environment variable that makes every error show its traceback (like ``--debug``)
DEBUG_ENV = "GENREC_DEBUG"
#: exit status of a bug in genrec (an unexpected exception), as in BSD's EX_SOFTWARE
EXIT_BUG = 70


def _csv_list(text: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def _ks(text: str) -> list[int]:
    try:
        ks = [int(t) for t in _csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"k values must be integers, got {text!r}") from None
    if any(k <= 0 for k in ks):
        raise argparse.ArgumentTypeError(f"k values must be positive, got {text!r}")
    return ks


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _unit_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a TCP port must be in 1..65535, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def _add_data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--dataset", required=required, help="dataset name (see `genrec datasets list`)")
    p.add_argument("--data-dir", default=None, help="local folder (or file) with the dataset")
    p.add_argument(
        "--download",
        action="store_true",
        help="download missing files (cached in ~/.cache/genrec or $GENREC_CACHE_DIR)",
    )
    p.add_argument(
        "--split", default="loo", choices=["loo", "temporal", "ratio"], help="evaluation split"
    )
    g = p.add_argument_group("preprocessing", "filters applied after loading (recorded in runs)")
    g.add_argument(
        "--min-user-interactions",
        type=_positive_int,
        default=None,
        metavar="N",
        help="drop users with fewer than N interactions (3 lets leave-one-out split everyone)",
    )
    g.add_argument(
        "--min-item-interactions",
        type=_positive_int,
        default=None,
        metavar="N",
        help="drop items with fewer than N interactions (iterated with the user filter: k-core)",
    )
    g.add_argument(
        "--dedupe",
        nargs="?",
        const="first",
        choices=["first", "last"],
        default=None,
        help="keep one interaction per (user, item): the first (default) or the last",
    )
    p.add_argument(
        "--reconsumption",
        default="miss",
        choices=["miss", "drop", "first"],
        help="a target the user had before: counts as a miss (default), is not evaluated "
        "(drop), or repeats are removed before splitting (first); see docs/errors.md",
    )


def _add_synth_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("synth", "`genrec datasets synth`: see genrec.data.synth")
    g.add_argument("--users", type=_positive_int, help="synth: number of users")
    g.add_argument("--items", type=_positive_int, help="synth: catalogue size (>= 2)")
    g.add_argument(
        "--mean-length", type=float, default=51.0, help="synth: mean lognormal history length"
    )
    g.add_argument(
        "--zipf", type=float, default=1.0, help="synth: Zipf exponent of item popularity"
    )
    g.add_argument("--seed", type=int, default=0, help="synth: random seed (same seed, same rows)")
    g.add_argument(
        "--clusters", type=_positive_int, default=None,
        help="synth: item interest clusters (default sqrt(items), 2..1000)",
    )  # fmt: skip
    g.add_argument(
        "--transition", type=float, default=0.3,
        help="synth: share of steps that follow the previous item's successor",
    )  # fmt: skip
    g.add_argument("--out", default=None, help="synth: output Parquet file")
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="synth: replace a file genrec datasets synth wrote earlier at --out",
    )


_CONFIGS_DIR_HELP = "folder of presets <dataset>/<model>.yaml (default ./configs)"
_NO_PRESET_HELP = (
    "ignore the shipped preset configs/<dataset>/<model>.yaml and start from the model's defaults"
)


def _add_preset_args(p: argparse.ArgumentParser) -> None:
    """``--configs-dir`` and ``--no-preset``: the preset rule of every command that builds a
    model (:func:`genrec.config.model_config_data`)."""
    p.add_argument("--configs-dir", default=None, help=_CONFIGS_DIR_HELP)
    p.add_argument("--no-preset", action="store_true", help=_NO_PRESET_HELP)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser (exposed for documentation and tests)."""
    from genrec._version import __version__

    parser = argparse.ArgumentParser(
        prog="genrec",
        description="Generative recommenders vs strong classical baselines: train, evaluate, "
        "benchmark. Full-ranking evaluation, leak-free splits.",
    )
    parser.add_argument("--version", action="version", version=f"genrec {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the full traceback of any error instead of one line (or set {DEBUG_ENV}=1)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "datasets", help="list datasets, show one's statistics, or write a synthetic one"
    )
    p.add_argument(
        "action",
        choices=["list", "info", "synth"],
        help="list: every dataset; info: one's statistics; synth: write a synthetic one",
    )
    p.add_argument("name", nargs="?", help="dataset name for `info`")
    p.add_argument("--data-dir", default=None, help="local folder (or file) with the dataset")
    _add_synth_args(p)

    p = sub.add_parser("models", help="list registered models and their config fields")
    p.add_argument("name", nargs="?", help="show the config fields of one model")

    p = sub.add_parser("train", help="fit a model and save it as an artifact")
    p.add_argument("model", help="registered model name (see `genrec models`)")
    _add_data_args(p)
    p.add_argument(
        "--config",
        default=None,
        help="YAML file with config overrides, replacing the shipped preset",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value (wins over the preset and --config)",
    )
    _add_preset_args(p)
    p.add_argument(
        "--out",
        required=True,
        help="artifact folder to write: a new path or an empty folder (see --overwrite)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an artifact genrec wrote earlier at --out (and start over from an "
        "earlier checkpoint); a path genrec did not write is never replaced",
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="train on all interactions (for serving); the artifact then cannot be evaluated",
    )
    p.add_argument(
        "--checkpoint-dir",
        default=None,
        metavar="DIR",
        help="neural models: write a checkpoint after every epoch to DIR",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="neural models: continue from the checkpoint (default DIR: <out>.ckpt)",
    )

    p = sub.add_parser("evaluate", help="evaluate a saved artifact on a dataset's test split")
    p.add_argument("artifact", help="artifact folder written by `genrec train`")
    _add_data_args(p, required=False)
    p.set_defaults(split=None)  # None: the artifact's split
    for action in p._actions:  # argparse has no public way to reword an added argument
        if action.dest == "dataset":
            action.help = "dataset name (default: the one the artifact was trained on)"
        elif action.dest == "data_dir":
            action.help = "local folder (or file) with the dataset (default: the artifact's)"
        elif action.dest == "split":
            action.help = "evaluation split (default: the one the artifact was trained with)"
    p.add_argument("--k", type=_ks, default=[5, 10, 20], help="cut-offs, e.g. 5,10,20")
    p.add_argument(
        "--sampled",
        type=_positive_int,
        default=None,
        metavar="N",
        help="rank among N sampled negatives (labelled 'sampled')",
    )
    p.add_argument("--json", action="store_true", help="print metrics as JSON")

    p = sub.add_parser(
        "update",
        help="continue training a saved model on new interactions; writes a new artifact "
        "(docs/continuous.md)",
    )
    p.add_argument("artifact", help="artifact folder written by `genrec train` (left unchanged)")
    p.add_argument(
        "--data", required=True, help="new interactions: CSV, TSV or parquet with "
        "user_id, item_id[, timestamp]; new users and items are added",
    )  # fmt: skip
    p.add_argument("--items", default=None, help="item table rows for new items (title, ...)")
    p.add_argument(
        "--item-vectors", default=None, metavar="NPY",
        help="TIGER/SID-split trained on item_vectors_path: vectors of the grown catalogue "
        "(.npy, one row per item in the merged item map), coded by the fitted tokenizer",
    )  # fmt: skip
    p.add_argument("--epochs", type=_positive_int, default=None, help="warm-start epochs")
    p.add_argument(
        "--replay", type=float, default=0.0, help="share of unaffected users trained on too"
    )
    p.add_argument("--out", required=True, help="the new artifact (never the old one)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an earlier genrec artifact at --out"
    )

    p = sub.add_parser(
        "recommend", help="top-k items for one user, or for a file of users, from an artifact"
    )
    p.add_argument("artifact", help="artifact folder written by `genrec train`")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="external user id (prints the list)")
    who.add_argument(
        "--users",
        metavar="FILE",
        help="Parquet file with a user_id column: writes every user's list to --out "
        "(columns user_id, rank, item_id, score; see docs/scale.md)",
    )
    p.add_argument("--out", default=None, help="with --users: the Parquet file to write")
    p.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="with --users: this process, or Ray Data actors (extra `distributed`)",
    )
    p.add_argument(
        "--workers", type=_positive_int, default=None, help="with --engine ray: parallel actors"
    )
    p.add_argument(
        "--ray-address",
        default=None,
        help="with --engine ray: a running cluster (auto or ray://host:port); default: a "
        "private local instance",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="with --users: replace a file genrec recommend wrote earlier at --out",
    )
    p.add_argument("--k", type=_positive_int, default=10, help="number of items to list")
    p.add_argument("--include-seen", action="store_true", help="do not filter history items")
    p.add_argument(
        "--on-unknown",
        choices=["error", "popular"],
        default="error",
        help="a user the model was not trained on: stop with an error (default) or list the "
        "most popular items",
    )

    p = sub.add_parser(
        "search", help="free-text item search over a saved artifact (textknn: its own vectors)"
    )
    p.add_argument("artifact", help="artifact folder written by `genrec train`")
    p.add_argument("query", help='what to look for, e.g. "light moisturizer for dry skin"')
    p.add_argument("-k", "--k", type=_positive_int, default=10, help="number of items to list")
    p.add_argument("--user", default=None, help="blend in this user's training history")
    p.add_argument(
        "--history", type=_csv_list, default=None, metavar="ITEM,...", help="blend in these items"
    )
    p.add_argument(
        "--alpha", type=_unit_interval, default=0.5, help="weight of the history, in [0, 1]"
    )
    p.add_argument(
        "--encoder",
        default="auto",
        choices=["auto", "minilm", "tfidf"],
        help="encoder of the item titles for non-textknn artifacts",
    )

    p = sub.add_parser(
        "chat", help="terminal dialogue: state likes/dislikes in plain words, get top-k"
    )
    p.add_argument("artifact", help="artifact folder written by `genrec train`")
    p.add_argument(
        "--dataset", default=None, help="item table for genres/years (default: the artifact's)"
    )
    p.add_argument("--data-dir", default=None, help="local folder (or file) with the dataset")
    p.add_argument(
        "-k", "--k", type=_positive_int, default=10, help="number of items in each answer"
    )
    p.add_argument(
        "--text",
        default="auto",
        choices=["auto", "minilm", "tfidf", "none"],
        help="text similarity for descriptions ('none': word matching only)",
    )
    p.add_argument(
        "--lm", default=None, choices=["smollm2"], help="rewrite wishes into a search query"
    )

    p = sub.add_parser("benchmark", help="compare models on a dataset and write a report")
    _add_data_args(p, required=False)
    p.set_defaults(dataset="movielens-small")
    p.add_argument(
        "--models",
        type=_csv_list,
        default=None,
        help="comma-separated model names (default: popularity,itemknn,ease,als)",
    )
    p.add_argument(
        "--seeds", type=_positive_int, default=1, help="number of seeds (0..N-1; see --first-seed)"
    )
    p.add_argument(
        "--first-seed",
        type=_non_negative_int,
        default=0,
        metavar="S",
        help="start the seeds at S (S..S+N-1), e.g. to run one model's seeds as separate jobs",
    )
    p.add_argument("--k", type=_ks, default=[5, 10, 20], help="cut-offs")
    p.add_argument("--out", default=None, help="output dir (default reports/<dataset>-<time>)")
    p.add_argument("--name", default=None, help="run name (folder under reports/)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run genrec wrote earlier in the output folder (a folder genrec did "
        "not write is never replaced)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run in the output folder: models and seeds it finished "
        "(same config, data and split) are reused, not fitted again",
    )
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="MODEL=PATH",
        help="config YAML for a model, replacing its shipped preset",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="MODEL.KEY=VALUE",
        help="override one config value of one model; *.KEY=VALUE sets it for every model "
        "whose config has KEY (a model's own --set wins)",
    )
    p.add_argument("--reference", default=None, help="model to test significance against")
    p.add_argument(
        "--sampled",
        type=_positive_int,
        default=None,
        metavar="N",
        help="sampled metrics with N negatives instead of full ranking",
    )
    p.add_argument(
        "--save-recommendations",
        action="store_true",
        help="write <out>/recommendations/<model>.csv for every test user",
    )
    p.add_argument("--configs-dir", default=None, help=_CONFIGS_DIR_HELP)
    p.add_argument("--no-preset", action="store_true", help=_NO_PRESET_HELP)
    p.add_argument(
        "--tune-budget-minutes",
        type=_non_negative_float,
        default=None,
        metavar="M",
        help="tune every model for M minutes on the validation split first (extra `tune`); "
        "0: no tuning (a suite's full mode tunes by default)",
    )
    p.add_argument(
        "--suite",
        default=None,
        metavar="NAME",
        help="run a suite (genrec.bench.suites, e.g. generative-vs-classical): its models, seeds "
        "and budgets under each protocol, and a verdict report",
    )
    p.add_argument(
        "--max-history",
        type=_positive_int,
        default=None,
        metavar="M",
        help="the sparse regime (genrec.data.sparse): keep only each user's last M training "
        "interactions (see --history-mode); recorded in the manifest",
    )
    p.add_argument(
        "--history-mode",
        default="last",
        choices=["last", "users"],
        help="with --max-history: 'last' truncates every user's training history to M; "
        "'users' keeps all data but evaluates only users with at most M training interactions",
    )
    p.add_argument("--quick", action="store_true", help="the suite's quick mode (small budgets)")
    p.add_argument(
        "--protocols",
        type=_csv_list,
        default=None,
        metavar="P,...",
        help="splits of a suite run (default: the mode's; quick: loo, full: loo,temporal)",
    )
    p.add_argument(
        "--agreement-with",
        default=None,
        metavar="RUN",
        help="a suite run folder (or its suite.json) of the same suite and data, e.g. the full "
        "mode: the report gives the Kendall tau between the two rankings of the models",
    )

    p = sub.add_parser(
        "tune", help="tune a model's hyper-parameters on the validation split (extra `tune`)"
    )
    p.add_argument("model", help="registered model name (see `genrec models`)")
    _add_data_args(p)
    p.add_argument(
        "--budget-trials",
        type=_positive_int,
        default=None,
        metavar="N",
        help="run N trials (with --budget-minutes: whichever ends first)",
    )
    p.add_argument(
        "--budget-minutes",
        type=_positive_float,
        default=None,
        metavar="M",
        help="start no trial after M minutes; neural trials are capped to the time left",
    )
    p.add_argument("--metric", default="ndcg@10", help="validation metric to maximise")
    p.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL or .db path (default runs/tune/<dataset>/<model>.db); "
        "an existing study of the same name is continued",
    )
    p.add_argument("--study-name", default=None, help="default <model>-<dataset>-<split>-<metric>")
    p.add_argument(
        "--space", default=None, metavar="YAML", help="search space replacing the default"
    )
    p.add_argument(
        "--config",
        default=None,
        help="YAML of fixed overrides, optionally with a search_space: key (default: the "
        "shipped preset)",
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fixed override")
    _add_preset_args(p)
    p.add_argument(
        "--save-preset",
        default=None,
        metavar="PATH",
        help="write the best config here (default runs/tune/<dataset>/<model>.yaml)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a preset that genrec tune wrote earlier at the --save-preset path",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler")

    p = sub.add_parser(
        "report", help="rebuild report.md/report.html from results.json, or merge several"
    )
    p.add_argument("results", nargs="+", help="results.json file(s) of `genrec benchmark`")
    p.add_argument(
        "--out",
        default=None,
        help="output dir (default: the results file's folder; reports/merged-<time> to merge)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run genrec wrote earlier in --out (not needed to rebuild the reports "
        "of a results file in its own folder)",
    )

    p = sub.add_parser("serve", help="serve artifacts over HTTP with a web demo (extra `serve`)")
    p.add_argument("artifacts", nargs="+", metavar="ARTIFACT", help="artifact directories")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default: localhost)")
    p.add_argument("--port", type=_port, default=8000, help="TCP port, 1..65535 (default: 8000)")
    p.add_argument("--dataset", default=None, help="dataset whose item table adds genres/years")
    p.add_argument("--data-dir", default=None, help="local folder (or file) with the dataset")
    p.add_argument("--threads", type=_positive_int, default=1, help="torch threads per call")
    p.add_argument("--no-micro-batch", action="store_true", help="one model call per request")
    return parser


# ---------------------------------------------------------------------- helpers
def _preprocessing(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--min-user-interactions``, ``--min-item-interactions`` and ``--dedupe`` given,
    as :func:`genrec.data.preprocess` options (empty when none is given)."""
    pre: dict[str, Any] = {}
    if getattr(args, "min_user_interactions", None):
        pre["min_user_interactions"] = args.min_user_interactions
    if getattr(args, "min_item_interactions", None):
        pre["item_core"] = args.min_item_interactions
    if getattr(args, "dedupe", None):
        pre["deduplicate"] = args.dedupe
    return pre


def _load(args: argparse.Namespace):
    from genrec.data.loaders import load_dataset

    return load_dataset(
        args.dataset,
        data_dir=args.data_dir,
        download=getattr(args, "download", False),
        **_preprocessing(args),
    )


def _configs() -> dict[str, Any]:
    """Config class of every registered model (to say which model a config file fits)."""
    from genrec.registry import get_model, list_models

    return {name: get_model(name).config_class for name in list_models()}


def _console():
    """The stderr console, shared with the trainer's progress bar (rich nests the two)."""
    from genrec.console import progress_console

    return progress_console()


def _config_paths(pairs: list[str], models: list[str], where: str) -> dict[str, str]:
    """``--config MODEL=PATH`` pairs as ``{model: path}``: each model must be in ``models``
    and each file must exist (checked before any data is loaded)."""
    paths: dict[str, str] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"--config {pair!r} must look like MODEL=PATH")
        model, path = pair.split("=", 1)
        if model not in models:
            raise ConfigError(f"--config names model {model!r}, which is not in {where}")
        if not Path(path).is_file():
            raise ConfigError(f"--config {model}: config file not found: {path}")
        paths[model] = path
    return paths


def _model_overrides(
    pairs: Sequence[str], models: Sequence[str] | None = None
) -> dict[str, dict[str, Any]]:
    """``--set MODEL.KEY=VALUE`` pairs as ``{model: {key: value}}``.

    ``*.KEY=VALUE`` sets KEY for every model of ``models`` whose config has that field (e.g.
    ``*.time_budget_minutes=4`` for all neural models); a model's own ``--set`` wins over
    the wildcard, and a wildcard key that no model knows is an error.
    """
    from genrec.config import parse_overrides
    from genrec.registry import get_model

    out: dict[str, dict[str, Any]] = {}
    wildcard: dict[str, Any] = {}
    for key, value in parse_overrides(list(pairs)).items():
        if "." not in key:
            raise ConfigError(f"--set {key}=... must name the model: MODEL.KEY=VALUE")
        model, field_name = key.split(".", 1)
        if model == "*":
            wildcard[field_name] = value
        else:
            out.setdefault(model, {})[field_name] = value
    if wildcard:
        if not models:
            raise ConfigError("--set *.KEY=VALUE: there is no model to apply it to")
        for field_name, value in wildcard.items():
            takers = [m for m in models if field_name in get_model(m).config_class.field_names()]
            if not takers:
                raise ConfigError(
                    f"--set *.{field_name}=...: none of the models ({', '.join(models)}) has "
                    f"a config key {field_name!r}"
                )
            for m in takers:
                out.setdefault(m, {}).setdefault(field_name, value)
    return out


# ---------------------------------------------------------------------- commands
def cmd_datasets(args: argparse.Namespace) -> int:
    from genrec.data.loaders import dataset_info, list_datasets

    if args.action == "list":
        from rich.console import Console
        from rich.table import Table

        table = Table(title="datasets")
        for col in ("name", "available", "description"):
            table.add_column(col)
        for row in list_datasets():
            table.add_row(
                row["name"],
                "yes" if row.get("available") else "needs files",
                row.get("description", ""),
            )
        Console().print(table)
        return 0
    if args.action == "synth":
        return _cmd_synth(args)
    if not args.name:
        raise ConfigError("`genrec datasets info` needs a dataset name")
    info = dataset_info(args.name)
    from genrec.data.loaders import load_dataset

    try:
        ds = load_dataset(args.name, data_dir=args.data_dir)
        info["stats"] = ds.stats()
    except GenrecError as exc:
        info["stats"] = f"not loaded: {exc}"
    print(json.dumps(info, indent=2, default=str))
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    import os
    import time

    from genrec.data.synth import is_synth_file, synthesize, write_parquet
    from genrec.paths import check_output_file

    missing = [f"--{n}" for n in ("users", "items", "out") if getattr(args, n) is None]
    if missing:
        raise ConfigError(f"`genrec datasets synth` needs {', '.join(missing)}")
    # before generating: a path genrec may not write fails now
    check_output_file(args.out, overwrite=args.overwrite, owned=is_synth_file, flag="--overwrite")
    t0 = time.perf_counter()
    frame = synthesize(
        args.users, args.items, args.mean_length, args.zipf, args.seed,
        n_clusters=args.clusters, transition=args.transition,
    )  # fmt: skip
    path = write_parquet(frame, args.out, overwrite=args.overwrite, flag="--overwrite")
    n_users = int(frame["user_id"].nunique())
    print(
        f"wrote {path}: {len(frame):,} interactions, {n_users:,} users, "
        f"{int(frame['item_id'].nunique()):,} items, mean length {len(frame) / n_users:.1f} "
        f"({time.perf_counter() - t0:.1f} s, load {os.getloadavg()[0]:.1f})"
    )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    import dataclasses

    from genrec.registry import get_model, list_models, model_summary

    names = [args.name] if args.name else list_models()
    for name in names:
        cls = get_model(name)
        print(f"{name}: {model_summary(cls)}")
        if args.name:
            for f in dataclasses.fields(cls.config_class):
                print(f"  {f.name} = {f.default!r}  # {f.metadata.get('help', '')}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Fit and save. Neural models accept ``--checkpoint-dir``/``--resume``; under
    ``torchrun`` every process trains (DDP) and only rank 0 prints and saves the artifact."""
    from genrec.config import model_config_data, parse_overrides
    from genrec.console import long_step
    from genrec.core.recommender import FitOptions
    from genrec.data.splitting import split_dataset
    from genrec.io import artifact_size, format_bytes
    from genrec.paths import prepare_output_dir
    from genrec.registry import get_model
    from genrec.training.trainer import check_checkpoint_dir, process_rank

    cls = get_model(args.model)
    checkpoint_dir = args.checkpoint_dir
    if (checkpoint_dir or args.resume) and not cls.epoch_trained:
        flag = "--resume" if args.resume else "--checkpoint-dir"
        raise ConfigError(
            f"{flag} only applies to models trained epoch by epoch; "
            f"{args.model!r} is fitted in one go"
        )
    if args.resume and not checkpoint_dir:
        checkpoint_dir = str(Path(args.out)) + ".ckpt"
    chosen = model_config_data(
        args.model,
        args.dataset,
        config_path=args.config,
        overrides=parse_overrides(args.set),
        configs_dir=args.configs_dir,
        use_preset=not args.no_preset,
        config_class=cls.config_class,
        others=_configs() if args.config else None,
    )
    config = cls.config_class.from_dict(chosen.data)
    main_process = process_rank() == 0
    if main_process:  # before the data loads and the model fits, not after
        prepare_output_dir(args.out, "artifact", overwrite=args.overwrite, flag="--overwrite")
        if checkpoint_dir:
            check_checkpoint_dir(
                checkpoint_dir,
                resume=args.resume,
                overwrite=args.overwrite,
                flags=("--resume", "--overwrite"),
            )
    console = _console()
    if main_process:
        console.print(chosen.describe(args.model), soft_wrap=True, markup=False, highlight=False)
    ds = _load(args)
    if args.full:
        train, valid, split_name = ds, None, "none (all interactions)"
    else:
        split = split_dataset(ds, args.split, reconsumption=args.reconsumption)
        train, valid, split_name = split.train, split.valid, args.split
    model = cls(config)
    what = f"fitting {args.model} on {ds.name} ({train.n_interactions:,} interactions)"
    options = FitOptions(
        checkpoint_dir=checkpoint_dir, resume=args.resume, overwrite=args.overwrite
    )
    # timestamped start, progress and end lines, in logs as on a terminal (rank 0 only)
    with long_step(what, enabled=main_process):
        model.fit(train, valid=valid, options=options)
    if not main_process:
        return 0  # the weights are identical on every rank: rank 0 saves them
    model.training_info_ = {
        **(model.training_info_ or {}),
        "dataset": args.dataset,
        "data_dir": args.data_dir,
        "split": split_name,
        "reconsumption": None if args.full else args.reconsumption,
        "train_fingerprint": train.fingerprint(),
        "fit_seconds": model.fit_seconds_,
        "config_source": chosen.source,
        "preprocessing": _preprocessing(args),
    }
    model.save(args.out, overwrite=args.overwrite)
    if cls.epoch_trained:
        console.print(_training_summary(model.training_info_), soft_wrap=True, markup=False)
    size = format_bytes(artifact_size(args.out))
    console.print(
        f"fitted {args.model} in {model.fit_seconds_:.1f} s, saved to {args.out} ({size})",
        soft_wrap=True,
        markup=False,
    )
    return 0


def _training_summary(info: dict[str, Any]) -> str:
    """One line: epochs run, best epoch and metric, early stop, resume (epochs 1-based)."""
    line = f"trained {info.get('epochs_run', 0)} epochs"
    if info.get("best_metric") is not None:
        line += (
            f", best epoch {int(info['best_epoch']) + 1} "
            f"({info['val_metric']} {float(info['best_metric']):.4f})"
        )
    else:
        line += ", no validation"
    line += ", stopped early" if info.get("stopped_early") else ", did not stop early"
    if info.get("resumed_from_epoch") is not None:
        line += f", resumed after epoch {info['resumed_from_epoch']}"
    if int(info.get("world_size") or 1) > 1:
        line += f", {info['world_size']} processes"
    return line


def cmd_evaluate(args: argparse.Namespace) -> int:
    from genrec.data.splitting import split_dataset
    from genrec.evaluation.evaluator import evaluate
    from genrec.io import load_model

    model = load_model(args.artifact)
    info = model.training_info_ or {}
    if args.dataset is None:  # the data the artifact was trained on
        args.dataset = info.get("dataset")
        if not args.dataset:
            raise ConfigError(
                f"the artifact {args.artifact} does not record its dataset; pass --dataset NAME "
                "(and --data-dir DIR if it needs files)"
            )
        if args.data_dir is None:
            args.data_dir = info.get("data_dir")
        where = f" from {args.data_dir}" if args.data_dir else ""
        _console().print(
            f"dataset from the artifact: {args.dataset}{where}", soft_wrap=True, markup=False
        )
    if args.split is None:
        trained = info.get("split")
        args.split = trained if trained in ("loo", "temporal", "ratio") else "loo"
    ds = _load(args)
    split = split_dataset(ds, args.split, reconsumption=args.reconsumption)
    if info.get("split", args.split) != args.split:
        raise ConfigError(
            f"artifact was trained with split {info.get('split')!r}, not {args.split!r}: "
            "evaluating it would leak test data into training or mismatch the protocol"
        )
    fp = info.get("train_fingerprint")
    if fp and fp != split.train.fingerprint():
        raise ConfigError(
            "the artifact's training data is not this dataset's training split "
            "(different data or preprocessing); refusing to report leaky numbers"
        )
    if model.item_map != split.train.item_map or model.user_map != split.train.user_map:
        raise ConfigError("the artifact's user/item ids do not match this dataset")
    res = evaluate(model, split, ks=args.k, sampled_negatives=args.sampled, progress=True)
    if args.json:
        print(json.dumps(res.to_dict(), indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"{model.name} on {args.dataset} ({res.protocol} ranking, test)")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in res.metrics.items():
            table.add_row(key, f"{value:.4f}")
        Console().print(table)
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from genrec.io import load_model

    if args.users is not None:
        return _recommend_file(args)
    for flag, value in (("--out", args.out), ("--ray-address", args.ray_address)):
        if value is not None:
            raise ConfigError(f"{flag} applies to --users FILE, not to one --user")
    model = load_model(args.artifact)
    known = bool(model.user_map.to_internal([args.user], missing="zero")[0])
    if not known and args.on_unknown == "error":
        raise UnknownIdError(
            f"unknown user {args.user!r}: the artifact was trained on "
            f"{len(model.user_map):,} users and this is not one of them. Pass "
            "--on-unknown popular to list the most popular items instead."
        )
    recs = model.recommend(
        [args.user], k=args.k, exclude_seen=not args.include_seen, on_unknown="popular"
    )
    titles = model.item_titles_
    if not known:
        print(f"user {args.user} is unknown: the most popular items (--on-unknown popular)")
    print(f"top-{recs.item_ids.shape[1]} for user {args.user} ({model.name}):")
    for rank, (internal, ext, score) in enumerate(
        zip(recs.internal_item_ids[0], recs.item_ids[0], recs.scores[0]), start=1
    ):
        if internal == 0:
            break
        title = titles[internal] if titles is not None else ""
        print(f"{rank:3d}. {ext}  {title}  (score {score:.4f})")
    return 0


def _recommend_file(args: argparse.Namespace) -> int:
    """``genrec recommend ARTIFACT --users FILE --out OUT``: every user's list as Parquet."""
    from genrec.console import log_line
    from genrec.distributed import batch_recommend

    if args.out is None:
        raise ConfigError("--users FILE needs --out FILE.parquet (where to write the lists)")
    if args.engine == "local" and (args.workers is not None or args.ray_address is not None):
        raise ConfigError("--workers and --ray-address apply to --engine ray")
    result = batch_recommend(
        args.artifact,
        args.users,
        args.out,
        k=args.k,
        engine=args.engine,
        num_workers=args.workers,
        exclude_seen=not args.include_seen,
        on_unknown=args.on_unknown,
        ray_address=args.ray_address,
        overwrite=args.overwrite,
        flag="--overwrite",
    )
    log_line(
        f"wrote {result.path}: {result.n_rows:,} rows for {result.n_users:,} users in "
        f"{result.seconds:.1f} s ({args.engine}, {result.num_workers} worker(s))"
    )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from genrec.io import load_model
    from genrec.text.search import ItemTextIndex, user_history

    model = load_model(args.artifact)
    try:
        history = user_history(model, args.user) if args.user is not None else []
    except UnknownIdError as exc:  # name this command's flags, not the Python API's
        raise UnknownIdError(
            f"{exc}. --user blends in the history of a user the artifact was trained on; "
            "leave it out (or pass --history ITEM,...) for this user."
        ) from exc
    index = ItemTextIndex.from_model(model, encoder=args.encoder)
    history += args.history or []
    hits = index.search(args.query, k=args.k, history=history or None, alpha=args.alpha)
    blend = f", {len(history)} history items, alpha {args.alpha}" if history else ""
    print(f"top-{args.k} for {args.query!r} ({model.name}, {index.encoder_name}{blend}):")
    for rank, row in enumerate(hits.itertuples(index=False), start=1):
        print(f"{rank:3d}. {row.item_id}  {row.title}  (score {row.score:.4f})")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """Read messages from stdin (a terminal or a pipe) and answer each (docs/chat.md)."""
    from genrec.chat import chat_loop, session_from_artifact

    session = session_from_artifact(
        args.artifact,
        dataset=args.dataset,
        data_dir=args.data_dir,
        k=args.k,
        text=args.text,
        lm=args.lm,
        log=lambda msg: print(msg, file=sys.stderr),
    )
    chat_loop(session, sys.stdin, sys.stdout, echo=not sys.stdin.isatty())
    return 0


def cmd_benchmark(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from genrec.bench.benchmark import (
        DEFAULT_MODELS,
        BenchmarkSpec,
        default_run_name,
        resolve_config,
        run_benchmark,
        write_outputs,
    )
    from genrec.config import model_config_data
    from genrec.console import log_line
    from genrec.data.splitting import split_dataset
    from genrec.registry import list_models
    from genrec.report import print_table

    if args.suite and args.reconsumption != "miss":
        raise ConfigError("--reconsumption does not apply to --suite runs yet")
    if args.agreement_with and not args.suite:
        raise ConfigError("--agreement-with only applies with --suite")
    if args.suite:  # genrec.bench.suites: many models, both protocols, one verdict report
        return cmd_suite(args, argv)
    if args.quick or args.protocols:
        raise ConfigError("--quick and --protocols only apply with --suite")
    if args.resume and args.overwrite:
        raise ConfigError(
            "--resume continues the run in the output folder; --overwrite "
            "starts it over: give one of them"
        )
    models = args.models or [m for m in DEFAULT_MODELS if _available(m)]
    known = set(list_models())
    for m in models:
        if m not in known:
            from genrec.registry import get_model

            get_model(m)  # raises with a suggestion
    config_paths = _config_paths(args.config, models, "--models")
    overrides = _model_overrides(args.set, models)
    for model in overrides:
        if model not in models:
            raise ConfigError(f"--set names model {model!r}, which is not in --models")
    spec = BenchmarkSpec(
        dataset=args.dataset,
        reconsumption=args.reconsumption,
        preprocessing=_preprocessing(args),
        models=models,
        seeds=args.seeds,
        first_seed=args.first_seed,
        split=args.split,
        ks=args.k,
        data_dir=args.data_dir,
        reference=args.reference,
        config_paths=config_paths,
        overrides=overrides,
        sampled_negatives=args.sampled,
        configs_dir=args.configs_dir,
        command="genrec " + " ".join(shlex.quote(a) for a in argv),
        tune_budget_minutes=args.tune_budget_minutes,
        use_presets=not args.no_preset,
        max_history=args.max_history,
        history_mode=args.history_mode,
    )
    for model in models:  # a bad config or preset fails now, before the data loads
        resolve_config(model, args.dataset, spec)
    out = (
        Path(args.out)
        if args.out
        else Path("reports") / (args.name or default_run_name(args.dataset))
    )
    partial = _start_run_dir(out, args)  # before the run
    console = _console()
    for m in models:  # the preset rule, one line per model (the same call run_benchmark makes)
        chosen = model_config_data(
            m,
            args.dataset,
            config_path=config_paths.get(m),
            configs_dir=args.configs_dir,
            use_preset=spec.use_presets,
        )
        console.print(chosen.describe(m), soft_wrap=True, markup=False, highlight=False)
    with console.status(f"loading {args.dataset}") as status:
        ds = _load(args)
        status.update(f"splitting ({args.split})")
        split = split_dataset(ds, args.split, reconsumption=args.reconsumption)
        log_line(  # short, and never broken by the console's width
            f"{ds.name}: {ds.n_users:,} users, {ds.n_items:,} items, "
            f"{ds.n_interactions:,} interactions; split {args.split}: "
            f"{len(split.test):,} test users"
        )
        results, evals = run_benchmark(
            spec, ds, split=split, on_progress=_say(console, status), partial_dir=partial
        )
    write_outputs(
        results,
        out,
        evaluations=evals if args.save_recommendations else None,
        split=split,
        overwrite=args.overwrite,
        resume=args.resume,
    )
    print_table(results)
    # one line the console never breaks (a path may be longer than the terminal)
    console.print(
        f"wrote {out}{os.sep}: results.json, report.md, report.html", soft_wrap=True, markup=False
    )
    return 0


def cmd_suite(args: Any, argv: Sequence[str]) -> int:
    """``genrec benchmark --suite NAME [--quick] [--protocols loo,temporal]``."""
    from genrec.bench.benchmark import default_run_name
    from genrec.bench.suites import get_suite, resolve_models, run_suite, write_suite_outputs

    suite = get_suite(args.suite)
    mode = "quick" if getattr(args, "quick", False) else "full"
    seeds_given = any(a == "--seeds" or a.startswith("--seeds=") for a in argv)
    protocols = getattr(args, "protocols", None) or list(
        suite.modes[mode].protocols or suite.protocols
    )
    for p in protocols:
        if p not in ("loo", "temporal", "ratio"):
            raise ConfigError(f"unknown protocol {p!r}; choose from loo, temporal, ratio")
    if getattr(args, "first_seed", 0):
        raise ConfigError("--first-seed is not supported with --suite (its seeds start at 0)")
    command = "genrec " + " ".join(shlex.quote(a) for a in argv)
    # before loading the data, so that a bad --set fails at once
    runnable = resolve_models(suite, args.models)[0]
    overrides = _model_overrides(args.set, runnable)
    config_paths = _config_paths(args.config, runnable, "the suite run")
    name = args.name or f"{suite.name}-{mode}-{default_run_name(args.dataset)}"
    out = Path(args.out) if args.out else Path("reports") / name
    other = None
    if args.agreement_with:  # another run of this suite (e.g. full mode): read it first
        other = _read_suite_json(args.agreement_with)
    partial = _start_run_dir(out, args)  # before the run
    console = _console()
    with console.status(f"loading {args.dataset}") as status:
        ds = _load(args)
        results = run_suite(
            suite,
            ds,
            dataset_name=args.dataset,
            mode=mode,
            protocols=protocols,
            models=args.models,
            overrides=overrides,
            seeds=args.seeds if seeds_given else None,
            reference=args.reference,
            tune_budget_minutes=args.tune_budget_minutes,
            data_dir=args.data_dir,
            configs_dir=args.configs_dir,
            config_paths=config_paths,
            command=command,
            on_progress=_say(console, status),
            use_presets=not getattr(args, "no_preset", False),
            partial_dir=partial,
            agreement_with=other,
            preprocessing=_preprocessing(args),
            max_history=getattr(args, "max_history", None),
            history_mode=getattr(args, "history_mode", "last"),
        )
    write_suite_outputs(results, out, overwrite=args.overwrite, resume=args.resume)
    console.print(results["summary"], soft_wrap=True, markup=False, highlight=False)
    for model, reason in results["skipped"].items():
        console.print(f"skipped {model}: {reason}")
    for protocol, fails in results["failed"].items():
        for model, reason in fails.items():
            console.print(f"[red]failed[/red] {model} ({protocol}): {reason}")
    console.print(
        f"wall time {results['wall_seconds']:.0f} s; wrote {out}{os.sep}: report.md, "
        "suite.json and one folder per protocol",
        soft_wrap=True,
        markup=False,
    )
    return 0


def _start_run_dir(out: Path, args: argparse.Namespace) -> Path:
    """Check a benchmark's output folder (``--overwrite`` / ``--resume``) before the run and
    return the folder of its partial results (see ``genrec.bench.benchmark``)."""
    from genrec.bench.benchmark import start_partial_dir
    from genrec.paths import prepare_output_dir

    prepare_output_dir(
        out,
        "run",
        overwrite=args.overwrite,
        resume=args.resume,
        flag="--overwrite (or --resume to continue an interrupted run)",
    )
    return start_partial_dir(out, resume=args.resume)


def _read_suite_json(path: str) -> dict[str, Any]:
    """The ``suite.json`` of another suite run (``--agreement-with``): a run folder or the
    file itself; errors name the path."""
    p = Path(path)
    if p.is_dir():
        p = p / "suite.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--agreement-with: no suite.json at {p}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--agreement-with: {p} is not a suite.json ({exc})") from None
    if not isinstance(data, dict) or "suite" not in data or "protocols" not in data:
        raise ConfigError(f"--agreement-with: {p} is not a suite.json written by genrec")
    return data


def _say(console: Any, status: Any) -> Callable[[str], None]:
    """Progress messages: the live status line on a terminal; one timestamped line each in
    logs and pipes, where a status line would print nothing."""
    from genrec.console import log_line

    return status.update if console.is_terminal else log_line


def cmd_tune(args: argparse.Namespace) -> int:
    """Tune on the validation split (never the test); save the best config as a preset."""
    from genrec.bench.tuning import check_preset_path, load_space, storage_url, tune
    from genrec.config import check_config_file, model_config_data, parse_overrides
    from genrec.data.splitting import split_dataset
    from genrec.registry import get_model

    if args.budget_trials is None and args.budget_minutes is None:
        raise ConfigError("genrec tune needs --budget-trials N and/or --budget-minutes M")
    chosen = model_config_data(
        args.model,
        args.dataset,
        config_path=args.config,
        configs_dir=args.configs_dir,
        use_preset=not args.no_preset,
    )
    base = dict(chosen.data)
    inline = base.pop("search_space", None)  # a --config file may carry its own space
    if args.config:
        check_config_file(get_model(args.model).config_class, base, args.config, _configs())
    base.update(parse_overrides(args.set))
    _console().print(
        chosen.describe(args.model) + " (the starting point of the search)",
        soft_wrap=True,
        markup=False,
        highlight=False,
    )
    space = load_space(args.space) if args.space else inline
    root = Path("runs") / "tune" / args.dataset
    storage = args.storage or str(root / f"{args.model}.db")
    preset_path = Path(args.save_preset or root / f"{args.model}.yaml")
    # before tuning starts: a preset path genrec may not write fails now, not at the end
    check_preset_path(preset_path, overwrite=args.overwrite, flag="--overwrite")
    storage_url(storage)
    ds = _load(args)
    split = split_dataset(ds, args.split, reconsumption=args.reconsumption)
    result = tune(
        args.model,
        ds,
        split,
        n_trials=args.budget_trials,
        budget_minutes=args.budget_minutes,
        metric=args.metric,
        base_config=base,
        space=space,
        storage=storage,
        study_name=args.study_name,
        seed=args.seed,
        progress=True,
    )
    path = result.save_preset(preset_path, overwrite=args.overwrite)
    print(
        f"best {result.metric} on the validation split: {result.best_value:.4f} "
        f"({result.n_trials} trials in study {result.study_name!r}, {result.n_pruned} pruned)"
    )
    print(f"best config: {json.dumps(result.best_config)}")
    print(f"wrote {path}; study stored in {result.storage}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Rebuild the reports of one results file, or merge several runs into one report."""
    import time

    from genrec.paths import atomic_write_text, prepare_output_dir
    from genrec.report import load_results, merge_results, print_table, write_reports

    loaded, labels = load_results(args.results)
    results = merge_results(loaded, labels)
    source = Path(args.results[0]).resolve()
    if args.out:
        out = Path(args.out)
    elif len(loaded) == 1:
        out = Path(args.results[0]).parent
    else:
        out = Path("reports") / f"merged-{time.strftime('%Y%m%d-%H%M%S')}"
    if len(loaded) > 1 or out.resolve() != source.parent:  # a results file's own folder is a run
        prepare_output_dir(out, "run", overwrite=args.overwrite, flag="--overwrite")
    if len(loaded) > 1 or (out / "results.json").resolve() != source:
        atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    md, page = write_reports(results, out)
    print_table(results)
    print(f"wrote {md} and {page}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve artifacts with FastAPI/uvicorn (see docs/serving.md)."""
    from genrec.serve import run

    run(
        args.artifacts,
        host=args.host,
        port=args.port,
        dataset=args.dataset,
        data_dir=args.data_dir,
        micro_batch=not args.no_micro_batch,
        threads=args.threads,
    )
    return 0


def _cmd_update(args: argparse.Namespace) -> int:
    from genrec.update import cmd_update

    return cmd_update(args)


def _available(model: str) -> bool:
    from genrec.registry import get_model

    return not get_model(model).missing_extras()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``genrec`` command.

    Expected failures (genrec's own errors, a path that cannot be read or written, a file
    that is not text, a size guard) end with one ``genrec: error:`` line on stderr and exit
    status 2. Anything else is a bug in genrec: one line says so and where the traceback was
    written (exit status 70). ``--debug`` or ``GENREC_DEBUG=1`` shows every traceback in
    place instead.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(args.debug) or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    if args.command is None:
        parser.print_help()
        return 0
    with _one_line_warnings():
        try:
            return _dispatch(args, argv)
        except KeyboardInterrupt:
            print("genrec: interrupted", file=sys.stderr)
            return 130
        except GenrecError as exc:
            if debug:
                raise
            print(f"genrec: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        except (OSError, UnicodeError, MemoryError, RecursionError) as exc:
            if debug:
                raise
            print(f"genrec: error: {_expected_message(exc)}", file=sys.stderr)
            return 2
        except Exception as exc:  # a bug: say so, keep the traceback, never swallow it
            if debug:
                raise
            log = _write_crash_log(exc, argv)
            where = f"the traceback is in {log}" if log else "the traceback could not be saved"
            print(
                f"genrec: internal error (a bug in genrec, please report it): "
                f"{type(exc).__name__}: {_one_line(exc)}; {where}; run with --debug or "
                f"{DEBUG_ENV}=1 to see it here",
                file=sys.stderr,
            )
            return EXIT_BUG


def _dispatch(args: argparse.Namespace, argv: Sequence[str]) -> int:
    if args.command == "benchmark":
        return cmd_benchmark(args, argv)
    handler = {
        "datasets": cmd_datasets,
        "models": cmd_models,
        "train": cmd_train,
        "evaluate": cmd_evaluate,
        "recommend": cmd_recommend,
        "search": cmd_search,
        "chat": cmd_chat,
        "report": cmd_report,
        "tune": cmd_tune,
        "update": _cmd_update,
        "serve": cmd_serve,
    }[args.command]
    return handler(args)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _expected_message(exc: BaseException) -> str:
    """One line for an expected failure that is not a GenrecError."""
    if isinstance(exc, OSError):
        what = exc.strerror or _one_line(exc)
        if exc.filename is not None:
            target = f"{exc.filename} -> {exc.filename2}" if exc.filename2 else exc.filename
            return f"{what}: {target}"
        return what
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"a file is not {exc.encoding} text (byte {exc.start}: {exc.reason}); save it as UTF-8"
        )
    if isinstance(exc, MemoryError):
        detail = _one_line(exc)
        return f"out of memory: {detail}" if detail != "MemoryError" else "out of memory"
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to be read"
    return _one_line(exc)


def crash_log_dir() -> Path:
    """Where tracebacks of unexpected errors go: ``$GENREC_CACHE_DIR/logs`` when that
    variable (or its older name ``GENREC_CACHE``) is set, else ``<system temp
    dir>/genrec-logs``."""
    import tempfile

    from genrec.data.loaders.download import CACHE_ENV, CACHE_ENV_ALIAS

    root = os.environ.get(CACHE_ENV) or os.environ.get(CACHE_ENV_ALIAS)
    return Path(root) / "logs" if root else Path(tempfile.gettempdir()) / "genrec-logs"


def _write_crash_log(exc: BaseException, argv: Sequence[str]) -> Path | None:
    """Write the traceback of ``exc`` (with the command and versions) to a new log file."""
    import platform
    import time
    import traceback

    from genrec._version import __version__

    try:
        folder = crash_log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        text = (
            f"genrec {__version__}, Python {platform.python_version()}, {platform.platform()}\n"
            f"command: genrec {' '.join(shlex.quote(a) for a in argv)}\n\n"
            + "".join(traceback.format_exception(exc))
        )
        path.write_text(text, encoding="utf-8")
        return path
    except OSError:
        return None


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Show genrec's warnings as one ``genrec: warning:`` line each (others as usual)."""
    original = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        if issubclass(category, GenrecWarning):
            print(f"genrec: warning: {_one_line(message)}", file=file or sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
