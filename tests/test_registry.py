"""One registry pattern for models, tokenizers and datasets; lazy built-in models; old
config keys that still load."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import genrec
from genrec.data.loaders import REGISTRY as DATASETS
from genrec.errors import DeprecatedKeyWarning, UnknownNameError
from genrec.models import BUILTIN_MODELS
from genrec.registry import MODELS, Registry
from genrec.tokenizers.base import TOKENIZERS


def test_one_pattern_for_the_three_registries():
    for registry in (MODELS, TOKENIZERS, DATASETS):
        assert isinstance(registry, Registry)
        with pytest.raises(UnknownNameError, match="Did you mean"):
            registry.get(registry.names()[0] + "x")
    assert DATASETS.get("ml-1m").name == "movielens-1m"  # aliases
    assert "rkmeans" in TOKENIZERS and "ease" in MODELS


def test_the_builtin_table_lists_every_registered_model():
    """A model file's @register_model names and the lazy table in genrec.models agree."""
    import genrec.models
    import genrec.ranking

    for package in (genrec.models, genrec.ranking):
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{info.name}")
    registered = {name for name, _ in MODELS.items()}
    assert registered == set(BUILTIN_MODELS)
    for name, target in BUILTIN_MODELS.items():
        module, _, cls = target.partition(":")
        assert MODELS.get(name).__module__ == module and MODELS.get(name).__name__ == cls


def test_importing_genrec_imports_no_model_and_no_torch():
    code = (
        "import sys, genrec; names = genrec.list_models();"
        "assert 'ease' in names and 'tiger' in names;"
        "assert 'torch' not in sys.modules, 'torch imported';"
        "assert not [m for m in sys.modules if m.startswith('genrec.models.') and "
        "m != 'genrec.models.base'], 'a model was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_registry_refuses_a_taken_name_and_loads_lazy_entries():
    reg: Registry[object] = Registry("thing")
    reg.add("a", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("a", 2)
    reg.add_lazy("json", "json:dumps")
    assert "json" in reg and reg.get("json") is importlib.import_module("json").dumps
    reg.add_lazy("loads", "json:loads")
    with pytest.raises(ValueError, match="taken by the built-in"):
        reg.add("loads", importlib.import_module("json").dumps)  # shadowing a built-in
    reg.add("loads", importlib.import_module("json").loads)  # the built-in itself is fine


def test_old_config_keys_still_load_with_a_warning():
    cls = genrec.get_model("tiger")
    with pytest.warns(DeprecatedKeyWarning, match="'max_items' is deprecated, use 'max_seq_len'"):
        cfg = cls.config_class.from_dict({"max_items": 7, "d_model": 32})
    assert cfg.max_seq_len == 7 and cfg.embedding_dim == 32
    with pytest.raises(genrec.errors.ConfigError, match="both 'max_items'"):
        cls.config_class.from_dict({"max_items": 7, "max_seq_len": 8})


def test_checkpoints_and_artifacts_written_with_old_keys_still_load(tmp_path):
    """A run written before the rename resumes, an old artifact loads (silently)."""
    import json
    import warnings

    from genrec.testing import make_synthetic_dataset

    split = genrec.split_dataset(make_synthetic_dataset(n_users=30, n_items=20, seed=0), "loo")
    cfg = {"embedding_dim": 8, "iterations": 2}
    als = genrec.get_model("als")(**cfg).fit(split.train)
    path = als.save(tmp_path / "als")
    meta = json.loads((path / "config.json").read_text())
    meta["config"]["factors"] = meta["config"].pop("embedding_dim")  # as written before
    (path / "config.json").write_text(json.dumps(meta))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert genrec.load(path).config.embedding_dim == 8
    tiny = {"epochs": 1, "embedding_dim": 8, "max_seq_len": 5, "progress": False}
    ckpt = tmp_path / "ckpt"
    genrec.get_model("sasrec")(**tiny).fit(split.train, split.valid, checkpoint_dir=ckpt)
    trainer_json = ckpt / "last" / "trainer.json"
    state = json.loads(trainer_json.read_text())
    state["config"]["max_items"] = state["config"].pop("max_seq_len")  # an old name
    trainer_json.write_text(json.dumps(state))
    from genrec.models.sasrec import SASRecConfig

    SASRecConfig.RENAMED = {"max_items": "max_seq_len"}  # pretend it was renamed
    try:
        more = genrec.get_model("sasrec")(**{**tiny, "epochs": 2})
        more.fit(split.train, split.valid, checkpoint_dir=ckpt, resume=True)
        assert more.training_info_["resumed_from_epoch"] == 1
    finally:
        del SASRecConfig.RENAMED


def test_an_old_key_given_as_an_override_replaces_the_current_one(tmp_path):
    from genrec.bench.benchmark import BenchmarkSpec, resolve_config

    cls = genrec.get_model("als")
    with pytest.warns(DeprecatedKeyWarning):
        assert cls(factors=8).config.embedding_dim == 8
    with pytest.warns(DeprecatedKeyWarning):
        assert cls(embedding_dim=4).config.replace(factors=12).embedding_dim == 12
    with pytest.warns(DeprecatedKeyWarning):
        merged = cls.config_class.merged({"embedding_dim": 256}, {"factors": 32})
    assert merged == {"embedding_dim": 32}
    preset = tmp_path / "als.yaml"
    preset.write_text("embedding_dim: 256\n")
    spec = BenchmarkSpec(
        dataset="x", models=["als"], config_paths={"als": str(preset)},
        overrides={"als": {"factors": 32}},
    )  # fmt: skip
    with pytest.warns(DeprecatedKeyWarning):
        config, _ = resolve_config("als", "x", spec)
    assert config["embedding_dim"] == 32
