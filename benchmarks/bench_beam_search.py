"""Constrained beam-search speed: genrec's batched trie decoding vs Hugging Face ``generate``.

Both sides decode the top-10 items of a TIGER-shaped encoder-decoder (Rajput et al., NeurIPS
2023, Sec. 4.1: 4 + 4 layers, d_model 128, 6 heads of 64, FFN 1024, ReLU) with 20 beams,
constrained to a semantic-ID code table shaped like Amazon Beauty's: 12,101 items x 3 levels
x 256 codes + a collision level (random codes unless ``--codebook DIR`` gives a saved
:class:`~genrec.tokenizers.ItemCodebook`). Inputs are 20 random history items (80 code
tokens, the widest input) plus a hashed user token per user, the same for both sides; with
``--histories beauty``, a random sample of Amazon Beauty's real leave-one-out test histories
(``--data-dir``, skipped when absent; mean 7.2 items of at most 20, left-padded). Both sides
batch users sorted by history length and drop the columns that are padding in every row of a
batch, as ``TIGER.recommend`` does (transformers gets ``attention_mask`` for the padding), and
both time the same ``--users`` users (how wide the sorted batches are depends on them).

* genrec: :class:`~genrec.models.tiger.TIGERNetwork` (encoder once per user, incremental
  decoder KV cache, cross-attention shared by a user's beams) +
  :func:`~genrec.decoding.beam_search` + :class:`~genrec.decoding.TrieConstraint` (dense
  child tables, one gather per level); the exact path of ``TIGER.recommend``.
* Hugging Face: ``T5ForConditionalGeneration`` of the same sizes (relative position bias, as
  T5 has) and ``generate(num_beams=20, num_return_sequences=10, max_new_tokens=L,
  prefix_allowed_tokens_fn=...)`` with the usual Python dict trie of allowed next tokens.

The two networks have the same weight *shapes* but not the same function (genrec uses learned
absolute positions and per-level softmax, T5 relative position bias and a shared-vocabulary
softmax), so weights cannot be copied for an exact comparison: **the speed comparison is
speed-only**. ``--exact-users N`` adds the exact comparison of the *decoding*: genrec's
``beam_search`` + ``TrieConstraint`` driving the transformers T5 itself, against its
``generate()`` on the same weights (identical top-10 lists expected; needs genrec and
transformers in one interpreter, e.g. the dev venv). Both decode random-weight networks;
each side's top-10 is checked to be 10 distinct real items.

Printed: recommendations (users x top-10 lists) per second per side and the ratio, for each
batch size of ``--batch-sizes`` (e.g. ``1,8,32,128``), then each side at its fastest batch
size (the fair headline: transformers is fastest at small batches, genrec from ~8 users up).
At each batch size each side runs its users (``--users``, ``--hf-users``) after one warm-up
batch, with ``--threads`` torch threads. transformers lives in its own venv, run as a child
process::

    python3 -m venv /tmp/hfvenv
    /tmp/hfvenv/bin/pip install torch==2.13.0 transformers   # always pin torch (CPU build)
    PYTHONPATH=src python benchmarks/bench_beam_search.py --hf-python /tmp/hfvenv/bin/python

Without ``--hf-python`` the current interpreter is used when it can import transformers.
``--device cuda`` runs both sides on a GPU (timings include each batch's copies in and out);
where genrec and transformers share an interpreter, e.g. a GPU machine's own torch::

    PYTHONPATH=src python3 benchmarks/bench_beam_search.py --device cuda \
        --batch-sizes 1,8,32,128,512 --exact-users 32

Measured (2026-11-28, idle machine, 1 thread, transformers 5.24; docs/benchmarks.md): same
batch size on both sides 3.2x (1 user), 5.0x (8), 8.4x (32), 8.2x (128); each side at its
fastest batch (both 8) 5.0x. With ``--threads 2``: 2.3x (1), 4.7x (8), 9.3x (32), 10.8x
(128); each at its fastest batch (genrec 128, transformers 8) 6.2x. 2026-11-29, 2 threads,
6.4x best vs best on 20-item histories, 5.0x with ``--histories beauty`` (512 users on both
sides; shorter inputs speed up both sides). transformers re-orders
its per-beam cross-attention cache every step (``index_select`` on ``(B * 20, 6, 81, 64)`` per
layer), which grows with the batch; genrec keeps one encoder memory per user and folds the
beams into the query axis. About half of genrec's time is the encoder (81 tokens x 4 layers
per user), which both sides pay, and the rest is mostly the decoder's fp32 matrix products.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

K, BEAMS, N_ITEMS, MAX_ITEMS, USER_BUCKETS = 10, 20, 12_101, 20, 2000


# --------------------------------------------------------------------------- inputs
def make_inputs(args: argparse.Namespace) -> dict[str, np.ndarray] | None:
    """Code table (n_items + 1, L), level sizes, left-padded histories (U, 20) and user
    buckets (U,); ``None`` when ``--histories beauty`` finds no data (skipped)."""
    rng = np.random.default_rng(args.seed)
    n_items, real = N_ITEMS, None
    if args.histories == "beauty":
        found = beauty_histories(Path(args.data_dir))
        if found is None:
            print(f"skipped: no Amazon Beauty data in {args.data_dir} (--data-dir)")
            return None
        real, item_ids = found
        n_items = len(item_ids)
    if args.codebook:
        from genrec.tokenizers import ItemCodebook

        cb = ItemCodebook.load(args.codebook)
        codes, sizes = cb.codes, np.asarray(cb.codebook_sizes)
        if real is not None:
            from genrec.errors import GenrecError

            try:  # the same items in the same order, or codes would land on other items
                cb.check_catalogue(item_ids)
            except GenrecError as exc:
                raise SystemExit(f"--codebook {args.codebook}: {exc}") from None
    else:
        from genrec.models.tiger import random_codebook

        cb = random_codebook(n_items, 4, 256, args.seed, None)
        codes, sizes = cb.codes, np.asarray(cb.codebook_sizes)
    n = codes.shape[0] - 1
    if real is None:
        hist = rng.integers(1, n + 1, size=(args.users, MAX_ITEMS))
    else:  # a random sample of the real test histories (with repeats if more are asked for)
        hist = real[rng.choice(len(real), args.users, replace=args.users > len(real))]
    users = rng.integers(0, USER_BUCKETS, size=args.users)
    return {"codes": codes, "sizes": sizes, "hist": hist, "users": users}


def beauty_histories(data_dir: Path) -> tuple[np.ndarray, list] | None:
    """Every Amazon Beauty user's leave-one-out test history (what the evaluator gives a model
    at test time: all but the last item), its last 20 items left-padded with 0, as internal
    item ids ``(U, 20)``, and the external item ids in internal order; ``None`` without data."""
    if not (data_dir / "sequential_data.txt").exists():
        return None
    from genrec.data.loaders import load_dataset
    from genrec.data.splitting import leave_one_out

    ds = load_dataset("amazon-beauty", data_dir=data_dir)
    test = leave_one_out(ds).test
    hist = test.history.histories().batch(test.users).padded_sequences(MAX_ITEMS)
    return hist, ds.item_map.to_list()


def by_length(hist: np.ndarray) -> np.ndarray:
    """Row order by history length (stable), as ``TIGER.recommend`` batches its users."""
    return np.argsort((hist > 0).sum(1), kind="stable")


def trim_columns(ids: np.ndarray) -> np.ndarray:
    """Drop the leading columns of a left-padded ``(B, S)`` id array that are 0 in every row
    (numpy twin of :func:`genrec.data.sequences.trim_left_padding`, which the genrec side uses;
    the transformers child process has no genrec)."""
    real = (ids != 0).any(0)
    first = int(real.argmax()) if real.any() else ids.shape[1] - 1
    return ids[:, first:]


def check_lists(items: np.ndarray) -> float:
    """Fraction of rows with K distinct real items."""
    ok = [(r > 0).all() and len(set(r.tolist())) == K for r in items]
    return float(np.mean(ok))


# --------------------------------------------------------------------------- genrec
def run_genrec(data: dict[str, np.ndarray], args: argparse.Namespace) -> dict[str, float]:
    import torch

    from genrec.data.sequences import trim_left_padding
    from genrec.decoding import SemanticIDTrie, Static, TrieConstraint, beam_search
    from genrec.models.tiger import TIGERConfig, TIGERNetwork

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    codes, sizes = data["codes"], data["sizes"].tolist()
    L = len(sizes)
    dev = torch.device(args.device)
    net = TIGERNetwork(sizes, TIGERConfig(n_levels=L)).eval().to(dev)
    t0 = time.perf_counter()
    trie = SemanticIDTrie(codes, sizes).to(dev)
    build = time.perf_counter() - t0
    codes_t = torch.from_numpy(codes).to(dev)

    @torch.no_grad()
    def recommend(hist: np.ndarray, users: np.ndarray) -> np.ndarray:
        items = trim_left_padding(torch.from_numpy(hist)).to(dev)  # (B, M <= 20) as TIGER does
        tokens = net.code_tokens(codes_t[items]).reshape(len(hist), -1)  # (B, M * L)
        enc, real = net.encode(torch.from_numpy(users).to(dev), tokens)
        mem = net.memory(enc, real)

        def step(prefix, state):
            lp, cache = net.step(prefix, state["cache"], state["mem"].value)
            return lp, {"cache": cache, "mem": state["mem"]}

        out = beam_search(
            step, {"cache": None, "mem": Static(mem)}, batch_size=len(hist), num_beams=BEAMS,
            max_len=L, vocab_sizes=sizes, processors=[TrieConstraint(trie)], device=dev,
        )  # fmt: skip
        top = out.tokens[:, :K].reshape(-1, L)
        return trie.lookup(top).reshape(len(hist), K).cpu().numpy()  # .cpu() syncs a GPU

    return _timed(recommend, data, args) | {"trie_build_seconds": build}


def _timed(recommend, data: dict[str, np.ndarray], args: argparse.Namespace) -> dict[str, float]:
    order = by_length(data["hist"])  # the same rule on both sides (a no-op on full histories)
    hist, users, B = data["hist"][order], data["users"][order], args.batch_size
    recommend(hist[:B], users[:B])  # warm-up
    start = time.perf_counter()
    outs = [recommend(hist[s : s + B], users[s : s + B]) for s in range(0, len(hist), B)]
    seconds = time.perf_counter() - start
    items = np.concatenate(outs)
    return {
        "users": len(hist),
        "seconds": seconds,
        "recs_per_second": len(hist) / seconds,
        "valid_lists": check_lists(items),
    }


# --------------------------------------------------------------------------- Hugging Face
def _hf_side(data: dict[str, np.ndarray], args: argparse.Namespace):
    """The T5 model, its dict trie and ``recommend(hist, users) -> (B, K)`` item ids through
    ``generate`` with ``prefix_allowed_tokens_fn`` (needs only numpy, torch, transformers)."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    codes, sizes = data["codes"], data["sizes"].tolist()
    L = len(sizes)
    offsets = 2 + np.r_[0, np.cumsum(sizes)[:-1]]  # 0 = pad / decoder start, 1 = eos
    user_base = 2 + int(sum(sizes))
    cfg = T5Config(
        vocab_size=user_base + USER_BUCKETS, d_model=128, d_kv=64, d_ff=1024, num_layers=4,
        num_decoder_layers=4, num_heads=6, dropout_rate=0.1, feed_forward_proj="relu",
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )  # fmt: skip
    dev = torch.device(args.device)
    model = T5ForConditionalGeneration(cfg).eval().to(dev)
    t0 = time.perf_counter()
    tokens = codes[1:] + offsets  # (n, L) token ids
    trie: dict[tuple[int, ...], list[int]] = {}
    for row in tokens.tolist():  # the usual dict trie: prefix -> allowed next tokens
        for t in range(L):
            trie.setdefault(tuple(row[:t]), set()).add(row[t])  # type: ignore[arg-type]
    trie = {k: sorted(v) for k, v in trie.items()}
    item_of = {tuple(r): i + 1 for i, r in enumerate(tokens.tolist())}
    build = time.perf_counter() - t0

    def allowed(batch_id: int, input_ids: torch.Tensor) -> list[int]:
        return trie.get(tuple(input_ids[1:].tolist()), [])  # skip the decoder start token

    def encoder_ids(hist: np.ndarray, users: np.ndarray) -> torch.Tensor:
        """User token + the items' code tokens, left-padded with 0 (``pad_token_id``), without
        the columns that are padding in every row."""
        item_codes = codes[trim_columns(hist)]  # (B, M, L); item 0 (padding) has codes -1
        toks = np.where(item_codes >= 0, item_codes + offsets, 0).reshape(len(hist), -1)
        ids = np.concatenate([users[:, None] + user_base, toks], axis=1)
        return torch.from_numpy(ids).to(dev)

    @torch.no_grad()
    def recommend(hist: np.ndarray, users: np.ndarray) -> np.ndarray:
        ids = encoder_ids(hist, users)
        out = model.generate(
            input_ids=ids, attention_mask=(ids != 0).long(),
            num_beams=BEAMS, num_return_sequences=K, max_new_tokens=L, min_new_tokens=L,
            prefix_allowed_tokens_fn=allowed, length_penalty=0.0, early_stopping=True,
            do_sample=False,
        )  # fmt: skip
        seqs = out[:, 1 : 1 + L].tolist()  # (a GPU syncs here)
        return np.array([item_of.get(tuple(s), 0) for s in seqs]).reshape(len(hist), K)

    return model, offsets, encoder_ids, recommend, build


