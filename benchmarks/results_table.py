"""Render the README "Results" table from saved ``results.json`` files (never typed by hand).

    python benchmarks/results_table.py docs/measurements/*.json docs/measurements/*/*.json
    python benchmarks/results_table.py --update-readme   # rewrites the generated blocks

Two tables come from here. The README's headline verdict is one suite run (``suite.json`` of
``genrec benchmark --suite generative-vs-classical``, one protocol, one machine, ``--verdict``):
one row per model with Recall/NDCG@10, the test against the reference, the seeds, whether
training converged, and the fit time. The history table (``docs/results-history.md``) keeps
every earlier run: one row per model of one results file, Recall/NDCG @5/@10, the training
budget actually used (epochs run, best epoch, whether the time budget ran out) and the hardware.

A second table puts every reproduction check (``genrec.bench.reproduction.CHECKS``) next to its
published or previously measured numbers: the record written by ``make reproduce``
(``docs/measurements/reproduction/<check>.json``) when there is one, else an earlier
measurement of the same model, else "not run".
"""

from __future__ import annotations

import argparse
import glob
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GLOBS = ("docs/measurements/*.json", "docs/measurements/*/*.json")
REPRO_DIR = "docs/measurements/reproduction"
START, END = "<!-- results-table:start -->", "<!-- results-table:end -->"
VERDICT_START, VERDICT_END = "<!-- verdict-table:start -->", "<!-- verdict-table:end -->"
HISTORY = "docs/results-history.md"
VERDICT = "docs/measurements/verdict-reference-amazon-beauty-cpu/suite.json"
METRICS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")
DATASET = "amazon-beauty"  # the README table; other datasets' files are skipped
SHORT = {"recall": "R", "ndcg": "N", "mrr": "MRR"}
CONFIG_KEYS = ("loss", "max_seq_len", "l2", "n_neighbors", "shrink", "factors", "embedding_dim",
               "codebook", "max_items", "time_budget_minutes")  # fmt: skip


def _src_on_path() -> None:
    """Let the script import genrec from a checkout without installing it."""
    if str(ROOT / "src") not in sys.path:
        sys.path.insert(0, str(ROOT / "src"))


def _is_record(res: dict) -> bool:
    return res.get("kind") == "genrec-reproduction"


def rows(paths: list[Path], dataset: str = DATASET) -> list[tuple[float, str]]:
    """Table lines of every model in ``paths`` measured on ``dataset`` (other datasets,
    reproduction records and suite files are skipped), best NDCG@10 first."""
    best: dict[tuple[str, str, str], tuple[float, str, int]] = {}
    for path in sorted(paths):
        res = json.loads(path.read_text())
        if _is_record(res) or "models" not in res:
            continue  # reproduction records have their own table
        ds = res.get("dataset")
        if not isinstance(ds, dict) or ds.get("name") != dataset:
            continue  # other datasets, and files of other tools (cold-start reports)
        where = _where(res["manifest"]["hardware"])
        for name, m in res["models"].items():
            cfg = m["config"]
            label = name
            if "codebook" in cfg:  # TIGER: which codes, which batch
                codes = Path(cfg["codebook_path"]).name if cfg.get("codebook_path") else None
                size = f"{cfg.get('n_encoder_layers', '?')}+{cfg.get('n_decoder_layers', '?')}"
                width = cfg.get("embedding_dim", cfg.get("d_model", "?"))  # d_model: older runs
                size += f" layers x {width}"
                label += f" ({codes or cfg['codebook']} codes, {size}, batch {cfg['batch_size']})"
            elif "loss" in cfg:
                label += f" ({cfg['loss']}"
                label += f", L={cfg['max_seq_len']})" if "max_seq_len" in cfg else ")"
            elif "max_seq_len" in cfg:
                label += f" (L={cfg['max_seq_len']})"
            if cfg.get("adam_beta2", 0.999) != 0.999:
                beta2 = f"beta2={cfg['adam_beta2']}"
                label = f"{label[:-1]}, {beta2})" if label.endswith(")") else f"{label} ({beta2})"
            cells = [
                f"{m['metrics'][k]['mean']:.4f}" if k in m["metrics"] else "–" for k in METRICS
            ]  # a run without k=5 shows a dash
            train = (m.get("training") or [None])[0]
            if train:
                budget = f"{train['epochs_run']} epochs (best {train['best_epoch'] + 1})"
                if train.get("out_of_time"):
                    budget += f", {cfg.get('time_budget_minutes')} min budget"
                elif train.get("stopped_early"):
                    budget += ", early stop"
                budget += f"; fit {m['fit_seconds']['mean'] / 60:.0f} min"
            else:
                budget = f"no epochs; fit {m['fit_seconds']['mean']:.0f} s"
            line = f"| {label} | " + " | ".join(cells) + f" | {budget} | {where} | {_file(path)} |"
            # e.g. EASE re-run next to other models: the same numbers once, from the file
            # with the most cut-offs
            key = (label, cells[METRICS.index("recall@10")], cells[METRICS.index("ndcg@10")])
            dashes = cells.count("–")
            if key not in best or dashes < best[key][2]:
                best[key] = (m["metrics"]["ndcg@10"]["mean"], line, dashes)
    return sorted(((v[0], v[1]) for v in best.values()), key=lambda r: -r[0])


def _file(path: Path) -> str:
    """The file name, with its folder when it sits in a folder of docs/measurements (several
    folders hold e.g. a ``bert4rec-50.json``)."""
    measurements = (ROOT / "docs" / "measurements").resolve()
    parent = path.resolve().parent
    return f"{parent.name}/{path.name}" if parent.parent == measurements else path.name


def _short_metric(key: str) -> str:
    name, _, k = key.partition("@")
    return f"{SHORT.get(name, name)}@{k}"


def _config_text(cfg: dict, source: str | None) -> str:
    """The preset's file name, the key settings, and every preset key the run overrode."""
    parts = [Path(source).name] if source else ["defaults"]
    shown = [k for k in CONFIG_KEYS if k in cfg and cfg[k] not in (None, 0.0)]
    preset_path = ROOT / source if source else None
    if preset_path is not None and preset_path.is_file():
        import yaml

        preset = yaml.safe_load(preset_path.read_text()) or {}
        shown += [k for k, v in preset.items() if k in cfg and cfg[k] != v and k not in shown]
    if cfg.get("codebook_path"):  # a prefitted codebook replaces `codebook`
        shown = [k for k in shown if k != "codebook"]
    parts += [f"{k}={cfg[k]}" for k in shown]
    if cfg.get("codebook_path"):
        parts.append(f"codebook_path=.../{Path(cfg['codebook_path']).name}")
    return ", ".join(parts)


def _where(hw: dict) -> str:
    return hw.get("cuda") or f"{hw.get('cpu_count')} CPUs"


def reproduction_rows(repro_dir: Path = ROOT / REPRO_DIR) -> list[str]:
    """One line per check: reference vs genrec per metric, tolerance, verdict, config."""
    _src_on_path()
    from genrec.bench.reproduction import CHECKS, compare, reference_metrics

    lines = []
    for check in CHECKS:
        ref = reference_metrics(check, ROOT)
        record_path = repro_dir / f"{check.name}.json"
        status, cfg_text, where = "not run", "", ""
        measured: dict[str, float] | None = None
        if record_path.is_file():
            rec = json.loads(record_path.read_text())
            measured = rec["measured"]
            status = "**pass**" if rec["passed"] else "**FAIL**"
            cfg_text = _config_text(rec["config"], rec.get("config_source"))
            secs = rec["seconds"]
            where = f"{_where(rec['hardware'])}, fit {secs['fit_per_seed']:.0f} s/seed"
            if rec.get("training") and rec["training"][0]:
                where += f", {rec['training'][0].get('epochs_run')} epochs"
        elif check.previous and (ROOT / check.previous).is_file():
            res = json.loads((ROOT / check.previous).read_text())
            entry = res["models"][check.model]
            measured = {k: v["mean"] for k, v in entry["metrics"].items()}
            ok = all(r["ok"] for r in compare(measured, ref, check.mode, check.tolerance,
                                              check.relative).values())  # fmt: skip
            status = f"{'pass' if ok else 'below'} (earlier run {Path(check.previous).name})"
            cfg_text = _config_text(entry["config"], entry.get("config_source"))
            where = _where(res["manifest"]["hardware"])
        elif check.gpu:
            status = f"not run (needs a GPU; CPU: {check.cpu_estimate.split(' (')[0]})"
        cells = []
        for key, value in ref.items():
            got = f"{measured[key]:.4f}" if measured and key in measured else "–"
            cells.append(f"{_short_metric(key)} {value:.4f} / {got}")
        lines.append(
            f"| {check.name} | {check.source} | {'; '.join(cells)} | "
            f"{check.tolerance_text()} | {status} | {cfg_text} | {where} |"
        )
    return lines


def render(paths: list[Path], repro_dir: Path | None = None) -> str:
    header = (
        "| model | Recall@5 | NDCG@5 | Recall@10 | NDCG@10 | training budget | hardware | file |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    table = "\n".join([header] + [line for _, line in rows(paths)])
    repro = reproduction_rows(repro_dir or ROOT / REPRO_DIR)
    if not repro:
        return table
    repro_header = (
        "| check | reference from | metric: reference / genrec | tolerance | verdict | "
        "genrec configuration | hardware, time |\n|---|---|---|---|---|---|---|"
    )
    return "\n".join([
        table,
        "",
        "Reproduction checks (`make reproduce`; records in "
        f"[{REPRO_DIR}/]({Path(REPRO_DIR).relative_to('docs')}/)):",  # linked from docs/
        "",
        repro_header,
        *repro,
    ])  # fmt: skip


def verdict_table(suite: dict, protocol: str = "loo", metric: str = "ndcg@10") -> str:
    """The README's headline table from one suite run: every model of ``protocol``, best
    ``metric`` first, with Recall/NDCG@10 (mean ± std over seeds), the paired test against the
    reference, the seeds run, convergence and the fit time per seed."""
    _src_on_path()
    from genrec.report.verdict import format_p

    res = suite["protocols"][protocol]
    ref = res.get("reference_model")
    hw = res["manifest"]["hardware"]
    lines = [
        f"One run of `{suite['suite']}` ({suite['mode']} mode, {protocol}), "
        f"{_where(hw)} ({hw.get('torch_threads')} torch threads), "
        f"{suite['wall_seconds'] / 60:.0f} min wall in all, genrec {res['genrec_version']}, "
        f"{res['created_at'][:10]}. Reference: **{ref}** ({res.get('reference_policy', '')}). "
        "↑/↓: significantly better/worse than the reference on per-user NDCG@10 (paired "
        "t-test, Holm-corrected, α = 0.05); †: not converged (the training budget ran out "
        "before early stopping), so its numbers are a lower bound, not a verdict.",
        "",
        "| model | family | Recall@10 | NDCG@10 | vs reference (NDCG@10) | seeds | training "
        "| fit per seed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    families = suite.get("families") or {}

    def cell(m: dict, key: str) -> str:
        v = m["metrics"].get(key)
        if v is None:
            return "–"
        text = f"{v['mean']:.4f}"
        if len(v["per_seed"]) > 1 and not m.get("deterministic"):
            text += f" ± {v['std']:.4f}"
        return text

    order = sorted(res["models"].items(), key=lambda kv: -kv[1]["metrics"][metric]["mean"])
    for name, m in order:
        conv = m.get("convergence") or {}
        mark = " †" if conv.get("converged") is False else ""
        sig = (m.get("significance") or {}).get(metric)
        if name == ref:
            vs = "reference"
        elif sig:
            arrow = ("↑ " if sig["delta"] > 0 else "↓ ") if sig["significant"] else "= "
            vs = f"{arrow}{sig['relative_delta']:+.1%}, {format_p(sig['p_adjusted'])}"
        else:
            vs = "–"
        seeds = str(m.get("seeds_run", len(m["metrics"][metric]["per_seed"])))
        if m.get("deterministic"):
            seeds = "1 (deterministic)"
        elif m.get("one_seed_reason"):
            seeds += " (fit > 10 min)"
        reasons = list(conv.get("reasons") or [])
        if conv.get("converged") is None:
            training = "no epochs (fitted in one go)"
        else:
            if len(set(reasons)) > 1:  # seeds ended differently: say which did what
                reasons = [f"seed {i}: {r}" for i, r in enumerate(reasons)]
            training = ("converged: " if conv["converged"] else "**not converged**: ") + (
                "; ".join(dict.fromkeys(reasons))
            )
        fit = m["fit_seconds"]["mean"]
        fit_text = f"{fit / 60:.1f} min" if fit >= 60 else f"{fit:.0f} s"
        lines.append(
            f"| {name}{mark} | {families.get(name, '')} | {cell(m, 'recall@10')} | "
            f"{cell(m, 'ndcg@10')} | {vs} | {seeds} | {training} | {fit_text} |"
        )
    return "\n".join(lines)


def _replace_block(path: Path, start: str, end: str, table: str) -> None:
    text = path.read_text()
    new, n = re.subn(re.escape(start) + ".*?" + re.escape(end), f"{start}\n{table}\n{end}",
                     text, flags=re.S)  # fmt: skip
    if n != 1:
        raise SystemExit(f"{path.name} needs exactly one {start} ... {end} block")
    path.write_text(new)
    print(f"updated {path.relative_to(ROOT)} ({len(table.splitlines())} lines)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*")
    parser.add_argument(
        "--update-readme",
        action="store_true",
        help=f"write the verdict table into README.md and the history table into {HISTORY}",
    )
    parser.add_argument("--verdict", default=str(ROOT / VERDICT), help="the suite.json")
    args = parser.parse_args()
    names = args.files or [p for g in DEFAULT_GLOBS for p in glob.glob(str(ROOT / g))]
    table = render([Path(p) for p in names])
    verdict = verdict_table(json.loads(Path(args.verdict).read_text()))
    if not args.update_readme:
        print(verdict, table, sep="\n\n")
        return
    _replace_block(ROOT / "README.md", VERDICT_START, VERDICT_END, verdict)
    _replace_block(ROOT / HISTORY, START, END, table)


if __name__ == "__main__":
    main()
