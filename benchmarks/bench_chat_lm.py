"""Does an LM-written search query help text retrieval of the next item? (GPT4Rec-style)

For a seeded sample of ``--users`` movielens-small users (leave-one-out test: the history is
train + validation, the target the held-out last item), build a text query from the last
``--history`` titles and retrieve the top-K catalogue items by cosine of all-MiniLM-L6-v2
vectors (:class:`genrec.text.search.ItemTextIndex`, history items excluded). Hit rate @10 and
@50 of the held-out item, per query variant:

- ``titles``: the history titles joined (``"Toy Story; Heat; ..."``), no LM;
- ``centroid``: the mean of the history items' text vectors (no query text at all);
- ``lm``: the query SmolLM2-135M-Instruct writes from the titles (the prompt and cleaning
  of :class:`genrec.chat.ChatSession`: :func:`~genrec.chat.lm_prompt`,
  :func:`~genrec.chat.clean_lm_query`), alone;
- ``lm+titles``: the LM query followed by the titles.

Also prints the LM's seconds per query. Run:
``PYTHONPATH=src python benchmarks/bench_chat_lm.py --users 100``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--history", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-lm", action="store_true", help="only the LM-free variants")
    parser.add_argument("--show", type=int, default=5, help="print this many LM queries")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import genrec
    from genrec.chat import clean_lm_query, lm_prompt, load_smollm2
    from genrec.data.splitting import leave_one_out
    from genrec.text.search import ItemTextIndex

    ds = genrec.load_dataset("movielens-small")
    split = leave_one_out(ds)
    index = ItemTextIndex.from_dataset(ds, encoder="minilm")
    vectors = np.asarray(index.vectors, dtype=np.float32)  # (N + 1, d)
    titles = ds.item_titles()
    rng = np.random.default_rng(args.seed)
    rows = np.sort(rng.choice(len(split.test), size=args.users, replace=False))
    users = split.test.users[rows]
    batch = split.test.history.histories().batch(users)
    targets = [split.test.targets[r].indices for r in rows]
    lm = None if args.no_lm else load_smollm2(num_threads=args.threads)

    def retrieve(q: np.ndarray, seen: np.ndarray) -> np.ndarray:
        scores = vectors @ q  # (N + 1,)
        scores[0] = -np.inf
        scores[seen] = -np.inf
        return np.argsort(-scores, kind="stable")[:50]

    variants = ["titles", "centroid"] + ([] if lm is None else ["lm", "lm+titles"])
    hits = {v: {10: [], 50: []} for v in variants}
    lm_seconds = []
    for r in range(len(users)):
        seen = batch.sequence(r)
        recent = seen[-args.history :]
        names = [str(titles[i]) for i in recent]
        title_query = "; ".join(names)
        queries = {"titles": index.encode([title_query])[0]}
        c = vectors[recent].mean(0)
        queries["centroid"] = c / max(float(np.linalg.norm(c)), 1e-12)
        if lm is not None:
            t = time.perf_counter()
            out = lm.generate(lm_prompt(names, [], []), max_new_tokens=24)
            lm_seconds.append(time.perf_counter() - t)
            lm_query = clean_lm_query(out) or title_query
            if r < args.show:
                print(f"user {users[r]}: liked {names[-3:]} -> {lm_query!r}", flush=True)
            queries["lm"] = index.encode([lm_query])[0]
            queries["lm+titles"] = index.encode([f"{lm_query}. {title_query}"])[0]
        for v in variants:
            top = retrieve(queries[v], seen)
            for k in (10, 50):
                hits[v][k].append(bool(np.isin(targets[r], top[:k]).any()))
    result = {
        "users": int(len(users)),
        "history": args.history,
        "encoder": index.encoder_name,
        "hit_rate": {v: {f"@{k}": float(np.mean(hits[v][k])) for k in (10, 50)} for v in variants},
    }
    if lm_seconds:
        result["lm_seconds_per_query"] = float(np.mean(lm_seconds))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
