from dataclasses import dataclass
from typing import Literal

import pytest

from genrec.config import ModelConfig, field, load_yaml, parse_overrides
from genrec.errors import ConfigError


@dataclass(frozen=True)
class DemoConfig(ModelConfig):
    lr: float = field(1e-3, "learning rate")
    epochs: int = field(5, "epochs")
    loss: Literal["bce", "ce"] = field("ce", "loss")
    tags: tuple[str, ...] = field((), "tags")

    def validate(self):
        self.positive("lr", "epochs")


def test_unknown_key_names_it_and_suggests():
    with pytest.raises(ConfigError, match="unknown config key 'epoch'.*Did you mean 'epochs'"):
        DemoConfig.from_dict({"epoch": 3})


def test_coercion_and_validation():
    cfg = DemoConfig.from_dict({"lr": "0.01", "epochs": 3.0})
    assert cfg.lr == 0.01 and cfg.epochs == 3 and isinstance(cfg.epochs, int)
    with pytest.raises(ConfigError, match="epochs must be an integer, got 2.5"):
        DemoConfig(epochs=2.5)
    with pytest.raises(ConfigError, match="lr must be > 0"):
        DemoConfig(lr=0)
    with pytest.raises(ConfigError, match="loss must be one of"):
        DemoConfig(loss="mse")
    with pytest.raises(ConfigError, match="true or false"):
        from genrec.core.recommender import Recommender  # noqa: F401

        @dataclass(frozen=True)
        class B(ModelConfig):
            flag: bool = field(False, "f")

        B(flag="yes")


def test_replace_and_round_trip():
    cfg = DemoConfig().replace(epochs=9)
    assert DemoConfig.from_dict(cfg.to_dict()) == cfg


def test_parse_overrides():
    assert parse_overrides(["lr=1e-3", "flag=true", "name=abc"]) == {
        "lr": 1e-3,
        "flag": True,
        "name": "abc",
    }
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["lr"])


def test_load_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lr: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(lst)
