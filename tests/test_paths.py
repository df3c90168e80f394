"""Nothing is lost: genrec never deletes or replaces what it did not write, replaces its own
outputs only with ``overwrite``, and checks an output location before a long job starts."""

import json
import os
from pathlib import Path

import pandas as pd
import pytest

import genrec
from genrec import Dataset
from genrec.cli import main
from genrec.paths import (
    OutputPathError,
    atomic_dir,
    check_output_file,
    is_genrec_output,
    prepare_output_dir,
)


@pytest.fixture
def fitted(tiny_frame):
    return genrec.get_model("popularity")().fit(Dataset(tiny_frame))


@pytest.fixture
def user_folder(tmp_path) -> Path:
    """A folder of the user's own files, with a subfolder."""
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    (folder / "thesis.tex").write_text("years of work")
    (folder / "sub" / "data.csv").write_text("a,b\n1,2\n")
    return folder


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory) -> Path:
    from genrec.testing import make_synthetic_dataset

    path = tmp_path_factory.mktemp("data") / "inter.csv"
    ds = make_synthetic_dataset(n_users=30, n_items=15, seed=0)
    ds.interactions[["user_id", "item_id", "timestamp"]].to_csv(path, index=False)
    return path


# ---------------------------------------------------------------------- Python API
def test_save_refuses_a_folder_genrec_did_not_write(fitted, user_folder):
    before = _snapshot(user_folder)
    with pytest.raises(OutputPathError, match="not an artifact written by genrec"):
        fitted.save(user_folder)
    with pytest.raises(OutputPathError, match="never deletes"):
        fitted.save(user_folder, overwrite=True)  # overwrite covers genrec's own outputs only
    assert _snapshot(user_folder) == before


