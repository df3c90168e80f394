"""Past one machine: batch inference and sharded evaluation on an existing engine (Ray).

Two jobs outgrow one process long before training does, and both are embarrassingly
parallel over users:

* :func:`batch_recommend`: top-k lists for every user of a Parquet file, written as one
  Parquet file (``user_id, rank, item_id, score``, the long format of
  :meth:`~genrec.core.recommender.Recommendations.to_frame`);
* :func:`evaluate_sharded`: :func:`genrec.evaluate` over shards of the test users, merged into
  the result that one process gives.

Both take ``engine="local"`` (this process, no extra dependency) or ``engine="ray"``: Ray
Data's ``map_batches`` over shards of user ids, with an actor pool whose actors each load the
artifact once (:func:`genrec.load`) and rank through :meth:`Recommender.recommend`, the
same call as the local engine. Nothing here schedules, retries or moves data by hand: that
is Ray's job. With ``ray_address=None`` a private local Ray instance is started (one CPU per
worker) and shut down afterwards; ``ray_address="auto"`` or ``"ray://head:10001"`` joins an
existing cluster (``ray start --head`` on the head node, ``ray start --address=HEAD:6379`` on
the others), where every node must have genrec installed and be able to read the artifact
path (shared storage).

The two engines give identical output: the driver cuts the users into the same batches
(``batch_size`` users, in the file's order) that the local engine ranks, each batch is
ranked by the same call on the same artifact, and Ray is told to keep the order.

Ray is an optional dependency: ``pip install 'genrec[distributed]'``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from genrec._version import __version__
from genrec.core.recommender import Recommender, check_k
from genrec.data.dataset import IdMap
from genrec.data.splitting import Holdout, Split
from genrec.errors import (
    ArtifactError,
    ConfigError,
    DataValidationError,
    GenrecError,
    NotFittedError,
    UnknownIdError,
    require_extra,
    suggest,
)
from genrec.evaluation.evaluator import (
    DEFAULT_KS,
    DEFAULT_METRICS,
    EvaluationResult,
    beyond_accuracy_metrics,
    check_metric_names,
    evaluate,
    holdout_of,
)
from genrec.io import REQUIRED_FILES, load
from genrec.paths import atomic_file, check_output_file

if TYPE_CHECKING:
    import pyarrow as pa
    import scipy.sparse as sp

Engine = Literal["local", "ray"]
OnUnknown = Literal["error", "popular"]

ENGINES: tuple[str, ...] = ("local", "ray")
#: The Parquet schema metadata key that marks a file written by :func:`batch_recommend`.
METADATA_KEY = b"genrec"
RECOMMENDATIONS_FORMAT = "recommendations"


# ---------------------------------------------------------------------- checks
def _check_engine(engine: Any) -> str:
    if engine not in ENGINES:
        raise ConfigError(
            f"engine must be one of {', '.join(ENGINES)}, got {engine!r}."
            f"{suggest(str(engine), ENGINES)}"
        )
    return engine


def _check_positive(name: str, value: Any, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# ---------------------------------------------------------------------- input and output
def read_user_ids(users_path: str | Path) -> np.ndarray:
    """The ``user_id`` column of a Parquet file, in file order.

    Raises:
        DataValidationError: the file is missing or not Parquet, it has no ``user_id``
            column, no rows, or missing (null) user ids.
    """
    pq = require_extra("pyarrow.parquet", "parquet")
    path = Path(users_path).expanduser()
    if not path.is_file():
        raise DataValidationError(f"users file not found: {str(path)!r}")
    try:
        schema = pq.read_schema(path)
        names = list(schema.names)
        if "user_id" not in names:
            raise DataValidationError(
                f"{path} has no 'user_id' column (it has: {', '.join(names) or 'none'})."
                f"{suggest('user_id', names)}"
            )
        column = pq.read_table(path, columns=["user_id"]).column("user_id")
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        if isinstance(exc, GenrecError):
            raise
        raise DataValidationError(f"{path} is not a readable Parquet file: {exc}") from exc
    if len(column) == 0:
        raise DataValidationError(f"{path} holds no users: its 'user_id' column is empty")
    if column.null_count:
        first = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataValidationError(
            f"{path}: {column.null_count} of {len(column)} user ids are missing (null), the "
            f"first in row {first}"
        )
    return column.to_numpy(zero_copy_only=False)


def _artifact_id_maps(artifact_path: str | Path) -> tuple[IdMap, IdMap]:
    """The user and item id maps of an artifact, read from ``ids.json`` alone (the driver of a
    Ray job checks the users without loading the model)."""
    path = Path(artifact_path).expanduser()
    if not path.is_dir():
        raise ArtifactError(f"no artifact directory at {path}")
    missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
    if missing:
        raise ArtifactError(f"artifact at {path} is incomplete: missing {', '.join(missing)}")
    try:
        ids = json.loads((path / "ids.json").read_text(encoding="utf-8"))
        return IdMap(ids["users"]), IdMap(ids["items"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"artifact file {path / 'ids.json'} is corrupt: {exc}") from exc


def check_known_users(users: np.ndarray, user_map: IdMap) -> None:
    """Raise :class:`UnknownIdError` naming (some of) the users that ``user_map`` lacks."""
    try:
        user_map.to_internal(users, what="user")
    except UnknownIdError as exc:
        raise UnknownIdError(
            f"{exc}; pass on_unknown='popular' to rank unknown users by popularity"
        ) from None


def is_genrec_recommendations(path: str | Path) -> bool:
    """True when ``path`` is a Parquet file that :func:`batch_recommend` wrote (its schema
    metadata says so)."""
    try:
        import pyarrow.parquet as pq

        metadata = pq.read_schema(path).metadata or {}
        return json.loads(metadata[METADATA_KEY]).get("format") == RECOMMENDATIONS_FORMAT
    except Exception:  # not Parquet, no metadata, not JSON, no pyarrow: not ours
        return False


def _output_schema(users: np.ndarray, item_map: IdMap, metadata: dict[str, Any]) -> pa.Schema:
    import pyarrow as pa

    user_type = pa.array(users[:1]).type
    item_type = pa.array(item_map.external_ids[:1]).type
    return pa.schema(
        [
            ("user_id", user_type),
            ("rank", pa.int64()),
            ("item_id", item_type),
            ("score", pa.float32()),
        ],
        metadata={METADATA_KEY: json.dumps(metadata).encode()},
    )


def _to_table(frame: pd.DataFrame | pa.Table, schema: pa.Schema) -> pa.Table:
    import pyarrow as pa

    if isinstance(frame, pd.DataFrame):
        arrays = [
            pa.array(frame[field.name].to_numpy(), type=field.type, from_pandas=True)
            for field in schema
        ]
        return pa.Table.from_arrays(arrays, schema=schema)
    return frame.select(schema.names).cast(schema)


# ---------------------------------------------------------------------- ranking a batch
def recommend_frame(
    model: Recommender,
    users: np.ndarray,
    *,
    k: int,
    exclude_seen: bool = True,
    on_unknown: OnUnknown = "error",
) -> pd.DataFrame:
    """Top-``k`` lists of ``users`` (external ids) in long format (``user_id, rank, item_id,
    score``), through :meth:`Recommender.recommend`: the one batch step of both engines."""
    recs = model.recommend(
        users,
        k=k,
        exclude_seen=exclude_seen,
        on_unknown="raise" if on_unknown == "error" else "popular",
        batch_size=max(1, len(users)),
    )
    return recs.to_frame()


class _RecommendBatch:
    """Ray Data's callable class: an actor loads the artifact once, then ranks batches."""

    def __init__(self, artifact_path: str, k: int, exclude_seen: bool, on_unknown: str):
        self.model = load(artifact_path)
        self.k, self.exclude_seen, self.on_unknown = k, exclude_seen, on_unknown

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return recommend_frame(
            self.model,
            batch["user_id"].to_numpy(),
            k=self.k,
            exclude_seen=self.exclude_seen,
            on_unknown=self.on_unknown,  # type: ignore[arg-type]
        )


