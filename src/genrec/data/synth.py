"""Synthetic interaction logs with realistic skew and learnable structure, at any scale.

:func:`synthesize` draws a log of ``(user_id, item_id, timestamp)`` rows, vectorised in numpy
(20M rows take well under a minute and a few GiB); :func:`write_parquet` writes it in row
groups that :func:`genrec.data.loaders.load_parquet` reads. The command line is
``genrec datasets synth --users N --items M --mean-length L --zipf A --seed S --out F``.

How a log is drawn (every step from one ``numpy.random.Generator`` seeded with ``seed``, so
the same arguments give the same rows):

* **Popularity.** Item weights follow Zipf: ``w = rank ** -zipf`` over a random permutation
  of the items (popularity is not tied to the id).
* **Item clusters.** Items fall into ``n_clusters`` clusters at random. Within a cluster,
  items are drawn by their Zipf weight, so the marginal popularity stays Zipf.
* **User interests.** Each user gets ``clusters_per_user`` clusters, drawn by the clusters'
  total weight. A history step is, with probability ``interest``, an item of one of the
  user's clusters, otherwise an item from the whole catalogue (by popularity): co-occurrence
  models (EASE, item-KNN) can learn the clusters, a popularity model cannot.
* **Next-item pattern.** Every item has one *successor*, an item of its own cluster drawn by
  popularity. With probability ``transition`` a step repeats the previous step's successor
  instead (a chain ``a -> succ(a) -> succ(succ(a))``): the order of a history carries signal
  that only a sequence-aware model (or a Markov chain on the last item) can use.
* **Lengths.** History lengths are lognormal with mean ``mean_length`` (``sigma``), at least
  ``min_length`` and at most ``n_items``. Repeated ``(user, item)`` pairs are dropped (the
  first one is kept), so the realised mean is a little lower on small catalogues.
* **Time.** Each user starts at a uniform time in a one-year window after
  ``2020-01-01``; steps are 1 s to a few days apart (exponential), strictly increasing.

Ids are ``1..n_users`` and ``1..n_items`` (users and items that drew no interaction are
absent from the log).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genrec import columns as C
from genrec.errors import ConfigError, MissingExtraError
from genrec.paths import check_output_file

__all__ = ["SynthSpec", "synthesize", "write_parquet"]

_T0 = 1_577_836_800  # 2020-01-01T00:00:00Z
_YEAR = 365 * 86_400


@dataclass(frozen=True)
class SynthSpec:
    """The knobs of :func:`synthesize` (see the module docstring for what each one does).

    Attributes:
        n_users: number of users (each gets at least ``min_length`` interactions).
        n_items: catalogue size.
        mean_length: mean of the lognormal history length (before de-duplication).
        zipf: Zipf exponent of item popularity (0 = uniform, 1 = the usual long tail).
        seed: random seed.
        n_clusters: item clusters; ``None`` = ``round(sqrt(n_items))`` clipped to 2..1000.
        clusters_per_user: interest clusters per user.
        interest: probability that a step comes from the user's clusters.
        transition: probability that a step follows the previous item's successor.
        sigma: standard deviation of log-length.
        min_length: shortest history.
    """

    n_users: int
    n_items: int
    mean_length: float = 51.0
    zipf: float = 1.0
    seed: int = 0
    n_clusters: int | None = None
    clusters_per_user: int = 2
    interest: float = 0.6
    transition: float = 0.3
    sigma: float = 1.0
    min_length: int = 3

    def validate(self) -> None:
        """Raise :class:`~genrec.errors.ConfigError` naming the first bad value."""
        for name in ("n_users", "n_items", "clusters_per_user", "min_length"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"synthesize: {name} must be an integer >= 1, got {value!r}")
        if self.n_items < 2:
            raise ConfigError(f"synthesize: n_items must be >= 2, got {self.n_items}")
        if self.n_clusters is not None and not 1 <= self.n_clusters <= self.n_items:
            raise ConfigError(
                f"synthesize: n_clusters must be in 1..n_items={self.n_items}, "
                f"got {self.n_clusters!r}"
            )
        if not (math.isfinite(self.mean_length) and self.mean_length >= self.min_length):
            raise ConfigError(
                f"synthesize: mean_length must be >= min_length={self.min_length}, "
                f"got {self.mean_length!r}"
            )
        if not (math.isfinite(self.zipf) and self.zipf >= 0):
            raise ConfigError(f"synthesize: zipf must be >= 0, got {self.zipf!r}")
        if not (math.isfinite(self.sigma) and self.sigma >= 0):
            raise ConfigError(f"synthesize: sigma must be >= 0, got {self.sigma!r}")
        for name in ("interest", "transition"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"synthesize: {name} must be in [0, 1], got {value!r}")
        if self.interest + self.transition > 1.0 + 1e-12:
            # transition is applied after interest; both are shares of the steps
            raise ConfigError(
                f"synthesize: interest + transition must be <= 1, got "
                f"{self.interest} + {self.transition}"
            )

    @property
    def clusters(self) -> int:
        """The effective number of item clusters."""
        if self.n_clusters is not None:
            return int(self.n_clusters)
        return int(min(max(round(math.sqrt(self.n_items)), 2), 1000, self.n_items))


def synthesize(
    n_users: int,
    n_items: int,
    mean_length: float = 51.0,
    zipf: float = 1.0,
    seed: int = 0,
    *,
    n_clusters: int | None = None,
    clusters_per_user: int = 2,
    interest: float = 0.6,
    transition: float = 0.3,
    sigma: float = 1.0,
    min_length: int = 3,
) -> pd.DataFrame:
    """Draw a synthetic interaction log (see the module docstring for the model).

    Args:
        n_users: number of users.
        n_items: catalogue size (>= 2).
        mean_length: mean of the lognormal history length.
        zipf: Zipf exponent of item popularity.
        seed: random seed; the same arguments give the same rows.
        n_clusters: item clusters (``None``: ``sqrt(n_items)``, clipped to 2..1000).
        clusters_per_user: interest clusters per user.
        interest: probability that a step is drawn from the user's clusters.
        transition: probability that a step is the previous item's successor.
        sigma: standard deviation of the log-length.
        min_length: shortest history (before de-duplication).

    Returns:
        A DataFrame with int64 columns ``user_id``, ``item_id``, ``timestamp`` (unix
        seconds), sorted by user then time, one row per distinct ``(user, item)`` pair.

    Raises:
        ConfigError: on a value out of range, naming it.

    Example:
        >>> df = synthesize(100, 50, mean_length=8, seed=0)
        >>> list(df.columns)
        ['user_id', 'item_id', 'timestamp']
    """
    spec = SynthSpec(
        n_users=n_users,
        n_items=n_items,
        mean_length=float(mean_length),
        zipf=float(zipf),
        seed=seed,
        n_clusters=n_clusters,
        clusters_per_user=clusters_per_user,
        interest=float(interest),
        transition=float(transition),
        sigma=float(sigma),
        min_length=min_length,
    )
    spec.validate()
    users, items, times = _draw(spec)
    return pd.DataFrame({C.USER: users, C.ITEM: items, C.TIMESTAMP: times})


class _ItemModel:
    """Zipf weights, clusters and successors of the items, with vectorised samplers."""

    def __init__(self, spec: SynthSpec, rng: np.random.Generator):
        n_items, K = spec.n_items, spec.clusters
        self.rng = rng
        rank = rng.permutation(n_items) + 1  # popularity rank of item i (0-based index)
        weight = rank.astype(np.float64) ** -spec.zipf  # (n_items,)
        cluster = rng.integers(0, K, n_items)  # (n_items,)
        cluster[rng.permutation(n_items)[:K]] = np.arange(K)  # no empty cluster
        self.by_cluster = np.argsort(cluster, kind="stable")  # items grouped by cluster
        self.sizes = np.bincount(cluster, minlength=K)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.mass = np.bincount(cluster, weights=weight, minlength=K)  # (K,)
        # Walker alias tables (O(1) per draw; a binary search over a large CDF is several
        # times slower at 20M draws): one per cluster, laid end to end in cluster order, and
        # one over the whole catalogue
        self.prob, self.alias = _alias_tables(weight[self.by_cluster], self.starts, self.sizes)
        self.gprob, self.galias = _alias_tables(weight, np.array([0]), np.array([n_items]))
        self.cluster_cdf = np.cumsum(self.mass) / self.mass.sum()
        self.n_items, self.K = n_items, K
        # successor: an item of the same cluster by popularity, not itself when possible
        succ = self.in_cluster(cluster)
        for _ in range(5):
            same = (succ == np.arange(n_items)) & (self.sizes[cluster] > 1)
            if not same.any():
                break
            succ[same] = self.in_cluster(cluster[same])
        self.succ = succ

    def in_cluster(self, c: np.ndarray) -> np.ndarray:
        """One item of each cluster in ``c``, drawn by weight."""
        pos = _alias_draw(self.rng, self.prob, self.alias, self.starts[c], self.sizes[c])
        return self.by_cluster[pos]

    def from_catalogue(self, n: int) -> np.ndarray:
        """``n`` items drawn by weight from the whole catalogue."""
        return _alias_draw(self.rng, self.gprob, self.galias, 0, self.n_items, n)

    def clusters_by_mass(self, shape: tuple[int, ...]) -> np.ndarray:
        """Clusters drawn by their total weight."""
        c = np.searchsorted(self.cluster_cdf, self.rng.random(shape), side="right")
        return np.minimum(c, self.K - 1)


def _alias_tables(
    weight: np.ndarray, starts: np.ndarray, sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias tables of the segments ``weight[starts[k] : starts[k] + sizes[k]]``.

    Returns ``(prob, alias)`` aligned with ``weight``: position ``p`` of a segment is kept
    with probability ``prob[p]``, else replaced by ``alias[p]`` (a position in the same
    segment).
    """
    prob = np.ones(len(weight), dtype=np.float64)
    alias = np.arange(len(weight), dtype=np.int64)
    for start, size in zip(starts.tolist(), sizes.tolist()):
        w = weight[start : start + size]
        q = (w * (size / w.sum())).tolist()  # mean 1
        small = [j for j in range(size) if q[j] < 1.0]
        large = [j for j in range(size) if q[j] >= 1.0]
        p_seg, a_seg = [1.0] * size, list(range(size))
        while small and large:
            s, g = small.pop(), large[-1]
            p_seg[s], a_seg[s] = q[s], g
            q[g] -= 1.0 - q[s]
            if q[g] < 1.0:
                small.append(large.pop())
        prob[start : start + size] = p_seg
        alias[start : start + size] = np.asarray(a_seg, dtype=np.int64) + start
    return prob, alias