def test_save_refuses_an_existing_file(fitted, tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    for overwrite in (False, True):
        with pytest.raises(OutputPathError, match="is a file"):
            fitted.save(target, overwrite=overwrite)
    assert target.read_text() == "keep me"


def test_save_replaces_its_own_artifact_only_with_overwrite(fitted, tmp_path):
    path = fitted.save(tmp_path / "art")
    stamp = (path / "config.json").read_text()
    with pytest.raises(OutputPathError, match="overwrite=True"):
        fitted.save(path)
    assert (path / "config.json").read_text() == stamp
    fitted.save(path, overwrite=True)
    genrec.load(path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no swap leftovers


def test_save_into_an_empty_folder(fitted, tmp_path):
    (tmp_path / "empty").mkdir()
    fitted.save(tmp_path / "empty")
    assert is_genrec_output(tmp_path / "empty", "artifact")


def test_unwritable_location_is_reported_before_writing(fitted, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match="cannot write"):
        fitted.save(blocker / "art")  # the parent is a file
    assert blocker.read_text() == "x"


def test_atomic_swap_never_deletes_a_folder_that_appeared_meanwhile(tmp_path):
    target = tmp_path / "art"
    with pytest.raises(OutputPathError), atomic_dir(target, kind="artifact") as tmp:
        (tmp / "config.json").write_text(json.dumps({"format_version": 1, "model": "x"}))
        target.mkdir()  # the user creates a folder there during the long job
        (target / "mine.txt").write_text("keep")
    assert (target / "mine.txt").read_text() == "keep"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_codebook_save_follows_the_same_rule(user_folder, tmp_path):
    import numpy as np

    from genrec.tokenizers import ItemCodebook

    cb = ItemCodebook(np.array([[0, 0], [0, 1], [1, 0]]), [2, 2])
    before = _snapshot(user_folder)
    with pytest.raises(OutputPathError):
        cb.save(user_folder, overwrite=True)
    assert _snapshot(user_folder) == before
    cb.save(tmp_path / "cb")
    with pytest.raises(OutputPathError, match="overwrite"):
        cb.save(tmp_path / "cb")
    cb.save(tmp_path / "cb", overwrite=True)


def test_saved_weights_follow_the_umask(fitted, tmp_path):
    old = os.umask(0o022)
    try:
        path = fitted.save(tmp_path / "art")
    finally:
        os.umask(old)
    for name in ("weights.safetensors", "config.json", "ids.json"):
        assert (path / name).stat().st_mode & 0o777 == 0o644, name


def test_prepare_run_folder_and_file_checks(tmp_path, user_folder):
    run = prepare_output_dir(tmp_path / "a" / "b" / "run", "run")
    assert run.is_dir()  # created, with its parents
    with pytest.raises(OutputPathError, match="not a run written by genrec"):
        prepare_output_dir(user_folder, "run", overwrite=True)
    note = tmp_path / "note.yaml"
    note.write_text("mine: 1\n")
    with pytest.raises(OutputPathError, match="not written by genrec"):
        check_output_file(note, overwrite=True, owned=lambda p: False)
    with pytest.raises(OutputPathError, match="--overwrite"):
        check_output_file(note, owned=lambda p: True, flag="--overwrite")
    check_output_file(note, overwrite=True, owned=lambda p: True)
    with pytest.raises(OutputPathError, match="is an existing folder"):
        check_output_file(user_folder)


def test_write_outputs_and_reports_refuse_user_folders(user_folder):
    from genrec.bench.benchmark import write_outputs
    from genrec.report import write_reports

    before = _snapshot(user_folder)
    (user_folder / "report.md").write_text("my report")
    before = _snapshot(user_folder)
    with pytest.raises(OutputPathError):
        write_outputs({"schema_version": 1}, user_folder, overwrite=True)
    with pytest.raises(OutputPathError):
        write_reports({"schema_version": 1}, user_folder)
    assert _snapshot(user_folder) == before


def test_trainer_checkpoint_folder_rules(tmp_path, user_folder):
    from genrec.training.trainer import check_checkpoint_dir

    # a folder with other files is fine: only <dir>/last is written, and it is new
    check_checkpoint_dir(user_folder)
    (user_folder / "last").mkdir()
    (user_folder / "last" / "x.txt").write_text("mine")
    with pytest.raises(OutputPathError, match="not a checkpoint written by genrec"):
        check_checkpoint_dir(user_folder, overwrite=True)
    blocker = tmp_path / "ckpt-file"
    blocker.write_text("x")
    with pytest.raises(OutputPathError, match="is a file"):
        check_checkpoint_dir(blocker)
    assert blocker.read_text() == "x"


# ---------------------------------------------------------------------- CLI
def _train(csv_path: Path, out: Path, *extra: str) -> int:
    args = ["train", "popularity", "--dataset", "csv", "--data-dir", str(csv_path)]
    return main([*args, "--out", str(out), *extra])


def test_cli_train_refuses_a_user_folder_and_keeps_its_files(csv_path, user_folder, capsys):
    before = _snapshot(user_folder)
    for extra in ((), ("--overwrite",)):
        assert _train(csv_path, user_folder, *extra) == 2
        err = capsys.readouterr().err
        assert "genrec: error:" in err and str(user_folder) in err and "never deletes" in err
    assert _snapshot(user_folder) == before


def test_cli_train_refuses_a_file_at_out(csv_path, tmp_path, capsys):
    target = tmp_path / "model.bin"
    target.write_bytes(b"user data")
    assert _train(csv_path, target) == 2
    assert "is a file" in capsys.readouterr().err
    assert target.read_bytes() == b"user data"


def test_cli_train_overwrite_replaces_only_an_artifact(csv_path, tmp_path, capsys):
    out = tmp_path / "art"
    assert _train(csv_path, out) == 0
    assert _train(csv_path, out) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert _train(csv_path, out, "--overwrite") == 0
    genrec.load(out)


def test_cli_checks_the_output_before_loading_data(tmp_path, user_folder, capsys):
    """The output is checked first: a bad --out fails even though the data does not exist
    (a long run never dies at its end because of its output path)."""
    args = ["train", "popularity", "--dataset", "csv", "--data-dir", str(tmp_path / "none.csv")]
    assert main([*args, "--out", str(user_folder)]) == 2
    assert "never deletes" in capsys.readouterr().err
    bench = ["benchmark", "--dataset", "csv", "--data-dir", str(tmp_path / "none.csv")]
    assert main([*bench, "--models", "popularity", "--out", str(user_folder)]) == 2
    assert "not a run written by genrec" in capsys.readouterr().err


def test_cli_benchmark_and_report_out_rules(csv_path, tmp_path, user_folder, capsys):
    data = ["--dataset", "csv", "--data-dir", str(csv_path), "--models", "popularity"]
    run = tmp_path / "run"
    assert main(["benchmark", *data, "--out", str(run)]) == 0
    assert main(["benchmark", *data, "--out", str(run)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["benchmark", *data, "--out", str(run), "--overwrite"]) == 0
    results = str(run / "results.json")
    assert main(["report", results]) == 0  # its own folder: rebuilt in place
    before = _snapshot(user_folder)
    assert main(["report", results, "--out", str(user_folder), "--overwrite"]) == 2
    assert _snapshot(user_folder) == before
    other = tmp_path / "copy"
    assert main(["report", results, "--out", str(other)]) == 0
    assert main(["report", results, "--out", str(other)]) == 2
    assert main(["report", results, "--out", str(other), "--overwrite"]) == 0


def test_cli_tune_refuses_a_foreign_preset_and_storage(csv_path, tmp_path, capsys):
    pytest.importorskip("optuna")
    data = ["--dataset", "csv", "--data-dir", str(csv_path)]
    preset = tmp_path / "ease.yaml"
    preset.write_text("l2: 10  # my hand-made preset\n")
    args = ["tune", "ease", *data, "--budget-trials", "1", "--storage", str(tmp_path / "t.db")]
    assert main([*args, "--save-preset", str(preset), "--overwrite"]) == 2
    assert "not written by genrec" in capsys.readouterr().err
    assert preset.read_text() == "l2: 10  # my hand-made preset\n"
    notdb = tmp_path / "notes.db"
    notdb.write_text("not a database")
    code = main(["tune", "ease", *data, "--budget-trials", "1", "--storage", str(notdb)] +
                ["--save-preset", str(tmp_path / "p.yaml")])  # fmt: skip
    assert code == 2
    assert "not an SQLite database" in capsys.readouterr().err
    assert notdb.read_text() == "not a database"


def test_cli_checkpoint_needs_resume_or_overwrite(csv_path, tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    args = ["train", "sasrec", "--dataset", "csv", "--data-dir", str(csv_path)]
    args += ["--set", "epochs=1", "--set", "progress=false", "--set", "embedding_dim=8"]
    args += ["--set", "max_seq_len=8", "--checkpoint-dir", str(ckpt)]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert (ckpt / "last" / "trainer.json").is_file()
    assert main([*args, "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "--overwrite" in err
    assert main([*args, "--out", str(tmp_path / "b"), "--overwrite"]) == 0


def test_frame_of_user_files_untouched_by_dataset_loading(tmp_path):
    """Reading data never writes next to it."""
    csv = tmp_path / "d.csv"
    pd.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3]}).to_csv(csv, index=False)
    before = sorted(p.name for p in tmp_path.iterdir())
    genrec.load_dataset("csv", data_dir=str(csv))
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_atomic_file_replaces_only_on_success_and_never_a_foreign_file(tmp_path):
    from genrec.paths import atomic_file

    target = tmp_path / "out.bin"
    with atomic_file(target) as tmp:
        tmp.write_bytes(b"one")
    assert target.read_bytes() == b"one"
    with pytest.raises(RuntimeError), atomic_file(target, owned=lambda p: True) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash")
    assert target.read_bytes() == b"one"
    foreign = pytest.raises(OutputPathError, match="not written by genrec")
    with foreign, atomic_file(target, owned=lambda p: False) as tmp:  # appeared meanwhile
        tmp.write_bytes(b"two")
    assert target.read_bytes() == b"one"
    with atomic_file(target, owned=lambda p: True) as tmp:
        tmp.write_bytes(b"three")
    assert target.read_bytes() == b"three"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]  # no temporary left


def test_synth_parquet_and_ann_index_follow_the_rule(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    from genrec.data.synth import synthesize, write_parquet

    frame = synthesize(20, 10, 4.0, 1.0, 0)
    mine = tmp_path / "mine.parquet"
    frame.to_parquet(mine)  # a Parquet file genrec did not write
    with pytest.raises(OutputPathError, match="not written by genrec"):
        write_parquet(frame, mine, overwrite=True)
    out = write_parquet(frame, tmp_path / "synth.parquet")
    with pytest.raises(OutputPathError, match="overwrite"):
        write_parquet(frame, out)
    write_parquet(frame, out, overwrite=True)
    args = ["datasets", "synth", "--users", "20", "--items", "10", "--out", str(mine)]
    assert main(args) == 2 and "not written by genrec" in capsys.readouterr().err
    args[-1] = str(out)
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0


def test_ann_index_save_refuses_user_folders(tmp_path, user_folder):
    pytest.importorskip("faiss")
    import numpy as np

    from genrec.ann import ItemIndex

    vectors = np.random.default_rng(0).normal(size=(31, 8)).astype(np.float32)
    index = ItemIndex.build(vectors, method="flat")
    before = _snapshot(user_folder)
    with pytest.raises(OutputPathError):
        index.save(user_folder, overwrite=True)
    assert _snapshot(user_folder) == before
    index.save(tmp_path / "idx")
    with pytest.raises(OutputPathError, match="overwrite"):
        index.save(tmp_path / "idx")
    index.save(tmp_path / "idx", overwrite=True)
    assert ItemIndex.load(tmp_path / "idx").n_items == 30


def test_overwrite_never_deletes_user_files_inside_a_genrec_folder(fitted, tmp_path):
    path = fitted.save(tmp_path / "art")
    (path / "my_notes.txt").write_text("keep me")
    with pytest.raises(OutputPathError, match="my_notes.txt"):
        fitted.save(path, overwrite=True)
    assert (path / "my_notes.txt").read_text() == "keep me"
    (path / "my_notes.txt").unlink()
    fitted.save(path, overwrite=True)


def test_symbolic_links_are_refused(fitted, tmp_path):
    real = fitted.save(tmp_path / "v3")
    link = tmp_path / "latest"
    link.symlink_to(real)
    with pytest.raises(OutputPathError, match="symbolic link"):
        fitted.save(link, overwrite=True)
    assert link.is_symlink() and (real / "config.json").is_file()
    target = tmp_path / "note.yaml"
    target.write_text("x")
    (tmp_path / "preset.yaml").symlink_to(target)
    with pytest.raises(OutputPathError, match="symbolic link"):
        check_output_file(tmp_path / "preset.yaml", overwrite=True, owned=lambda p: True)


def test_a_failed_swap_puts_the_previous_output_back(fitted, tmp_path, monkeypatch):
    import os as _os

    path = fitted.save(tmp_path / "art")
    before = _snapshot(path)
    real_replace = _os.replace
    calls = {"n": 0}

    def flaky(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:  # the second rename of the swap (new folder into place)
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr("genrec.paths.os.replace", flaky)
    with pytest.raises(OSError, match="No space"):
        fitted.save(path, overwrite=True)
    monkeypatch.undo()
    assert _snapshot(path) == before  # the earlier artifact is back under its name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_checkpoint_folder_is_held_by_one_run_at_a_time(tmp_path):
    import subprocess
    import sys

    from genrec.training.trainer import checkpoint_lock

    ckpt = tmp_path / "ckpt"
    with checkpoint_lock(ckpt):
        code = (
            "import sys; from genrec.training.trainer import checkpoint_lock\n"
            "from genrec.paths import OutputPathError\n"
            "try:\n    with checkpoint_lock(sys.argv[1]): pass\n"
            "except OutputPathError as e:\n    print(e); sys.exit(3)\n"
        )
        other = subprocess.run(
            [sys.executable, "-c", code, str(ckpt)], capture_output=True, text=True
        )
        assert other.returncode == 3 and "in use by another training run" in other.stdout
    with checkpoint_lock(ckpt):  # released: the next run takes it
        pass
