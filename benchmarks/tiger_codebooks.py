"""Fit TIGER codebooks ahead of training and compare the tokenizers' health.

Stage 2 of the semantic-ID pipeline as its own step: item text vectors (MiniLM by default,
extra ``text``; or ``--vectors file.npy``; or ``--vectors-from MODEL``, the item embeddings of a
model fitted on the leave-one-out training split, SEATER's collaborative codes) -> one
:class:`~genrec.tokenizers.ItemCodebook` per tokenizer, fitted exactly as
:class:`~genrec.models.tiger.TIGER` does at fit time with the same ``--seed``
(:func:`genrec.tokenizers.build.fit_codebook`: ``n_levels - 1`` semantic
levels plus the collision level; ``random`` is TIGER's random-ID control). Each is saved
under ``--out/<name>`` for ``--set tiger.codebook_path=...``, so a GPU run spends no time on
tokenizers (and needs no text model there). Prints per tokenizer: fit seconds, code
utilisation per semantic level, collision rate before de-duplication, the largest collision
group and mean items per level-1 / level-2 prefix (how much the levels share: cold items can
only be reached through shared prefixes); stats.json adds per-level entropy.

Run (CPU)::

    PYTHONPATH=src python benchmarks/tiger_codebooks.py --dataset amazon-beauty \\
        --data-dir ../shared/data/amazon-beauty --out .gpu_data/codebooks \\
        --tokenizers rqvae,rkmeans,hkmeans,random

``--set rqvae.epochs=300`` (any tokenizer config field) changes a tokenizer's config (names
and fields are checked before anything is fitted; ``stats.json`` is updated after each
tokenizer and keeps the entries of earlier runs into the same folder);
``--variant NAME=TOKENIZER`` fits a second copy under another name, e.g.
``--variant rqvae-long=rqvae --set rqvae-long.epochs=500``.

LETTER's collaborative regulariser (Wang et al., CIKM 2024): ``--collaborative als`` fits that
model (any registered model with item embeddings: ``als``, ``sasrec``, ...; its shipped preset
``configs/<dataset>/<model>.yaml`` when there is one) on the leave-one-out *training* split,
so no validation or test interaction leaks into the codes, and passes its item vectors
(:func:`genrec.text.collaborative_vectors`) to every tokenizer with ``cf_weight > 0``::

    PYTHONPATH=src python benchmarks/tiger_codebooks.py --dataset amazon-beauty \
        --data-dir ../shared/data/amazon-beauty --out .gpu_data/codebooks --tokenizers rqvae \
        --variant letter=rqvae --set letter.cf_weight=1.0 --collaborative als

(genrec's reconstruction term sums over the vector's dimensions where LETTER's averages, so
LETTER's weight 0.01 corresponds to about 1-4 here; measured in docs/models.md.)

Better codes (docs/models.md, "Better codes"): ``--set rqvae.cost_weight=1`` (CoST's
contrastive quantisation); ``--set NAME.cooc_weight=1`` (co-occurrence alignment: the
consecutive pairs of the training histories, ``--cooc-window``, are passed as
``cooccurrence=``; with ``cooc_target=collaborative``, the default, ``--collaborative MODEL``
gives the vectors of the co-occurring items); ``--vectors-from lightgcn`` (MMGRec's graph
refinement: tokenise LightGCN's layer-combined item embeddings) or ``--append-vectors-from
lightgcn`` (concatenate them, L2-normalised and scaled by ``--append-weight``, to the
L2-normalised text vectors); ``--vectors-from sasrec`` (CE-SASRec item embeddings).
``--model-set sasrec.time_budget_minutes=20`` changes the config of a model fitted for vectors
(its preset otherwise) and ``--vectors-cache DIR`` keeps its vectors for the next run.

Every codebook also gets the code-table proxy of :func:`genrec.tokenizers.quality.
transition_stats` on the leave-one-out training histories: how often consecutive training
items share their level-1 (and level-1-2) codes, the share expected by chance, their ratio
(lift), and the bits a level-1 bigram model saves on the validation targets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    """``NAME.FIELD=VALUE`` strings -> ``{NAME: {FIELD: value}}`` (values read as the CLI's
    ``--set``, :func:`genrec.config.parse_overrides`)."""
    from genrec.config import parse_overrides
    from genrec.errors import ConfigError

    try:
        flat = parse_overrides(items)
    except ConfigError as exc:
        sys.exit(f"--set: {exc}")
    out: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        name, dot, field = key.partition(".")
        if not dot or not name or not field:
            sys.exit(f"--set expects NAME.FIELD=VALUE, got {key!r}")
        out.setdefault(name, {})[field] = value
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="amazon-beauty")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--tokenizers", default="rqvae,rkmeans,hkmeans,random")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=TOKENIZER")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--vectors", default=None, help="item vectors .npy (default: MiniLM text)")
    src.add_argument(
        "--vectors-from", default=None, metavar="MODEL",
        help="tokenise the item embeddings of MODEL (e.g. als, sasrec) fitted on the "
        "leave-one-out training split instead of text vectors (SEATER)",
    )  # fmt: skip
    ap.add_argument("--n-levels", type=int, default=4, help="collision level included")
    ap.add_argument("--codebook-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="NAME.FIELD=VALUE")
    ap.add_argument(
        "--collaborative", default=None, metavar="MODEL",
        help="fit MODEL (e.g. als, sasrec) on the leave-one-out training split and give its "
        "item vectors to the tokenizers with cf_weight > 0 (LETTER)",
    )  # fmt: skip
    ap.add_argument(
        "--append-vectors-from", default=None, metavar="MODEL",
        help="concatenate the item embeddings of MODEL (fitted on the leave-one-out training "
        "split) to the item vectors, both L2-normalised (MMGRec-style graph refinement with "
        "lightgcn)",
    )  # fmt: skip
    ap.add_argument("--append-weight", type=float, default=1.0,
                    help="scale of the appended block (after L2 normalisation)")  # fmt: skip
    ap.add_argument("--model-set", action="append", default=[], metavar="MODEL.FIELD=VALUE",
                    help="config of a model fitted for vectors (on top of its preset)")  # fmt: skip
    ap.add_argument("--vectors-cache", default=None, metavar="DIR",
                    help="save / reuse the vectors of fitted models here (.npy)")  # fmt: skip
    ap.add_argument("--cooc-window", type=int, default=1,
                    help="co-occurring pairs: items up to this many steps apart")  # fmt: skip
    ap.add_argument("--out", required=True, help="folder for <name>/ codebooks + stats.json")
    args = ap.parse_args(argv)
    if args.cooc_window < 1:
        sys.exit("--cooc-window must be >= 1")
    args.model_sets = _parse_sets(args.model_set)

    from genrec.data.loaders import load_dataset
    from genrec.tokenizers import build

    runs = {name: name for name in args.tokenizers.split(",") if name}
    for spec in args.variant:
        name, sep, tok = spec.partition("=")
        if not sep or not name or not tok:
            sys.exit(f"--variant expects NAME=TOKENIZER, got {spec!r}")
        runs[name] = tok
    sets = _parse_sets(args.set)
    unknown = set(sets) - set(runs)
    if unknown:
        sys.exit(f"--set names {sorted(unknown)}, which are not fitted here: {sorted(runs)}")
    from genrec.errors import GenrecError
    from genrec.tokenizers import get_tokenizer

    aligned = []  # tokenizers that take the collaborative vectors
    cooccurring = []  # tokenizers that take co-occurring item pairs
    for name, tok in runs.items():  # bad names and options fail before any expensive step
        taken = {"n_levels", "codebook_size", "seed"} & set(sets.get(name, {}))
        if taken:
            sys.exit(f"--set {name}.{sorted(taken)[0]}: use --n-levels / --codebook-size / --seed")
        if tok == "random":
            continue
        try:
            tokenizer = get_tokenizer(tok)(codebook_size=args.codebook_size, **sets.get(name, {}))
        except (GenrecError, TypeError) as exc:
            sys.exit(f"{name} ({tok}): {exc}")
        cfg = tokenizer.config
        cooc = getattr(cfg, "cooc_weight", 0) > 0
        if cooc:
            cooccurring.append(name)
        if getattr(cfg, "cf_weight", 0) > 0 or (cooc and cfg.cooc_target == "collaborative"):
            aligned.append(name)
    if aligned and not args.collaborative:
        sys.exit(
            f"{aligned} set cf_weight > 0 or a collaborative co-occurrence target: give "
            "--collaborative MODEL (e.g. als)"
        )
    if args.collaborative and not aligned:
        sys.exit(
            "--collaborative: no tokenizer here sets cf_weight > 0 or cooc_weight > 0 with "
            "cooc_target=collaborative, nothing would use it"
        )
    fitted_models = {
        flag: name
        for flag, name in (("--collaborative", args.collaborative),
                           ("--vectors-from", args.vectors_from),
                           ("--append-vectors-from", args.append_vectors_from))
        if name
    }  # fmt: skip
    unused = set(args.model_sets) - set(fitted_models.values())
    if unused:
        sys.exit(f"--model-set names {sorted(unused)}, which no flag here fits")
    for flag, model_name in fitted_models.items():
        from genrec.registry import get_model

        try:
            cls = get_model(model_name)
        except GenrecError as exc:
            sys.exit(f"{flag}: {exc}")
        bad = set(args.model_sets.get(model_name, {})) - set(cls.config_class.field_names())
        if bad:
            sys.exit(f"--model-set {model_name}: unknown config fields {sorted(bad)}")
    ds = load_dataset(args.dataset, data_dir=args.data_dir)
    ids = ds.item_map.to_list()
    if args.vectors_from:
        vectors = _fitted_item_vectors(args.vectors_from, args, ds, "--vectors-from")
        described = f"{args.vectors_from} item embeddings"
    elif args.vectors:
        from genrec.text import load_item_vectors

        vectors = load_item_vectors(args.vectors, ds)
        described = args.vectors
    else:
        from genrec.text import embed_items

        vectors = embed_items(ds)
        described = "minilm item text"
    if args.append_vectors_from:
        extra = _fitted_item_vectors(args.append_vectors_from, args, ds, "--append-vectors-from")
        vectors = concat_normalized([vectors, extra], [1.0, args.append_weight])
        described += (
            f" + {args.append_weight:g} x {args.append_vectors_from} item embeddings "
            "(each L2-normalised)"
        )
    collaborative = None
    if args.collaborative:
        collaborative = _fitted_item_vectors(args.collaborative, args, ds, "--collaborative")
    from genrec.data.splitting import leave_one_out
    from genrec.tokenizers.quality import transition_stats, transitions

    split = leave_one_out(ds)
    train_hist = split.train.histories()
    pairs = transitions(train_hist, window=args.cooc_window) if cooccurring else None
    held_out = _validation_pairs(split)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats_path = out_dir / "stats.json"
    old = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    stats: dict[str, Any] = {
        "dataset": args.dataset, "n_items": len(ids), "vector_dim": int(vectors.shape[1]),
        "vectors": described,
        "seed": args.seed,
        "codebooks": old.get("codebooks", {}) if old.get("dataset") == args.dataset else {},
    }  # fmt: skip
    for name, tok in runs.items():
        options = dict(sets.get(name, {}))
        if tok == "rkmeans":
            options.setdefault("balanced", True)  # TIGER's default (rkmeans_balanced)
        start = time.perf_counter()
        try:
            cb = build.fit_codebook(
                tok, vectors, ids, n_levels=args.n_levels, codebook_size=args.codebook_size,
                seed=args.seed, collaborative=collaborative if name in aligned else None,
                cooccurrence=pairs if name in cooccurring else None, **options,
            )  # fmt: skip
        except GenrecError as exc:  # e.g. vectors that do not match the catalogue
            sys.exit(f"{name} ({tok}): {exc}")
        seconds = time.perf_counter() - start
        cb.save(out_dir / name, overwrite=True)
        health = {
            "tokenizer": tok, "options": options, "fit_seconds": round(seconds, 1),
            "vectors": described, "load_avg_1min": round(os.getloadavg()[0], 2),
        }  # fmt: skip
        if name in aligned:
            health["collaborative"] = f"{args.collaborative} on the leave-one-out training split"
        if name in cooccurring:
            health["cooccurrence"] = (
                f"{len(pairs)} pairs up to {args.cooc_window} apart in the training histories"
            )
        health.update(build.codebook_health(cb.codes, cb.codebook_sizes))
        health["unique"] = bool(cb.is_unique())
        health["proxy"] = transition_stats(cb.codes, train_hist, held_out=held_out)
        stats["codebooks"][name] = health
        stats_path.write_text(json.dumps(stats, indent=1))  # after each: a crash keeps the rest
        proxy = health["proxy"]
        print(
            f"{name:14s} fit {seconds:6.1f}s utilisation/level "
            + "/".join(
                f"{health[f'codebook_utilisation_l{i}']:.2f}" for i in range(1, args.n_levels)
            )
            + f"  collisions {health['collision_rate_before_dedup']:.3f}"
            f"  max group {health['max_items_per_semantic_id']}"
            f"  items/prefix l1 {health['items_per_prefix_l1']:.1f}"
            f" l2 {health.get('items_per_prefix_l2', float('nan')):.2f}"
            f"  next shares l1 {proxy.get('next_shares_l1', float('nan')):.3f}"
            f" (lift {proxy.get('lift_l1', float('nan')):.1f})"
            f" l1-2 {proxy.get('next_shares_l1_2', float('nan')):.4f}"
            f"  bigram bits saved {proxy.get('heldout_l1_bits_saved', float('nan')):.2f}",
            flush=True,
        )
    return 0


def concat_normalized(blocks: list[Any], weights: list[float]) -> Any:
    """Row-wise concatenation of ``(n_items + 1, d_b)`` blocks, each row L2-normalised and
    scaled by its block's weight (zero rows stay zero; row 0 is padding)."""
    import numpy as np

    out = []
    for block, weight in zip(blocks, weights):
        arr = np.asarray(block, dtype=np.float32)
        norm = np.linalg.norm(arr, axis=1, keepdims=True)
        out.append(weight * np.divide(arr, norm, out=np.zeros_like(arr), where=norm > 0))
    return np.concatenate(out, axis=1)


