"""Every shipped preset in configs/ builds a valid config for a registered model."""

from __future__ import annotations

from pathlib import Path

import pytest

from genrec.bench.benchmark import BenchmarkSpec, resolve_config
from genrec.config import load_yaml
from genrec.data.loaders import get_spec
from genrec.registry import get_model

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
