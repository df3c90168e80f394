"""genrec's cache location: ``$GENREC_CACHE_DIR``, its older name ``$GENREC_CACHE``, else
``~/.cache/genrec``; tests never write to the real one (tests/conftest.py)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

from genrec.data.loaders.download import cache_dir, dataset_cache_dir
from genrec.text.embed import text_cache_root

# Embeds two texts with a stand-in embedder through the default cache (no cache_dir given)
# and prints where the vectors went.
_SNIPPET = """
import numpy as np
from genrec.text.embed import embed_texts, text_cache_root

class Fake:
    model_name = "fake-model"
    signature = {"model": "fake-model"}
    def encode(self, texts, progress=False):
        return np.ones((len(texts), 3), dtype=np.float32)

embed_texts(["a", "b"], Fake(), progress=False)
print(text_cache_root())
"""


def test_tests_use_a_temporary_cache_and_home():
    real_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    assert Path.home() != real_home  # tests/conftest.py: HOME is a temporary folder
    assert os.environ.get("GENREC_CACHE_DIR")
    for path in (cache_dir(), dataset_cache_dir("movielens-1m"), text_cache_root()):
        assert real_home not in (path, *path.parents), path
        assert Path(os.environ["GENREC_CACHE_DIR"]) in (path, *path.parents), path


def _run(tmp_path: Path, **env_vars: str) -> tuple[str, list[Path]]:
    env = {k: v for k, v in os.environ.items() if k not in ("GENREC_CACHE_DIR", "GENREC_CACHE")}
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(HOME=str(home), **env_vars)
    src = Path(__file__).resolve().parents[1] / "src"
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    out = subprocess.run(
        [sys.executable, "-c", _SNIPPET], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip(), sorted(p for p in tmp_path.rglob("*.npy"))


def test_cache_location_follows_the_environment(tmp_path):
    root, files = _run(tmp_path, GENREC_CACHE_DIR=str(tmp_path / "new"))
    assert Path(root) == tmp_path / "new" / "text"
    assert [f.parent for f in files] == [tmp_path / "new" / "text" / "fake-model"]
    assert not (tmp_path / "home" / ".cache").exists()

    root, files = _run(tmp_path / "alias", GENREC_CACHE=str(tmp_path / "alias" / "old"))
    assert Path(root) == tmp_path / "alias" / "old" / "text"  # the older name still works
    assert len(files) == 1

    root, files = _run(tmp_path / "default")  # neither set: the home folder's cache
    assert Path(root) == tmp_path / "default" / "home" / ".cache" / "genrec" / "text"
    assert len(files) == 1 and Path(root) in files[0].parents
