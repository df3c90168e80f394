"""benchmarks/cold_start.py on a synthetic catalogue: rows per model and the TIGER
cold_slots (epsilon) rows, evaluated on the same fitted model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from genrec.testing import make_synthetic_dataset

TINY = yaml.safe_load((Path(__file__).parent / "models" / "tiny" / "tiger.yaml").read_text())


def test_cold_slots_rows(benchmark_script, monkeypatch, tmp_path: Path) -> None:
    import genrec.data.loaders as loaders

    ds = make_synthetic_dataset(n_users=200, n_items=40, seq_len=6)
    monkeypatch.setattr(loaders, "load_dataset", lambda name, data_dir=None: ds)
    cfg = tmp_path / "tiger.yaml"
    cfg.write_text(yaml.safe_dump({**TINY["config"], "epochs": 3, "num_beams": 12}))
    script = benchmark_script("cold_start")
    out = tmp_path / "cold.json"
    argv = [
        "--dataset", "synthetic", "--share", "0.1", "--models", "popularity,tiger",
        "--config", f"tiger={cfg}", "--tiger-cold-slots", "0.2,0.5", "--tiger-prefix-levels",
        "1", "--diagnostic-users", "0", "--save-tiger", str(tmp_path / "tiger"), "--out", str(out),
    ]  # fmt: skip
    assert script.main(argv) == 0
    rows = json.loads(out.read_text())["models"]
    assert set(rows) == {
        "popularity", "tiger", "tiger[cold_slots=0.2,prefix_levels=1]",
        "tiger[cold_slots=0.5,prefix_levels=1]",
    }  # fmt: skip
    assert rows["popularity"]["cold_share"] == 0.0
    base, more = rows["tiger"], rows["tiger[cold_slots=0.5,prefix_levels=1]"]
    assert more["config"]["cold_slots"] == 0.5 and more["fit_seconds"] == base["fit_seconds"]
    assert more["cold_share"] > base["cold_share"]  # random 2-level codes share level 1
    assert more["cold_share"] <= base["cold_share"] + 0.5
    assert (tmp_path / "tiger").is_dir()
    with pytest.raises(SystemExit, match="cold-slots"):
        script.main(["--models", "popularity", "--tiger-cold-slots", "0.2"])
    with pytest.raises(SystemExit, match="must be in"):
        script.main(["--tiger-cold-slots", "1.5"])