# ---------------------------------------------------------------------- Ray
@contextlib.contextmanager
def ray_session(ray_address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Yield the ``ray`` module with a connection: the caller's if Ray is already
    initialised, the cluster at ``ray_address`` (``"auto"``, ``"ray://host:10001"``), or a
    private local instance with ``num_cpus`` CPUs (default: every core). A connection opened
    here is closed on exit.
    """
    ray = require_extra("ray", "distributed")
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"address": ray_address}  # a cluster: its own settings
        if ray_address is None:
            kwargs = {"num_cpus": num_cpus or os.cpu_count() or 1, "include_dashboard": False}
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = ray_address or "a local instance"
            raise GenrecError(f"could not start or join Ray at {where}: {exc}") from exc
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def _cluster_cpus(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


@contextlib.contextmanager
def _data_context(ray: Any, **options: Any) -> Iterator[Any]:
    """Ray Data's per-driver context with ``execution_options`` set, restored afterwards."""
    ctx = ray.data.DataContext.get_current()
    saved = {name: getattr(ctx.execution_options, name) for name in options}
    saved_bars = ctx.enable_progress_bars
    try:
        for name, value in options.items():
            setattr(ctx.execution_options, name, value)
        yield ctx
    finally:
        for name, value in saved.items():
            setattr(ctx.execution_options, name, value)
        ctx.enable_progress_bars = saved_bars


# ---------------------------------------------------------------------- batch inference
@dataclass
class BatchInferenceResult:
    """What :func:`batch_recommend` did.

    Attributes:
        path: the Parquet file written.
        n_users: users ranked (rows of the users file).
        n_rows: rows written (``n_users * k`` less lists shorter than ``k``).
        seconds: wall time from the first batch sent to the file in place (loading the
            artifact included; starting Ray not).
        engine: ``"local"`` or ``"ray"``.
        num_workers: parallel workers (1 for the local engine).
        first_batch_seconds: wall time until the first batch of lists came back (loading
            the artifact, starting Ray's actors, ranking one batch): the fixed cost.
        first_batch_users: users in that first batch.
    """

    path: Path
    n_users: int
    n_rows: int
    seconds: float
    engine: str
    num_workers: int
    first_batch_seconds: float = 0.0
    first_batch_users: int = 0

    @property
    def users_per_second(self) -> float:
        """Throughput, end to end."""
        return self.n_users / self.seconds if self.seconds > 0 else float("inf")

    @property
    def steady_users_per_second(self) -> float | None:
        """Throughput after the first batch (workers started, artifact loaded); ``None``
        when the first batch was all of it."""
        rest = self.seconds - self.first_batch_seconds
        if self.n_users <= self.first_batch_users or rest <= 0:
            return None
        return (self.n_users - self.first_batch_users) / rest


def batch_recommend(
    artifact_path: str | Path,
    users_path: str | Path,
    out_path: str | Path,
    *,
    k: int = 10,
    engine: Engine = "local",
    num_workers: int | None = None,
    batch_size: int = 1024,
    exclude_seen: bool = True,
    on_unknown: OnUnknown = "error",
    ray_address: str | None = None,
    overwrite: bool = False,
    progress: bool = False,
    flag: str = "overwrite=True",
) -> BatchInferenceResult:
    """Top-``k`` recommendations for every user of a Parquet file, written as Parquet.

    Args:
        artifact_path: a saved model (:meth:`Recommender.save`); with a Ray cluster, a path
            that every node can read.
        users_path: a Parquet file with a ``user_id`` column (external ids, in any order;
            a user listed twice gets two identical lists).
        out_path: the Parquet file to write: ``user_id, rank, item_id, score`` (ranks from 1,
            rows in the users file's order, then by rank; a list shorter than ``k`` when
            fewer items qualify). Written atomically; an existing file is replaced only if
            :func:`batch_recommend` wrote it and ``overwrite`` is set.
        k: list length.
        engine: ``"local"`` (this process) or ``"ray"`` (Ray Data, an actor pool).
        num_workers: Ray actors, each loading the artifact once and using one CPU (default:
            the cluster's CPUs). Ignored by the local engine.
        batch_size: users per batch (the unit of work sent to an actor; bounds memory).
        exclude_seen: never recommend an item in the user's training history.
        on_unknown: ``"error"`` refuses users the model has not seen (naming some of them),
            before any ranking; ``"popular"`` ranks them by training popularity.
        ray_address: an existing Ray cluster (``"auto"``, ``"ray://host:10001"``); default a
            private local instance with ``num_workers`` CPUs, shut down afterwards.
        overwrite: replace an earlier output of :func:`batch_recommend` at ``out_path``.
        progress: show Ray Data's progress bars.
        flag: how the caller's surface spells ``overwrite`` (``--overwrite``), for messages.

    Returns:
        A :class:`BatchInferenceResult` (path, counts, seconds, throughput).

    Raises:
        ConfigError: a bad ``k``, ``engine``, ``num_workers``, ``batch_size`` or
            ``on_unknown``.
        DataValidationError: the users file is unreadable, lacks ``user_id``, is empty, or
            has missing ids.
        UnknownIdError: unknown users with ``on_unknown="error"``.
        ArtifactError: no artifact at ``artifact_path``.
        OutputPathError: ``out_path`` is not writable, or holds a file genrec did not write
            (or an earlier output, without ``overwrite``).
        MissingExtraError: ``engine="ray"`` without Ray installed.
    """
    k = int(check_k(k))
    _check_engine(engine)
    batch_size = int(_check_positive("batch_size", batch_size))  # type: ignore[arg-type]
    num_workers = _check_positive("num_workers", num_workers, optional=True)
    if on_unknown not in ("error", "popular"):
        raise ConfigError(f"on_unknown must be 'error' or 'popular', got {on_unknown!r}")
    if engine == "ray":
        require_extra("ray", "distributed")  # before any work
    out = check_output_file(
        out_path, overwrite=overwrite, owned=is_genrec_recommendations, flag=flag
    )
    user_map, item_map = _artifact_id_maps(artifact_path)
    users = read_user_ids(users_path)
    if on_unknown == "error":
        check_known_users(users, user_map)
    metadata = {
        "format": RECOMMENDATIONS_FORMAT,
        "genrec_version": __version__,
        "artifact": str(Path(artifact_path).expanduser().resolve()),
        "k": k,
        "exclude_seen": bool(exclude_seen),
        "on_unknown": on_unknown,
    }
    schema = _output_schema(users, item_map, metadata)
    starts = range(0, len(users), batch_size)
    options = {"k": k, "exclude_seen": bool(exclude_seen), "on_unknown": on_unknown}

    first: list[float] = []  # when the first batch came back, and its users

    def write(batches: Iterator[pd.DataFrame | pa.Table]) -> int:
        import pyarrow.parquet as pq

        n_rows = 0
        with (
            atomic_file(out, owned=is_genrec_recommendations) as tmp,
            pq.ParquetWriter(tmp, schema) as writer,
        ):
            for batch in batches:
                table = _to_table(batch, schema)
                if not first:
                    first.extend([time.perf_counter(), min(batch_size, len(users))])
                if table.num_rows:
                    writer.write_table(table)
                    n_rows += table.num_rows
        return n_rows

    def result(engine: str, workers: int, start: float, n_rows: int) -> BatchInferenceResult:
        end = time.perf_counter()
        first_at, first_users = first if first else (end, len(users))
        return BatchInferenceResult(
            out, len(users), n_rows, end - start, engine, workers, first_at - start,
            int(first_users),
        )  # fmt: skip

    if engine == "local":
        start = time.perf_counter()
        model = load(artifact_path)
        n_rows = write(recommend_frame(model, users[s : s + batch_size], **options) for s in starts)
        return result("local", 1, start, n_rows)

    with ray_session(ray_address, num_workers) as ray:
        workers = num_workers or _cluster_cpus(ray)
        # One block per batch: the actors rank exactly the local engine's batches.
        shards = [pd.DataFrame({"user_id": users[s : s + batch_size]}) for s in starts]
        with _data_context(ray, preserve_order=True) as ctx:
            ctx.enable_progress_bars = progress
            start = time.perf_counter()
            dataset = ray.data.from_pandas(shards).map_batches(
                _RecommendBatch,
                fn_constructor_kwargs={"artifact_path": str(artifact_path), **options},
                batch_size=batch_size,
                batch_format="pandas",
                compute=ray.data.ActorPoolStrategy(size=workers),
                num_cpus=1,
            )
            n_rows = write(dataset.iter_batches(batch_size=None, batch_format="pyarrow"))
            return result("ray", workers, start, n_rows)


# ---------------------------------------------------------------------- evaluation
def shard_holdout(holdout: Holdout, num_shards: int) -> list[Holdout]:
    """Cut ``holdout`` into at most ``num_shards`` contiguous, non-empty parts (sizes differ
    by at most one user), each with the same history; concatenated they are ``holdout``."""
    num_shards = int(_check_positive("num_shards", num_shards))  # type: ignore[arg-type]
    bounds = np.linspace(0, len(holdout), min(num_shards, len(holdout)) + 1).astype(np.int64)
    return [
        Holdout(holdout.users[lo:hi], holdout.targets[lo:hi], holdout.history)
        for lo, hi in zip(bounds[:-1], bounds[1:])
    ]


class _ShardEvaluator:
    """A Ray actor: loads the artifact once, then evaluates shards of a holdout."""

    def __init__(self, artifact_path: str):
        self.model = load(artifact_path)

    def evaluate(self, holdout: Holdout, lo: int, hi: int, options: dict[str, Any]) -> Any:
        shard = Holdout(holdout.users[lo:hi], holdout.targets[lo:hi], holdout.history)
        return evaluate(self.model, shard, **options)


def _merge(
    model: Recommender,
    holdout: Holdout,
    parts: Sequence[EvaluationResult],
    *,
    stage: str,
    ks: Sequence[int],
    metrics: Sequence[str],
    beyond_accuracy: bool,
    item_features: sp.csr_matrix | None,
    item_vectors: np.ndarray | None,
    info: dict[str, Any],
    seconds: float,
) -> EvaluationResult:
    """One :class:`EvaluationResult` from shard results, as one process computes it: per-user
    arrays concatenated in shard order, means over the merged arrays, and the
    beyond-accuracy metrics over the merged lists (never averaged over shards)."""
    per_user = {key: np.concatenate([p.per_user[key] for p in parts]) for key in parts[0].per_user}
    users = np.concatenate([p.users for p in parts])
    ranked = np.concatenate([p.ranked for p in parts], axis=0)
    if not np.array_equal(users, holdout.users):  # the shards must tile the holdout
        raise GenrecError("internal error: the merged shards do not match the holdout's users")
    summary = {key: float(values.mean()) for key, values in per_user.items()}
    if beyond_accuracy:
        summary.update(
            beyond_accuracy_metrics(
                model,
                holdout,
                ranked,
                ks=ks,
                item_features=item_features,
                item_vectors=item_vectors,
            )
        )
    return EvaluationResult(
        metrics=summary,
        per_user=per_user,
        users=users,
        ranked=ranked,
        protocol="full",
        stage=stage,
        seconds=seconds,
        info={**parts[0].info, **info},
    )


def evaluate_sharded(
    model: Recommender | str | Path,
    split: Split | Holdout,
    *,
    engine: Engine = "local",
    num_shards: int = 2,
    num_workers: int | None = None,
    stage: str = "test",
    ks: Sequence[int] = DEFAULT_KS,
    metrics: Sequence[str] = DEFAULT_METRICS,
    beyond_accuracy: bool = True,
    exclude_seen: bool = True,
    batch_size: int = 1024,
    item_features: sp.csr_matrix | None = None,
    item_vectors: np.ndarray | None = None,
    ray_address: str | None = None,
) -> EvaluationResult:
    """:func:`genrec.evaluate` over shards of the users, merged: the result of one process.

    The holdout's users are cut into ``num_shards`` contiguous shards; each is evaluated by
    :func:`genrec.evaluate` (full ranking, pessimistic ties) on a :class:`Holdout` of those
    users with the same history. The per-user metric arrays, users and ranked lists are
    concatenated in shard order, so they equal one process's; the means are taken over the
    merged arrays and the beyond-accuracy metrics (coverage, Gini, novelty, popularity,
    diversity) are computed once over the merged lists, as :func:`genrec.evaluate` does.

    Sampled evaluation is not offered: its negatives are drawn per holdout row from one
    random stream, which shards would draw differently.

    Args:
        model: a fitted model, or the path of a saved artifact. With ``engine="ray"`` a
            model object is saved to a temporary artifact that the workers load (a local Ray
            instance, or a cluster sharing this machine's temporary folder); give a path on
            shared storage for a cluster.
        split: a :class:`Split` (``stage`` picks the holdout) or a :class:`Holdout`.
        engine: ``"local"`` (shards in turn, in this process) or ``"ray"`` (one Ray actor per
            worker, each loading the artifact once).
        num_shards: shards of the users (fewer when there are fewer users).
        num_workers: Ray actors (default: ``min(num_shards, cluster CPUs)``).
        stage, ks, metrics, beyond_accuracy, exclude_seen, batch_size, item_features,
            item_vectors: as for :func:`genrec.evaluate`.
        ray_address: an existing Ray cluster; default a private local instance.

    Returns:
        An :class:`~genrec.evaluation.evaluator.EvaluationResult`; ``seconds`` is the wall
        time of the sharded ranking, ``info`` adds ``engine``, ``num_shards`` and
        ``shard_seconds``.
    """
    _check_engine(engine)
    check_metric_names(metrics, ks)
    num_workers = _check_positive("num_workers", num_workers, optional=True)
    holdout = holdout_of(split, stage)
    if len(holdout) == 0:
        raise DataValidationError("evaluate_sharded: the holdout has no users")
    shards = shard_holdout(holdout, num_shards)
    options: dict[str, Any] = {
        "ks": list(ks),
        "metrics": list(metrics),
        "beyond_accuracy": False,
        "exclude_seen": exclude_seen,
        "batch_size": batch_size,
    }
    artifact = None if isinstance(model, Recommender) else Path(model).expanduser()
    start = time.perf_counter()
    if engine == "local":
        fitted = model if isinstance(model, Recommender) else load(artifact)  # type: ignore[arg-type]
        parts = [evaluate(fitted, shard, **options) for shard in shards]
    else:
        fitted, parts = _evaluate_on_ray(
            model, artifact, holdout, shards, options, num_workers, ray_address
        )
    seconds = time.perf_counter() - start
    info = {
        "engine": engine,
        "num_shards": len(shards),
        "shard_seconds": [p.seconds for p in parts],
    }
    return _merge(
        fitted,
        holdout,
        parts,
        stage=stage,
        ks=ks,
        metrics=metrics,
        beyond_accuracy=beyond_accuracy,
        item_features=item_features,
        item_vectors=item_vectors,
        info=info,
        seconds=seconds,
    )


def _evaluate_on_ray(
    model: Recommender | str | Path,
    artifact: Path | None,
    holdout: Holdout,
    shards: list[Holdout],
    options: dict[str, Any],
    num_workers: int | None,
    ray_address: str | None,
) -> tuple[Recommender, list[EvaluationResult]]:
    require_extra("ray", "distributed")
    with contextlib.ExitStack() as stack:
        if artifact is None:  # ship a model object the one way genrec persists models
            if not model.is_fitted:  # type: ignore[union-attr]
                raise NotFittedError(f"{type(model).__name__} is not fitted: call fit first")
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="genrec-eval-")))
            artifact = model.save(tmp / "model")  # type: ignore[union-attr]
        fitted = model if isinstance(model, Recommender) else load(artifact)
        ray = stack.enter_context(ray_session(ray_address, num_workers or len(shards)))
        workers = min(len(shards), num_workers or _cluster_cpus(ray))
        actor = ray.remote(num_cpus=1)(_ShardEvaluator)
        pool = ray.util.ActorPool([actor.remote(str(artifact)) for _ in range(workers)])
        ref = ray.put(holdout)  # one copy in the object store, read by every actor
        bounds = np.cumsum([0] + [len(s) for s in shards])
        jobs = [(int(lo), int(hi)) for lo, hi in zip(bounds[:-1], bounds[1:])]
        parts = list(pool.map(lambda a, job: a.evaluate.remote(ref, job[0], job[1], options), jobs))
    return fitted, parts