def _alias_draw(
    rng: np.random.Generator,
    prob: np.ndarray,
    alias: np.ndarray,
    starts: np.ndarray | int,
    sizes: np.ndarray | int,
    n: int | None = None,
) -> np.ndarray:
    """One draw per segment ``(starts, sizes)`` (or ``n`` from one segment): positions."""
    size = np.asarray(sizes, dtype=np.float64)
    u = rng.random(n if n is not None else len(size)) * size  # slot + coin in one uniform
    slot = np.minimum(u.astype(np.int64), np.asarray(sizes) - 1)
    coin = u - slot
    pos = slot + starts
    return np.where(coin < prob[pos], pos, alias[pos])


def _draw(spec: SynthSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(spec.seed)
    model = _ItemModel(spec, rng)
    n_users = spec.n_users

    mu = math.log(spec.mean_length) - spec.sigma**2 / 2
    target = np.rint(rng.lognormal(mu, spec.sigma, n_users)).astype(np.int64)
    target = np.clip(target, spec.min_length, spec.n_items)  # (n_users,) distinct items wanted
    interests = model.clusters_by_mass((n_users, spec.clusters_per_user))
    clock = rng.integers(_T0, _T0 + _YEAR, n_users)  # (n_users,) time of the next step

    # Rounds: draw more steps than still needed, drop repeated (user, item) pairs keeping the
    # first, cut each history at its target length; users still short draw again (a user
    # whose interests keep hitting the same few items may end a little short).
    have = np.zeros(n_users, dtype=np.int64)
    done: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # users who reached target
    users, items, times = (np.zeros(0, dtype=np.int64),) * 3  # users still short
    factor = 1.5
    for _ in range(6):
        short = np.flatnonzero(have < target)
        if not len(short):
            break
        n_steps = np.ceil((target[short] - have[short]) * factor).astype(np.int64) + 1
        u, i, t = _steps(spec, model, rng, short, n_steps, interests, clock)
        clock[short] = t[np.cumsum(n_steps) - 1] + 1
        if len(users):  # a later round: merge with the earlier steps (they come first)
            u, i, t = (
                np.concatenate([users, u]),
                np.concatenate([items, i]),
                np.concatenate([times, t]),
            )
            order = np.argsort(u, kind="stable")  # earlier steps stay first within a user
            u, i, t = u[order], i[order], t[order]
            del order
        _, first = np.unique(u * np.int64(spec.n_items) + i, return_index=True)
        keep = np.zeros(len(u), dtype=bool)
        keep[first] = True
        del first
        u, i, t = u[keep], i[keep], t[keep]
        counts = np.bincount(u, minlength=n_users)
        rank = np.arange(len(u)) - np.repeat(np.cumsum(counts) - counts, counts)[: len(u)]
        keep = rank < target[u]
        u, i, t = u[keep], i[keep], t[keep]
        del keep, rank
        have[short] = np.bincount(u, minlength=n_users)[short]
        full = (have >= target)[u]
        done.append((u[full], i[full], t[full]))
        users, items, times = u[~full], i[~full], t[~full]
        del u, i, t, full
        factor *= 2
    done.append((users, items, times))
    users = np.concatenate([d[0] for d in done])
    order = np.argsort(users, kind="stable")
    users = users[order]
    items = np.concatenate([d[1] for d in done])[order]
    times = np.concatenate([d[2] for d in done])[order]
    return users + 1, items + 1, times


def _steps(
    spec: SynthSpec,
    model: _ItemModel,
    rng: np.random.Generator,
    users: np.ndarray,
    n_steps: np.ndarray,
    interests: np.ndarray,
    clock: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n_steps[j]`` consecutive steps of user ``users[j]`` (ids 0-based), in time order."""
    n = int(n_steps.sum())
    row = np.repeat(users, n_steps)  # (n,) user of each step
    first = np.cumsum(n_steps) - n_steps  # index of each user's first step
    # base draws (steps that do not follow): one of the user's interest clusters, or the
    # whole catalogue
    r = rng.random(n)
    follows = r >= spec.interest
    follows &= r < spec.interest + spec.transition
    follows[first] = False
    interest = r < spec.interest
    del r
    items = np.zeros(n, dtype=np.int64)
    pick = rng.integers(0, spec.clusters_per_user, int(interest.sum()))
    items[interest] = model.in_cluster(interests[row[interest], pick])
    del pick
    interest |= follows  # now: drawn or overwritten below
    items[~interest] = model.from_catalogue(n - int(interest.sum()))
    del interest
    # next-item pattern: a following step is succ^k of the last non-following step before
    # it (k = the distance), vectorised by run depth instead of a loop over time
    idx = np.arange(n)
    anchor = np.maximum.accumulate(np.where(follows, 0, idx))
    depth = idx - anchor
    del idx, follows
    items = items[anchor]
    del anchor
    todo = np.flatnonzero(depth > 0)
    level = 1
    while len(todo):
        items[todo] = model.succ[items[todo]]
        todo = todo[depth[todo] > level]
        level += 1
    del depth, todo
    # time: exponential gaps of about a day (>= 1 s), strictly increasing per user
    gaps = np.ceil(rng.exponential(86_400.0, n)).astype(np.int64) + 1
    gaps[first] = 0
    times = np.repeat(clock[users], n_steps) + _segment_cumsum(gaps, first)
    return row, items, times


def _segment_cumsum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each index in ``starts`` (``values[starts]`` must be 0
    or the segment's first value)."""
    total = np.cumsum(values)
    offset = np.repeat(total[starts] - values[starts], np.diff(np.append(starts, len(values))))
    return total - offset


SYNTH_MARK = b"genrec.synth"


def is_synth_file(path: str | Path) -> bool:
    """True when ``path`` is a Parquet file :func:`write_parquet` wrote (its schema metadata
    carries genrec's mark)."""
    try:
        import pyarrow.parquet as pq

        meta = pq.read_schema(path).metadata or {}
    except Exception:  # not Parquet, unreadable, or no pyarrow: not ours
        return False
    return SYNTH_MARK in meta


def write_parquet(
    frame: pd.DataFrame,
    path: str | Path,
    *,
    row_group_size: int = 1_000_000,
    overwrite: bool = False,
    flag: str = "overwrite=True",
) -> Path:
    """Write an interaction frame as Parquet in row groups (needs ``pyarrow``).

    Args:
        frame: the log (e.g. from :func:`synthesize`).
        path: the output file; its folder is created. Written atomically (a temporary file
            renamed into place).
        row_group_size: rows per row group (what the Parquet loader reads at a time).
        overwrite: replace a file this function wrote earlier (a file genrec did not write
            is never replaced: :class:`~genrec.paths.OutputPathError`).
        flag: how the caller's surface spells ``overwrite``, for the error message.

    Returns:
        The path written.

    Raises:
        MissingExtraError: when pyarrow is not installed.
        ConfigError: when ``row_group_size`` < 1.
    """
    if row_group_size < 1:
        raise ConfigError(f"row_group_size must be >= 1, got {row_group_size!r}")
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError(
            "writing Parquet needs the optional package 'pyarrow': pip install 'genrec[parquet]'"
        ) from exc
    path = check_output_file(path, overwrite=overwrite, owned=is_synth_file, flag=flag)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[SYNTH_MARK] = b"1"
    table = table.replace_schema_metadata(meta)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp, row_group_size=row_group_size)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