def run_hf(data: dict[str, np.ndarray], args: argparse.Namespace) -> dict[str, float]:
    """T5 + ``generate`` with ``prefix_allowed_tokens_fn`` (runs where transformers is)."""
    *_, recommend, build = _hf_side(data, args)
    return _timed(recommend, data, args) | {"trie_build_seconds": build}


def run_exact(data: dict[str, np.ndarray], args: argparse.Namespace) -> dict[str, float]:
    """Same weights, exact comparison: genrec's :func:`~genrec.decoding.beam_search` with
    :class:`~genrec.decoding.TrieConstraint` driving the Hugging Face T5 (one full decoder pass
    per step, no cache: a correctness check, not a speed one) vs that T5's ``generate``.
    Needs genrec and transformers in this interpreter."""
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    from genrec.decoding import SemanticIDTrie, TrieConstraint, beam_search

    model, offsets, encoder_ids, recommend, _ = _hf_side(data, args)
    codes, sizes = data["codes"], data["sizes"].tolist()
    dev = torch.device(args.device)
    trie = SemanticIDTrie(codes, sizes).to(dev)
    off = torch.as_tensor(offsets, device=dev)
    n = args.exact_users
    hist, users = data["hist"][:n], data["users"][:n]
    hf_items = recommend(hist, users)
    with torch.no_grad():
        ids = encoder_ids(hist, users)
        mask = (ids != 0).long()
        enc = model.get_encoder()(input_ids=ids, attention_mask=mask).last_hidden_state

        def step(prefix: torch.Tensor, state: None) -> tuple[torch.Tensor, None]:
            N, t = prefix.shape
            rows = torch.arange(n, device=dev).repeat_interleave(N // n)  # each prefix's user
            dec = torch.cat([torch.zeros(N, 1, dtype=torch.long, device=dev), prefix + off[:t]], 1)
            out = model(
                encoder_outputs=BaseModelOutput(last_hidden_state=enc[rows]),
                attention_mask=mask[rows], decoder_input_ids=dec,
            )  # fmt: skip
            lp = torch.log_softmax(out.logits[:, -1].float(), -1)  # over the whole vocabulary
            return lp[:, int(off[t]) : int(off[t]) + sizes[t]], None  # as generate() scores

        res = beam_search(
            step, None, batch_size=n, num_beams=BEAMS, max_len=len(sizes), vocab_sizes=sizes,
            processors=[TrieConstraint(trie)], device=dev,
        )  # fmt: skip
    g_items = trie.lookup(res.tokens[:, :K].reshape(-1, len(sizes))).reshape(n, K).cpu().numpy()
    same = (g_items == hf_items).all(1)
    overlap = [len(set(a) & set(b)) / K for a, b in zip(g_items.tolist(), hf_items.tolist())]
    return {
        "users": n,
        "identical_lists": float(same.mean()),
        "mean_overlap": float(np.mean(overlap)),
    }


def hf_child(data: dict[str, np.ndarray], args: argparse.Namespace) -> dict[str, float] | None:
    python = args.hf_python
    if python is None:
        try:
            import transformers  # noqa: F401

            python = sys.executable
        except ImportError:
            print("transformers not importable and no --hf-python: genrec numbers only")
            return None
    with tempfile.TemporaryDirectory() as tmp:
        out, inputs = Path(tmp) / "hf.json", Path(tmp) / "inputs.npz"
        n = args.hf_users
        np.savez(inputs, codes=data["codes"], sizes=data["sizes"], hist=data["hist"][:n],
                 users=data["users"][:n])  # fmt: skip
        # the child needs only numpy, torch and transformers (no genrec import)
        cmd = [python, __file__, "--_hf-child", str(out), "--_hf-inputs", str(inputs),
               "--threads", str(args.threads), "--batch-size", str(args.batch_size),
               "--seed", str(args.seed), "--device", args.device]  # fmt: skip
        subprocess.run(cmd, check=True)
        return json.loads(out.read_text())


# --------------------------------------------------------------------------- main
def _check_device(p: argparse.ArgumentParser, device: str) -> None:
    """Exit with a clear message when ``--device`` is not a usable torch device."""
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError as e:
        p.error(f"--device {device!r} is not a torch device: {e}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {device!r}: CUDA is not available to {sys.executable}")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        p.error(f"--device {device!r}: this machine has {torch.cuda.device_count()} GPU(s)")
    if dev.type not in ("cpu", "cuda"):
        p.error(f"--device {device!r}: only cpu and cuda are supported")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=None, help="default max(256, 2 x largest batch)")
    p.add_argument(
        "--hf-users", type=int, default=None,
        help="users for the (slow) HF side; default max(64, largest batch)",
    )  # fmt: skip
    p.add_argument(
        "--batch-sizes", default="32",
        help="users decoded at once, comma-separated (e.g. 8,32,128): both sides run at each",
    )  # fmt: skip
    p.add_argument("--batch-size", type=int, default=32, help=argparse.SUPPRESS)  # child side
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--device", default="cpu",
        help="torch device of both sides (cpu, cuda, cuda:1, ...); on a GPU the timing includes "
        "copying each batch's inputs in and its top-10 out",
    )  # fmt: skip
    p.add_argument("--codebook", default=None, help="saved ItemCodebook folder")
    p.add_argument(
        "--histories", choices=("random", "beauty"), default="random",
        help="random: 20 random items per user (the widest input); beauty: a random sample of "
        "Amazon Beauty's real test histories (mean 7.2 items, left-padded; both sides batch "
        "users by history length and trim all-padding columns, as TIGER.recommend does)",
    )  # fmt: skip
    p.add_argument(
        "--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"
                                  / "amazon-beauty"),
        help="Amazon Beauty folder for --histories beauty (skipped when absent)",
    )  # fmt: skip
    p.add_argument(
        "--exact-users", type=int, default=0,
        help="also check identical top-10 on the same T5 weights for this many users (genrec's "
        "beam search driving the transformers model vs its generate(); needs transformers here)",
    )  # fmt: skip
    p.add_argument("--hf-python", default=None, help="interpreter with transformers")
    p.add_argument("--_hf-child", dest="hf_child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_hf-inputs", dest="hf_inputs", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.hf_child:  # child process: the Hugging Face side only (its own torch)
        _check_device(p, args.device)
        with np.load(args.hf_inputs) as z:
            res = run_hf({k: z[k] for k in z.files}, args)
        Path(args.hf_child).write_text(json.dumps(res))
        return
    _check_device(p, args.device)
    try:
        batches = [int(b) for b in str(args.batch_sizes).split(",")]
    except ValueError:
        p.error(f"--batch-sizes must be comma-separated integers, got {args.batch_sizes!r}")
    if min(batches) < 1:
        p.error("--batch-sizes must be >= 1")
    if args.histories == "beauty":  # sorted batches depend on the users: time the same ones
        if args.users and args.hf_users and args.users != args.hf_users:
            p.error("--histories beauty times the same users on both sides: give --users only")
        args.users = args.hf_users = args.users or args.hf_users or max(256, 2 * max(batches))
    args.users = args.users or max(256, 2 * max(batches))
    args.hf_users = args.hf_users or max(64, max(batches))
    data = make_inputs(args)
    if data is None:
        return
    sizes = data["sizes"].tolist()
    print(
        f"{data['codes'].shape[0] - 1} items, levels {sizes}, top-{K} with {BEAMS} beams, "
        f"{args.histories} histories (mean {(data['hist'] > 0).sum(1).mean():.1f} items), "
        f"batch sizes {batches}, {args.threads} thread(s), device {args.device}, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    rows = []
    for b in batches:
        args.batch_size = b
        g = run_genrec(data, args)
        print(
            f"[batch {b}] genrec       : {g['recs_per_second']:8.1f} recs/s ({g['users']} users, "
            f"{g['seconds']:.2f} s; trie build {g['trie_build_seconds']:.2f} s; "
            f"valid lists {g['valid_lists']:.2f})"
        )
        h = hf_child(data, args)
        if h is None:
            continue
        print(
            f"[batch {b}] transformers : {h['recs_per_second']:8.1f} recs/s ({h['users']} users, "
            f"{h['seconds']:.2f} s; trie build {h['trie_build_seconds']:.2f} s; "
            f"valid lists {h['valid_lists']:.2f})"
        )
        # the machine's load drifts: time genrec again after transformers and use the mean
        g2 = run_genrec(data, args)
        print(f"[batch {b}] genrec again : {g2['recs_per_second']:8.1f} recs/s (mean is used)")
        rows.append((b, (g["recs_per_second"] + g2["recs_per_second"]) / 2, h["recs_per_second"]))
    if args.exact_users > 0:
        e = run_exact(data, args)
        print(
            f"same T5 weights, {e['users']} users: genrec beam_search + TrieConstraint vs "
            f"generate(): identical top-{K} lists {e['identical_lists']:.2f}, mean overlap "
            f"{e['mean_overlap']:.2f}"
        )
    if not rows:
        return
    print("\n| batch | genrec recs/s | transformers recs/s | ratio |\n|---:|---:|---:|---:|")
    for b, gr, hr in rows:
        print(f"| {b} | {gr:.1f} | {hr:.1f} | {gr / hr:.1f}x |")
    gb, hb = max(rows, key=lambda r: r[1]), max(rows, key=lambda r: r[2])
    print(
        f"each at its fastest batch: genrec {gb[1]:.1f} recs/s (batch {gb[0]}) / transformers "
        f"{hb[2]:.1f} recs/s (batch {hb[0]}) = {gb[1] / hb[2]:.1f}x"
    )
    print("(speed-only: the two networks differ in positions/softmax, see the docstring)")


if __name__ == "__main__":
    main()