# ---------------------------------------------------------------------- training: FSDP2
def fully_shard_network(
    network: Any,
    *,
    mesh: Any = None,
    forward_methods: Sequence[str] = (),
    reshard_after_forward: bool = True,
) -> Any:
    """Shard a network's parameters (its item table included) over the ranks of the process
    group with FSDP2 (:func:`torch.distributed.fsdp.fully_shard`), the minimal path for an
    item table whose optimizer state does not fit one device (see docs/scale.md).

    Every parameter is split by rows (dim 0) across the ranks: rank ``r`` of ``N`` keeps
    about ``1/N`` of the item table's rows, of their gradients and of Adam's two moments
    (16 bytes per parameter in fp32 become ``16 / N``). The network is one FSDP group, so the
    full parameters are all-gathered for each forward and backward and freed afterwards
    (``reshard_after_forward``): tied item embeddings (an output layer ``h @ E.T`` that reads
    ``item_emb.weight`` inside ``forward``) work unchanged, and gradients are averaged over
    the ranks as under DDP. Methods other than ``forward`` that read the parameters (SASRec's
    ``score_last``) must be listed in ``forward_methods``.

    Call it in every process after ``torch.distributed.init_process_group`` (``torchrun``;
    gloo on CPU, NCCL on GPUs) and before creating the optimizer. The full weights of a
    parameter are ``param.full_tensor()`` (a collective: every rank calls it).

    Args:
        network: a ``torch.nn.Module`` on this process's device.
        mesh: a 1-D ``DeviceMesh``; default all ranks of the default process group.
        forward_methods: extra methods to gather the parameters for (``"score_last"``).
        reshard_after_forward: free the gathered parameters after forward (less memory,
            one more all-gather in backward).

    Returns:
        ``network``, sharded in place (its class becomes an ``FSDPModule`` subclass).

    Raises:
        GenrecError: no process group is initialised.
        ConfigError: a table with ``sparse=True`` gradients (FSDP needs dense ones), or a
            method in ``forward_methods`` that the network lacks.
    """
    import torch
    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard, register_fsdp_forward_method

    if not (dist.is_available() and dist.is_initialized()):
        raise GenrecError(
            "fully_shard_network needs an initialised process group: run under torchrun "
            "(torch.distributed.init_process_group)"
        )
    for name, module in network.named_modules():
        if isinstance(module, torch.nn.Embedding) and module.sparse:
            raise ConfigError(f"embedding {name!r} has sparse gradients, which FSDP cannot shard")
    for method in forward_methods:
        if not callable(getattr(network, method, None)):
            raise ConfigError(f"{type(network).__name__} has no method {method!r} to shard")
    if mesh is None:
        from torch.distributed.device_mesh import init_device_mesh

        device = next(network.parameters()).device.type
        mesh = init_device_mesh(device, (dist.get_world_size(),))
    fully_shard(network, mesh=mesh, reshard_after_forward=reshard_after_forward)
    for method in forward_methods:
        register_fsdp_forward_method(network, method)
    return network


__all__ = [
    "BatchInferenceResult",
    "batch_recommend",
    "check_known_users",
    "evaluate_sharded",
    "fully_shard_network",
    "is_genrec_recommendations",
    "ray_session",
    "read_user_ids",
    "recommend_frame",
    "shard_holdout",
]
