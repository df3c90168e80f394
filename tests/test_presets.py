"""Every shipped preset in configs/ builds a valid config for a registered model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import genrec
from genrec.bench.benchmark import BenchmarkSpec, resolve_config
from genrec.cli import main
from genrec.config import load_yaml, model_config_data
from genrec.data.loaders import get_spec
from genrec.registry import get_model
from genrec.testing import make_synthetic_dataset

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRESETS = sorted(CONFIGS.glob("*/*.yaml"))


def test_presets_exist():
    assert PRESETS, "no presets shipped under configs/"


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_preset_builds(path: Path):
    get_spec(path.parent.name)  # the folder is a known dataset name
    cls = get_model(path.stem)
    config = cls.config_class.from_dict(load_yaml(path))
    assert config == cls(config).config
    header = path.read_text().splitlines()[0]
    assert header.startswith("#"), "presets start with a comment giving the run command"


VARIANTS = sorted(CONFIGS.glob("*/variants/*.yaml"))


@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: f"{p.parents[1].name}/{p.stem}")
def test_variant_builds(path: Path):
    """configs/<dataset>/variants/<model>-<what>.yaml: a valid config of <model>, whose
    first line is the command that uses it."""
    get_spec(path.parents[1].name)
    model = path.stem.split("-")[0]
    cls = get_model(model)
    cls.config_class.from_dict(load_yaml(path))
    header = path.read_text().splitlines()[0]
    assert header.startswith("#") and f"--config {model}=configs/" in header


def test_benchmark_picks_up_preset():
    path = PRESETS[0]
    spec = BenchmarkSpec(dataset=path.parent.name, configs_dir=str(CONFIGS))
    cfg, source = resolve_config(path.stem, path.parent.name, spec)
    assert source == str(path)
    for key, value in load_yaml(path).items():
        assert cfg[key] == value


# ---------------------------------------------------------------------- one rule, every command
@pytest.fixture
def csv_and_configs(tmp_path):
    """A tiny CSV dataset (``--dataset csv``) and a presets folder with csv/ease.yaml."""
    ds = make_synthetic_dataset(n_users=40, n_items=30, seed=3, noise=0.1)
    csv = tmp_path / "inter.csv"
    ds.interactions[["user_id", "item_id", "timestamp"]].to_csv(csv, index=False)
    configs = tmp_path / "configs"
    (configs / "csv").mkdir(parents=True)
    (configs / "csv" / "ease.yaml").write_text("# genrec benchmark --dataset csv\nl2: 7.5\n")
    return csv, configs


def test_train_and_benchmark_use_the_same_preset(csv_and_configs, tmp_path, capsys):
    """``train`` once ignored the presets that ``benchmark`` used (EASE l2=500 vs 250)."""
    csv, configs = csv_and_configs
    data = ["--dataset", "csv", "--data-dir", str(csv), "--configs-dir", str(configs)]
    art = tmp_path / "ease"
    assert main(["train", "ease", *data, "--out", str(art)]) == 0
    err = capsys.readouterr().err
    assert f"ease: shipped preset {configs / 'csv' / 'ease.yaml'}" in err
    assert "--no-preset" in err
    trained = genrec.load(art)
    run = tmp_path / "run"
    assert main(["benchmark", *data, "--models", "ease", "--out", str(run)]) == 0
    assert "ease: shipped preset" in capsys.readouterr().err
    results = json.loads((run / "results.json").read_text())
    assert results["models"]["ease"]["config"] == trained.config.to_dict()
    assert trained.config.l2 == 7.5
    assert trained.training_info_["config_source"] == str(configs / "csv" / "ease.yaml")

    # --no-preset: the defaults, for both commands
    default_l2 = get_model("ease").config_class().l2
    assert default_l2 != 7.5
    assert main(["train", "ease", *data, "--no-preset", "--out", str(art), "--overwrite"]) == 0
    assert "ease: default config (--no-preset)" in capsys.readouterr().err
    assert genrec.load(art).config.l2 == default_l2
    code = main(["benchmark", *data, "--models", "ease", "--no-preset", "--out", str(run),
                 "--overwrite"])  # fmt: skip
    assert code == 0
    results = json.loads((run / "results.json").read_text())
    assert results["models"]["ease"]["config"]["l2"] == default_l2
    assert results["models"]["ease"]["config_source"] is None

    # --set wins over the preset; --config replaces it
    assert main(["train", "ease", *data, "--set", "l2=3", "--out", str(art), "--overwrite"]) == 0
    assert genrec.load(art).config.l2 == 3.0
    own = tmp_path / "own.yaml"
    own.write_text("l2: 11\n")
    assert main(["train", "ease", *data, "--config", str(own), "--out", str(art),
                 "--overwrite"]) == 0  # fmt: skip
    assert f"ease: config file {own}" in capsys.readouterr().err
    assert genrec.load(art).config.l2 == 11.0


def test_tune_starts_from_the_preset(csv_and_configs, tmp_path, capsys):
    csv, configs = csv_and_configs
    chosen = model_config_data("ease", "csv", configs_dir=str(configs))
    assert chosen.preset and chosen.data == {"l2": 7.5}
    assert model_config_data("ease", "csv", configs_dir=str(configs), use_preset=False).data == {}
    space = tmp_path / "space.yaml"
    space.write_text("search_space:\n  l2: {type: float, low: 1, high: 1000, log: true}\n")
    code = main([
        "tune", "ease", "--dataset", "csv", "--data-dir", str(csv), "--configs-dir", str(configs),
        "--budget-trials", "1", "--space", str(space), "--storage", str(tmp_path / "t.db"),
        "--save-preset", str(tmp_path / "best.yaml"),
    ])  # fmt: skip
    assert code == 0
    assert "ease: shipped preset" in capsys.readouterr().err
    # trial 0 is the starting config: the preset's l2
    assert load_yaml(tmp_path / "best.yaml")["l2"] == 7.5


def test_shipped_textknn_preset_is_used_by_train(tmp_path, capsys):
    """The first-hour case: ``train textknn`` on movielens-small follows the preset (tfidf)."""
    preset = CONFIGS / "movielens-small" / "textknn.yaml"
    assert load_yaml(preset)["encoder"] == "tfidf"
    spec = BenchmarkSpec(dataset="movielens-small", configs_dir=str(CONFIGS))
    cfg, source = resolve_config("textknn", "movielens-small", spec)
    art = tmp_path / "textknn"
    code = main(["train", "textknn", "--dataset", "movielens-small", "--configs-dir",
                 str(CONFIGS), "--out", str(art)])  # fmt: skip
    assert code == 0
    model = genrec.load(art)
    assert model.config.encoder == "tfidf" and model.config.to_dict() == cfg
    assert source == str(preset)