def _validation_pairs(split: Any) -> Any:
    """``(Q, 2)``: each validation user's last training item and its validation target."""
    import numpy as np

    hist = split.train.histories()
    valid = split.valid
    last_pos = hist.seq_indptr[valid.users + 1] - 1
    has = last_pos >= hist.seq_indptr[valid.users]
    targets = valid.targets.tocsr()
    first = targets.indices[targets.indptr[:-1]]  # one target per user under leave-one-out
    return np.stack([hist.seq_items[last_pos[has]], first[has]], 1).astype(np.int64)


def _fitted_item_vectors(name: str, args: argparse.Namespace, ds: Any, flag: str) -> Any:
    """Item vectors ``(n_items + 1, d)`` of model ``name`` fitted on the leave-one-out
    training split (its shipped preset for this dataset when there is one)."""
    import numpy as np
    import yaml

    from genrec.config import find_configs_dir
    from genrec.data.splitting import leave_one_out
    from genrec.errors import GenrecError
    from genrec.registry import get_model
    from genrec.text import collaborative_vectors

    cdir = find_configs_dir()
    preset = cdir / args.dataset / f"{name}.yaml" if cdir is not None else None
    if preset is None or not preset.is_file():
        preset = None
    config = (yaml.safe_load(preset.read_text()) or {}) if preset else {}
    config.update(args.model_sets.get(name, {}))
    cls = get_model(name)
    if "seed" in cls.config_class.field_names():
        config["seed"] = args.seed
    if "progress" in cls.config_class.field_names():
        config["progress"] = False
    cache = None
    if args.vectors_cache:
        import hashlib

        key = json.dumps({"dataset": args.dataset, "model": name, "config": config},
                         sort_keys=True, default=str)  # fmt: skip
        digest = hashlib.sha256(key.encode()).hexdigest()[:12]
        cache = Path(args.vectors_cache) / f"{args.dataset}-{name}-{digest}.npy"
        if cache.is_file():
            vectors = np.load(cache)
            if vectors.shape[0] == ds.n_items + 1:
                print(f"{flag}: {name} vectors from {cache}", flush=True)
                return vectors
    start = time.perf_counter()
    split = leave_one_out(ds)
    try:
        model = cls(**config).fit(split.train, split)  # validation for early stopping
        vectors = collaborative_vectors(model)
    except (GenrecError, TypeError) as exc:
        sys.exit(f"{flag} {name}: {exc}")
    if vectors.shape[0] != ds.n_items + 1:
        sys.exit(f"{flag} {name}: {vectors.shape[0]} item vectors for {ds.n_items} items + padding")
    print(
        f"{flag}: {name} ({preset or 'default config'}"
        + (f", {args.model_sets[name]}" if args.model_sets.get(name) else "")
        + f") fitted on the training split in {time.perf_counter() - start:.1f}s "
        f"(load {os.getloadavg()[0]:.1f}), dim {vectors.shape[1]}",
        flush=True,
    )
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors)
        cache.with_suffix(".json").write_text(key)
    return vectors


if __name__ == "__main__":
    raise SystemExit(main())
