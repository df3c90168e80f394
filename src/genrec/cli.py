"""Command line: ``genrec datasets|train|evaluate|recommend|benchmark|tune|report|serve``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genrec.errors import ConfigError, GenrecError


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


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def _add_data_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--dataset", required=required, help="dataset name (see `genrec datasets list`)")
    p.add_argument("--data-dir", default=None, help="local folder (or file) with the dataset")
    p.add_argument(
        "--download", action="store_true", help="download missing files (cached in ~/.cache/genrec)"
    )
    p.add_argument(
        "--split", default="loo", choices=["loo", "temporal", "ratio"], help="evaluation split"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser (exposed for documentation and tests)."""
    from genrec import __version__

    parser = argparse.ArgumentParser(
        prog="genrec",
        description="Generative recommenders vs strong classical baselines: train, evaluate, "
        "benchmark. Full-ranking evaluation, leak-free splits.",
    )
    parser.add_argument("--version", action="version", version=f"genrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("datasets", help="list datasets or show one's statistics")
    p.add_argument("action", choices=["list", "info"])
    p.add_argument("name", nargs="?", help="dataset name for `info`")
    p.add_argument("--data-dir", default=None)

    p = sub.add_parser("models", help="list registered models and their config fields")
    p.add_argument("name", nargs="?", help="show the config fields of one model")

    p = sub.add_parser("train", help="fit a model and save it as an artifact")
    p.add_argument("model")
    _add_data_args(p)
    p.add_argument("--config", default=None, help="YAML file with config overrides")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override")
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
    p.add_argument("artifact")
    _add_data_args(p)
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
    p.add_argument("artifact")
    p.add_argument(
        "--data", required=True, help="new interactions: CSV, TSV or parquet with "
        "user_id, item_id[, timestamp]; new users and items are added",
    )  # fmt: skip
    p.add_argument("--items", default=None, help="item table rows for new items (title, ...)")
    p.add_argument("--epochs", type=_positive_int, default=None, help="warm-start epochs")
    p.add_argument(
        "--replay", type=float, default=0.0, help="share of unaffected users trained on too"
    )
    p.add_argument("--out", required=True, help="the new artifact (never the old one)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace an earlier genrec artifact at --out"
    )

    p = sub.add_parser("recommend", help="top-k items for a user from a saved artifact")
    p.add_argument("artifact")
    p.add_argument("--user", required=True, help="external user id")
    p.add_argument("--k", type=_positive_int, default=10)
    p.add_argument("--include-seen", action="store_true", help="do not filter history items")

    p = sub.add_parser(
        "search", help="free-text item search over a saved artifact (textknn: its own vectors)"
    )
    p.add_argument("artifact")
    p.add_argument("query", help='what to look for, e.g. "light moisturizer for dry skin"')
    p.add_argument("-k", "--k", type=_positive_int, default=10)
    p.add_argument("--user", default=None, help="blend in this user's training history")
    p.add_argument(
        "--history", type=_csv_list, default=None, metavar="ITEM,...", help="blend in these items"
    )
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the history, in [0, 1]")
    p.add_argument(
        "--encoder",
        default="auto",
        choices=["auto", "minilm", "tfidf"],
        help="encoder of the item titles for non-textknn artifacts",
    )

    p = sub.add_parser(
        "chat", help="terminal dialogue: state likes/dislikes in plain words, get top-k"
    )
    p.add_argument("artifact")
    p.add_argument(
        "--dataset", default=None, help="item table for genres/years (default: the artifact's)"
    )
    p.add_argument("--data-dir", default=None, help="local folder (or file) with the dataset")
    p.add_argument("-k", "--k", type=_positive_int, default=10)
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
    p.add_argument("--configs-dir", default=None, help="folder of presets (default ./configs)")
    p.add_argument(
        "--tune-budget-minutes",
        type=float,
        default=None,
        metavar="M",
        help="tune every model for M minutes on the validation split first (extra `tune`)",
    )
    p.add_argument(
        "--suite",
        default=None,
        metavar="NAME",
        help="run a suite (genrec.suites, e.g. generative-vs-classical): its models, seeds and "
        "budgets under each protocol, and a verdict report",
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
        help="splits of a suite run (default loo,temporal)",
    )

    p = sub.add_parser(
        "tune", help="tune a model's hyper-parameters on the validation split (extra `tune`)"
    )
    p.add_argument("model")
    _add_data_args(p)
    p.add_argument("--budget-trials", type=_positive_int, default=None, metavar="N")
    p.add_argument("--budget-minutes", type=float, default=None, metavar="M")
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
    p.add_argument("--configs-dir", default=None, help="folder of presets (default ./configs)")
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
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--dataset", default=None, help="dataset whose item table adds genres/years")
    p.add_argument("--data-dir", default=None, help="local folder (or file) with the dataset")
    p.add_argument("--threads", type=_positive_int, default=1, help="torch threads per call")
    p.add_argument("--no-micro-batch", action="store_true", help="one model call per request")
    return parser


# ---------------------------------------------------------------------- helpers
def _load(args: argparse.Namespace):
    from genrec.data.loaders import load_dataset

    return load_dataset(
        args.dataset, data_dir=args.data_dir, download=getattr(args, "download", False)
    )


def _console():
    """The stderr console, shared with the trainer's progress bar (rich nests the two)."""
    from genrec.training.trainer import progress_console

    return progress_console()


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


def cmd_models(args: argparse.Namespace) -> int:
    import dataclasses

    from genrec.registry import get_model, list_models

    names = [args.name] if args.name else list_models()
    for name in names:
        cls = get_model(name)
        print(f"{name}: {(cls.__doc__ or '').strip().splitlines()[0]}")
        if args.name:
            for f in dataclasses.fields(cls.config_class):
                print(f"  {f.name} = {f.default!r}  # {f.metadata.get('help', '')}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Fit and save. Neural models accept ``--checkpoint-dir``/``--resume``; under
    ``torchrun`` every process trains (DDP) and only rank 0 prints and saves the artifact."""
    import contextlib

    from genrec.config import load_yaml, parse_overrides
    from genrec.data.splitting import split_dataset
    from genrec.models.neural import NeuralRecommender
    from genrec.paths import prepare_output_dir
    from genrec.registry import get_model
    from genrec.training.trainer import check_checkpoint_dir, process_rank

    cls = get_model(args.model)
    neural = issubclass(cls, NeuralRecommender)
    checkpoint_dir = args.checkpoint_dir
    if (checkpoint_dir or args.resume) and not neural:
        flag = "--resume" if args.resume else "--checkpoint-dir"
        raise ConfigError(
            f"{flag} only applies to neural models (trained epoch by epoch); "
            f"{args.model!r} is fitted in one go"
        )
    if args.resume and not checkpoint_dir:
        checkpoint_dir = str(Path(args.out)) + ".ckpt"
    data = load_yaml(args.config) if args.config else {}
    data.update(parse_overrides(args.set))
    config = cls.config_class.from_dict(data)
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
    ds = _load(args)
    console = _console()
    if args.full:
        train, valid, split_name = ds, None, "none (all interactions)"
    else:
        split = split_dataset(ds, args.split)
        train, valid, split_name = split.train, split.valid, args.split
    model = cls(config)
    what = f"fitting {args.model} on {ds.name} ({train.n_interactions:,} interactions)"
    status = console.status(what) if main_process else contextlib.nullcontext()
    with status:
        if neural:
            model.fit(
                train,
                valid=valid,
                checkpoint_dir=checkpoint_dir,
                resume=args.resume,
                overwrite=args.overwrite,
            )
        else:
            model.fit(train, valid=valid)
    if not main_process:
        return 0  # the weights are identical on every rank: rank 0 saves them
    model.training_info_ = {
        **(getattr(model, "training_info_", None) or {}),
        "dataset": args.dataset,
        "data_dir": args.data_dir,
        "split": split_name,
        "train_fingerprint": train.fingerprint(),
        "fit_seconds": model.fit_seconds_,
    }
    model.save(args.out, overwrite=args.overwrite)
    if neural:
        console.print(_training_summary(model.training_info_), soft_wrap=True, markup=False)
    console.print(
        f"fitted {args.model} in {model.fit_seconds_:.1f}s, saved to {args.out}",
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
    info = getattr(model, "training_info_", None) or {}
    ds = _load(args)
    split = split_dataset(ds, args.split)
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

    model = load_model(args.artifact)
    recs = model.recommend([args.user], k=args.k, exclude_seen=not args.include_seen)
    titles = model.item_titles_
    print(f"top-{args.k} for user {args.user} ({model.name}):")
    for rank, (internal, ext, score) in enumerate(
        zip(recs.internal_item_ids[0], recs.item_ids[0], recs.scores[0]), start=1
    ):
        if internal == 0:
            break
        title = titles[internal] if titles is not None else ""
        print(f"{rank:3d}. {ext}  {title}  (score {score:.4f})")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from genrec.io import load_model
    from genrec.text.search import ItemTextIndex, user_history

    model = load_model(args.artifact)
    index = ItemTextIndex.from_model(model, encoder=args.encoder)
    history = user_history(model, args.user) if args.user is not None else []
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
    from genrec.benchmark import (
        DEFAULT_MODELS,
        BenchmarkSpec,
        default_run_name,
        run_benchmark,
        write_outputs,
    )
    from genrec.data.splitting import split_dataset
    from genrec.evaluation.report import print_table
    from genrec.paths import prepare_output_dir
    from genrec.registry import list_models

    if args.suite:  # genrec.suites: many models, both protocols, one verdict report
        from genrec.suites import cmd_suite

        return cmd_suite(args, argv)
    if args.quick or args.protocols:
        raise ConfigError("--quick and --protocols only apply with --suite")
    models = args.models or [m for m in DEFAULT_MODELS if _available(m)]
    known = set(list_models())
    for m in models:
        if m not in known:
            from genrec.registry import get_model

            get_model(m)  # raises with a suggestion
    config_paths = {}
    for pair in args.config:
        if "=" not in pair:
            raise ConfigError(f"--config {pair!r} must look like MODEL=PATH")
        model, path = pair.split("=", 1)
        if model not in models:
            raise ConfigError(f"--config names model {model!r}, which is not in --models")
        config_paths[model] = path
    overrides = _model_overrides(args.set, models)
    for model in overrides:
        if model not in models:
            raise ConfigError(f"--set names model {model!r}, which is not in --models")
    spec = BenchmarkSpec(
        dataset=args.dataset,
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
        max_history=args.max_history,
        history_mode=args.history_mode,
    )
    out = (
        Path(args.out)
        if args.out
        else Path("reports") / (args.name or default_run_name(args.dataset))
    )
    prepare_output_dir(out, "run", overwrite=args.overwrite, flag="--overwrite")  # before the run
    console = _console()
    with console.status(f"loading {args.dataset}") as status:
        ds = _load(args)
        status.update(f"splitting ({args.split})")
        split = split_dataset(ds, args.split)
        console.print(f"{ds!r}; split {args.split}: {len(split.test):,} test users")
        results, evals = run_benchmark(spec, ds, split=split, on_progress=_say(console, status))
    write_outputs(
        results,
        out,
        evaluations=evals if args.save_recommendations else None,
        split=split,
        overwrite=args.overwrite,
    )
    print_table(results)
    console.print(f"wrote {out / 'results.json'}, {out / 'report.md'} and {out / 'report.html'}")
    return 0


def _say(console: Any, status: Any) -> Callable[[str], None]:
    """Progress messages: the live status line on a terminal; one timestamped line each in
    logs and pipes, where a status line would print nothing."""
    from genrec.training.trainer import log_line

    return status.update if console.is_terminal else log_line


def cmd_tune(args: argparse.Namespace) -> int:
    """Tune on the validation split (never the test); save the best config as a preset."""
    from genrec.benchmark import find_configs_dir
    from genrec.config import load_yaml, parse_overrides
    from genrec.data.splitting import split_dataset
    from genrec.tuning import check_preset_path, load_space, storage_url, tune

    if args.budget_trials is None and args.budget_minutes is None:
        raise ConfigError("genrec tune needs --budget-trials N and/or --budget-minutes M")
    if args.config:
        base = load_yaml(args.config)
    else:
        cdir = find_configs_dir(args.configs_dir)
        preset = cdir / args.dataset / f"{args.model}.yaml" if cdir else None
        base = load_yaml(preset) if preset is not None and preset.is_file() else {}
    inline = base.pop("search_space", None)  # a --config file may carry its own space
    base.update(parse_overrides(args.set))
    space = load_space(args.space) if args.space else inline
    root = Path("runs") / "tune" / args.dataset
    storage = args.storage or str(root / f"{args.model}.db")
    preset_path = Path(args.save_preset or root / f"{args.model}.yaml")
    # before tuning starts: a preset path genrec may not write fails now, not at the end
    check_preset_path(preset_path, overwrite=args.overwrite, flag="--overwrite")
    storage_url(storage)
    ds = _load(args)
    split = split_dataset(ds, args.split)
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

    from genrec.evaluation.report import load_results, merge_results, print_table, write_reports
    from genrec.paths import atomic_write_text, prepare_output_dir

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
    if model != "als":
        return True
    import importlib.util

    return importlib.util.find_spec("implicit") is not None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``genrec`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
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
    except GenrecError as exc:
        print(f"genrec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genrec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
