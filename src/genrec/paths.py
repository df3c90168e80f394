"""Writing files safely: atomic writes, and the rule that genrec never deletes or replaces
anything it did not write.

Every command and function that writes output goes through this module:

* :func:`atomic_dir` / :func:`atomic_write_text` write under a temporary name beside the
  target and rename into place, so a crash never leaves a half-written result under the
  final name;
* :func:`prepare_output_dir` / :func:`check_output_file` run *before* a long job. They refuse
  an existing path that genrec did not write (a file where a folder should go, a folder with
  the user's files in it), ask for ``overwrite`` before replacing an earlier genrec output,
  and check that the location is writable, so that a run never fails (or destroys data) at
  its very end.

What counts as "written by genrec" is recognised from the files genrec puts there (an
artifact's ``config.json``, a run folder's ``results.json`` or ``suite.json``, a checkpoint's
``trainer.json``, a codebook's ``codebook.json``); an empty folder holds nothing to lose and is
always accepted.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from genrec.errors import GenrecError

OutputKind = Literal["artifact", "run", "checkpoint", "codebook", "ann"]


class OutputPathError(GenrecError, OSError):
    """An output location is unusable: it holds something genrec did not write, an earlier
    genrec output that may only be replaced with ``overwrite``, or it is not writable."""


# ---------------------------------------------------------------------- ownership
def _json_keys(path: Path) -> set[str] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return set(data) if isinstance(data, dict) else None


def _has_keys(path: Path, *keys: str) -> bool:
    found = _json_keys(path)
    return found is not None and all(k in found for k in keys)


#: the folder of a run's finished (model, seed) results while it runs (``--resume``)
PARTIAL_DIR = ".partial"


def has_partial_run(path: str | Path) -> bool:
    """True when the folder ``path`` holds the partial results of an interrupted genrec run:
    ``.partial/run.json`` (a benchmark) or ``.partial/<protocol>/run.json`` (a suite, one
    folder per protocol), each with ``partial_format``."""
    partial = Path(path) / PARTIAL_DIR
    return _has_keys(partial / "run.json", "partial_format") or any(
        _has_keys(q / "run.json", "partial_format")
        for q in partial.glob("*")
        if q.is_dir() and not q.is_symlink()
    )


def is_genrec_output(path: str | Path, kind: OutputKind) -> bool:
    """True when ``path`` is a folder that genrec wrote as an output of ``kind``.

    * ``artifact``: ``config.json`` with ``format_version`` and ``model`` (``Recommender.save``);
    * ``run``: ``results.json`` with ``schema_version`` (``genrec benchmark`` / ``report``),
      ``suite.json`` with ``suite`` (a suite run), or ``.partial/run.json`` (a benchmark
      that has not finished, see ``genrec benchmark --resume``; a suite keeps one per
      protocol, ``.partial/<protocol>/run.json``);
    * ``checkpoint``: ``trainer.json`` with ``format`` and ``epoch`` (the trainer's ``last/``);
    * ``codebook``: ``codebook.json`` with ``format_version`` and ``codebook_sizes``;
    * ``ann``: ``ann.json`` with ``kind`` and ``format_version`` (:class:`genrec.ann.ItemIndex`).
    """
    p = Path(path)
    if not p.is_dir():
        return False
    if kind == "artifact":
        return _has_keys(p / "config.json", "format_version", "model")
    if kind == "run":
        return (
            _has_keys(p / "results.json", "schema_version")
            or _has_keys(p / "suite.json", "suite")
            or has_partial_run(p)
        )
    if kind == "checkpoint":
        return _has_keys(p / "trainer.json", "format", "epoch")
    if kind == "codebook":
        return _has_keys(p / "codebook.json", "format_version", "codebook_sizes")
    if kind == "ann":
        return _has_keys(p / "ann.json", "kind", "format_version")
    raise ValueError(f"unknown output kind {kind!r}")


def _describe(path: Path) -> str:
    try:
        entries = sorted(e.name for e in path.iterdir())
    except OSError:
        return ""
    shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
    return f" (it holds {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}: {shown})"


def _is_empty_dir(path: Path) -> bool:
    try:
        return path.is_dir() and not any(path.iterdir())
    except OSError:
        return False


#: what genrec writes in the folders it replaces as a whole; anything else inside is the
#: user's, and such a folder is never replaced (an artifact lists its own in config.json)
_KNOWN_ENTRIES: dict[str, frozenset[str]] = {
    "artifact": frozenset(
        {"config.json", "ids.json", "items.json", "weights.safetensors", "cascade.json"}
        | {"sources", "ranker"}
    ),
    "checkpoint": frozenset({"state.safetensors", "trainer.json"}),
    "codebook": frozenset({"codebook.json", "codes.safetensors"}),
    "ann": frozenset({"index.faiss", "ann.json"}),
}


def _foreign_entries(path: Path, kind: OutputKind) -> list[str]:
    """Entries of a genrec ``kind`` folder that genrec did not write there."""
    known = set(_KNOWN_ENTRIES.get(kind, ()))
    if kind == "artifact":
        try:
            listed = json.loads((path / "config.json").read_text(encoding="utf-8")).get("files")
        except (OSError, ValueError, AttributeError):
            listed = None
        if isinstance(listed, list):
            known = {str(x) for x in listed} | {"config.json"}
    try:
        return sorted(e.name for e in path.iterdir() if e.name not in known)
    except OSError:
        return []


def _article(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"


def _check_existing(
    path: Path, kind: OutputKind, overwrite: bool, flag: str, resume: bool = False
) -> None:
    """Refuse ``path`` unless it is absent, an empty folder, or genrec's own ``kind`` output
    (which needs ``overwrite``, or ``resume`` where the caller continues it)."""
    if path.is_symlink():
        raise OutputPathError(
            f"output path {path} is a symbolic link; give the real path "
            f"({path.resolve()}) so that nothing is replaced behind the link"
        )
    if not path.exists():
        return
    if not path.is_dir():
        raise OutputPathError(
            f"output path {path} exists and is a file, not a genrec {kind} folder; genrec "
            "never replaces what it did not write: choose another path or move the file"
        )
    if _is_empty_dir(path):
        return
    if is_genrec_output(path, kind):
        if overwrite or resume:
            foreign = _foreign_entries(path, kind) if kind in _KNOWN_ENTRIES else []
            if foreign and overwrite:
                shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
                raise OutputPathError(
                    f"{path} holds {_article(kind)} {kind} written by genrec but also files it "
                    f"did not write ({shown}); replacing the folder would delete them: move "
                    "them out first"
                )
            return
        raise OutputPathError(
            f"{path} already holds {_article(kind)} {kind} written by genrec; pass {flag} to "
            "replace it, or choose another path"
        )
    raise OutputPathError(
        f"output folder {path} exists and is not {_article(kind)} {kind} written by genrec"
        f"{_describe(path)}; genrec never deletes or replaces what it did not write: choose "
        "a new or empty folder"
    )


def refuse_foreign(path: str | Path, kind: OutputKind) -> None:
    """Raise :class:`OutputPathError` unless ``path`` is absent, an empty folder or genrec's
    own output of ``kind`` (which the caller may then replace)."""
    _check_existing(Path(path), kind, overwrite=True, flag="overwrite")


def ensure_writable_dir(folder: str | Path) -> Path:
    """Create ``folder`` (and missing parents) and check that a file can be created in it."""
    _probe_writable(Path(folder), Path(folder))
    return Path(folder)


def _probe_writable(folder: Path, what: Path) -> None:
    """Create ``folder`` (and missing parents) and check that a file can be created in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".genrec-write-check-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputPathError(f"cannot write {what}: {reason} ({folder})") from exc


def prepare_output_dir(
    path: str | Path,
    kind: OutputKind,
    *,
    overwrite: bool = False,
    resume: bool = False,
    flag: str = "overwrite=True",
) -> Path:
    """Check an output folder before a long job writes it, and make sure it can be written.

    Args:
        path: the folder the job will write.
        kind: what it will hold (``artifact``, ``run``, ``checkpoint``, ``codebook``).
            An ``artifact`` or ``codebook`` replaces the folder as a whole (atomic swap), so
            its parent must be writable; a ``run`` or ``checkpoint`` folder is written into,
            so it is created now.
        overwrite: allow replacing an earlier genrec output of the same kind.
        resume: allow an earlier genrec output of the same kind that the job continues.
        flag: how the caller's surface spells ``overwrite`` (``--overwrite`` in the CLI), for
            the error message.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OutputPathError: ``path`` is a file, a folder genrec did not write, an earlier output
            without ``overwrite``, or not writable.
    """
    p = Path(path).expanduser()
    if str(path).strip() == "":
        raise OutputPathError("the output path is empty")
    _check_existing(p, kind, overwrite, flag, resume)
    if kind in ("artifact", "codebook", "ann"):
        _probe_writable(p.parent if str(p.parent) else Path("."), p)
    else:
        _probe_writable(p, p)
    return p


def check_output_file(
    path: str | Path,
    *,
    overwrite: bool = False,
    owned: Callable[[Path], bool] | None = None,
    flag: str = "overwrite=True",
) -> Path:
    """Check an output *file* before a job writes it.

    An existing file is replaced only when ``owned(path)`` says genrec wrote it and
    ``overwrite`` is set; a folder at that path is always refused. Missing parent folders are
    created and checked for writability.
    """
    p = Path(path).expanduser()
    if str(path).strip() == "":
        raise OutputPathError("the output path is empty")
    if p.is_symlink():
        raise OutputPathError(
            f"output file {p} is a symbolic link; give the real path ({p.resolve()})"
        )
    if p.is_dir():
        raise OutputPathError(f"output file {p} is an existing folder; give a file path")
    if p.exists() or p.is_symlink():
        if owned is None or not owned(p):
            raise OutputPathError(
                f"output file {p} exists and was not written by genrec; genrec never "
                "replaces what it did not write: choose another path"
            )
        if not overwrite:
            raise OutputPathError(f"{p} was written by genrec earlier; pass {flag} to replace it")
    _probe_writable(p.parent if str(p.parent) else Path("."), p)
    return p


# ---------------------------------------------------------------------- atomic writes
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_dir(path: str | Path, kind: OutputKind | None = None) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``path`` once the block succeeds.

    With ``kind``, an existing ``path`` is replaced only if it is empty or genrec's own output
    of that kind (checked again at the swap, so a folder that appeared during a long job is
    never deleted); without it the caller owns ``path`` (e.g. a checkpoint's ``last/``, checked
    by the caller).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
    old: Path | None = None
    try:
        yield tmp
        if kind is not None:
            _check_existing(path, kind, overwrite=True, flag="overwrite")
        if path.exists():
            # a fresh name (never an earlier run's leftover), then the swap
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            os.rmdir(old)
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        if old is not None and not path.exists():
            os.replace(old, path)  # the swap failed half-way: the previous output is back
            old = None
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically (temp file + rename), with the user's umask."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; reports are meant to be shared
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_file(path: str | Path, *, owned: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield a temporary file path beside ``path`` that replaces ``path`` once the block
    succeeds (for writers that need a file name, such as a Parquet writer); on an error the
    temporary file is removed and ``path`` is left as it was.

    An existing ``path`` is replaced only when ``owned(path)`` says genrec wrote it (checked
    again at the swap, so a file that appeared during a long job is never replaced); the
    caller checks ``overwrite`` beforehand (:func:`check_output_file`). The file gets the
    user's umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if path.is_dir() or (
            (path.exists() or path.is_symlink()) and (owned is None or not owned(path))
        ):
            raise OutputPathError(
                f"{path} appeared while genrec was writing it and was not written by genrec; "
                "it was left untouched"
            )
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def follow_umask(path: str | Path) -> None:
    """Give a file written by a library that creates it ``0600`` the user's umask."""
    os.chmod(path, 0o666 & ~_umask())


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and tuples recursively for ``json.dumps``."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj
