"""Render the README "Results" table from saved ``results.json`` files (never typed by hand).

    python benchmarks/results_table.py docs/measurements/*.json docs/measurements/*/*.json
    python benchmarks/results_table.py --update-readme   # rewrites the block between markers

Each row is one model of one results file: Recall/NDCG @5/@10, the training budget actually
used (epochs run, best epoch, whether the time budget ran out) and the hardware.
"""

from __future__ import annotations

import argparse
import glob
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_GLOBS = ("docs/measurements/*.json", "docs/measurements/*/*.json")
START, END = "<!-- results-table:start -->", "<!-- results-table:end -->"
METRICS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")


def rows(paths: list[Path]) -> list[tuple[float, str]]:
    out = []
    for path in paths:
        res = json.loads(path.read_text())
        hw = res["manifest"]["hardware"]
        where = hw.get("cuda") or f"{hw.get('cpu_count')} CPUs"
        for name, m in res["models"].items():
            cfg = m["config"]
            label = name
            if "loss" in cfg:
                label += f" ({cfg['loss']}"
                label += f", L={cfg['max_seq_len']})" if "max_seq_len" in cfg else ")"
            elif "max_seq_len" in cfg:
                label += f" (L={cfg['max_seq_len']})"
            cells = [f"{m['metrics'][k]['mean']:.4f}" for k in METRICS]
            train = (m.get("training") or [None])[0]
            if train:
                budget = f"{train['epochs_run']} epochs (best {train['best_epoch'] + 1})"
                if train.get("out_of_time"):
                    budget += f", {cfg.get('time_budget_minutes')} min budget"
            else:
                budget = f"no epochs; fit {m['fit_seconds']['mean']:.0f} s"
            line = f"| {label} | " + " | ".join(cells) + f" | {budget} | {where} | {path.name} |"
            out.append((m["metrics"]["ndcg@10"]["mean"], line))
    return sorted(out, key=lambda r: -r[0])


def render(paths: list[Path]) -> str:
    header = (
        "| model | Recall@5 | NDCG@5 | Recall@10 | NDCG@10 | training budget | hardware | file |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    return "\n".join([header] + [line for _, line in rows(paths)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args()
    names = args.files or [p for g in DEFAULT_GLOBS for p in glob.glob(str(ROOT / g))]
    table = render([Path(p) for p in names])
    if not args.update_readme:
        print(table)
        return
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = f"{START}\n{table}\n{END}"
    new, n = re.subn(re.escape(START) + ".*?" + re.escape(END), block, text, flags=re.S)
    if n != 1:
        raise SystemExit(f"README.md needs exactly one {START} ... {END} block")
    readme.write_text(new)
    print(f"updated README.md ({len(table.splitlines()) - 2} rows)")


if __name__ == "__main__":
    main()
