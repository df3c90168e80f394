"""Optional downloads into a local cache, with checksums and atomic zip extraction.

Nothing is downloaded unless a loader is called with ``download=True``. Files go to
``~/.cache/genrec/<dataset>/`` (override the root with the ``GENREC_CACHE_DIR`` environment
variable; ``GENREC_CACHE`` is its older name, see :func:`cache_dir`). A file is verified
against a known checksum when there is one; GroupLens publishes an ``.md5`` next to every
zip, which is fetched and checked. When no checksum is known, the
SHA-256 of the first download is written to a ``<file>.sha256`` sidecar and later downloads and
extractions are verified against it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from genrec.data.loaders.files import find_file
from genrec.errors import DatasetUnavailableError, DataValidationError
from genrec.paths import follow_umask

#: environment variable naming genrec's cache root (downloads, text embeddings)
CACHE_ENV = "GENREC_CACHE_DIR"
#: the older name of :data:`CACHE_ENV`, still read when ``GENREC_CACHE_DIR`` is not set
CACHE_ENV_ALIAS = "GENREC_CACHE"
DATA_ENV = "GENREC_DATA_DIR"
DEFAULT_TIMEOUT = 60.0
_CHUNK = 1 << 20
_USER_AGENT = "genrec (https://github.com/genrec)"


@dataclass(frozen=True)
class RemoteFile:
    """A downloadable file.

    Attributes:
        url: where to fetch it.
        filename: local file name (defaults to the last URL segment).
        sha256: expected SHA-256 hex digest, when known for certain.
        md5: expected MD5 hex digest, when known for certain.
        md5_url: URL of a published ``.md5`` file to fetch and check against.
    """

    url: str
    filename: str | None = None
    sha256: str | None = None
    md5: str | None = None
    md5_url: str | None = None

    @property
    def name(self) -> str:
        """Local file name."""
        return self.filename or self.url.rstrip("/").rsplit("/", 1)[-1]


def cache_dir() -> Path:
    """Root of genrec's cache (downloads under ``<root>/<dataset>``, text embeddings under
    ``<root>/text``): ``$GENREC_CACHE_DIR``, else ``$GENREC_CACHE`` (the older name), else
    ``~/.cache/genrec``."""
    env = os.environ.get(CACHE_ENV) or os.environ.get(CACHE_ENV_ALIAS)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "genrec"


def dataset_cache_dir(dataset: str) -> Path:
    """Cache folder of one dataset (``:`` in pattern names becomes ``-``)."""
    return cache_dir() / dataset.replace(":", "-").replace("/", "-")


def data_root_dir(dataset: str) -> Path | None:
    """``$GENREC_DATA_DIR/<dataset>`` when that environment variable is set and it exists."""
    env = os.environ.get(DATA_ENV)
    if not env:
        return None
    p = Path(env).expanduser() / dataset
    return p if p.is_dir() else None


def offline_error(remote: RemoteFile, dataset: str, reason: object) -> DatasetUnavailableError:
    """The error raised when a download fails: which file, why, and how to get it by hand."""
    return DatasetUnavailableError(
        f"{dataset}: could not download {remote.name!r} from {remote.url} ({reason}). "
        "This machine appears to be offline or the server is unreachable. Download the file "
        f"manually from {remote.url}"
        + (", unzip it" if remote.name.endswith(".zip") else "")
        + ", and pass the folder with data_dir=... (command line: --data-dir PATH)."
    )


def _hash_file(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _urlopen(url: str, timeout: float):  # noqa: ANN202 - file-like HTTP response
    req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    return urllib.request.urlopen(req, timeout=timeout)


def fetch_md5(url: str, *, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """The MD5 digest published at ``url`` (``"MD5 (f.zip) = <hex>"`` or ``"<hex>  f.zip"``).

    Returns ``None`` when the file cannot be fetched or holds no digest.
    """
    try:
        with _urlopen(url, timeout) as resp:
            text = resp.read(4096).decode("ascii", errors="replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    m = re.search(r"\b([0-9a-fA-F]{32})\b", text)
    return m.group(1).lower() if m else None


def download_file(
    remote: RemoteFile,
    dest_dir: Path,
    *,
    dataset: str,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Download ``remote`` into ``dest_dir`` (kept if already there) and verify it.

    Args:
        remote: what to fetch.
        dest_dir: target folder (created).
        dataset: dataset name used in messages.
        timeout: socket timeout in seconds.
        progress: optional ``callback(bytes_done, total_or_None)``.

    Returns:
        Path of the verified file.

    Raises:
        DatasetUnavailableError: when the download fails (offline, HTTP error, timeout);
            the message names the file and URL and says how to fetch it by hand.
        DataValidationError: when the checksum does not match.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / remote.name
    if dest.is_file():
        return dest
    md5 = remote.md5
    if md5 is None and remote.md5_url:
        md5 = fetch_md5(remote.md5_url, timeout=timeout)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{remote.name}.", suffix=".part", dir=dest_dir)
    tmp = Path(tmp_name)
    try:
        sha = hashlib.sha256()
        md = hashlib.md5()
        with os.fdopen(fd, "wb") as out:
            try:
                with _urlopen(remote.url, timeout) as resp:
                    total = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
                    total_n = int(total) if total and str(total).isdigit() else None
                    done = 0
                    while True:
                        chunk = resp.read(_CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                        sha.update(chunk)
                        md.update(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total_n)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise offline_error(remote, dataset, reason) from exc
            except OSError as exc:
                raise offline_error(remote, dataset, exc) from exc
        if total_n is not None and done != total_n:
            raise offline_error(remote, dataset, f"truncated: got {done} of {total_n} bytes")
        _verify(remote, sha.hexdigest(), md.hexdigest(), md5, dest)
        follow_umask(tmp)  # mkstemp makes 0600; a shared cache should follow the umask
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def _verify(remote: RemoteFile, sha256: str, md5: str, want_md5: str | None, dest: Path) -> None:
    sidecar = dest.with_name(dest.name + ".sha256")
    checks: list[tuple[str, str, str]] = []
    if remote.sha256:
        checks.append(("SHA-256", remote.sha256.lower(), sha256))
    if want_md5:
        checks.append(("MD5", want_md5.lower(), md5))
    if not checks and sidecar.is_file():
        recorded = sidecar.read_text().split()[0].lower() if sidecar.read_text().strip() else ""
        if recorded:
            checks.append(("SHA-256 (recorded at first download)", recorded, sha256))
    for label, want, got in checks:
        if want != got:
            raise DataValidationError(
                f"checksum mismatch for {remote.name!r} from {remote.url}: {label} is {got}, "
                f"expected {want}. The download is corrupt or the file changed upstream; "
                f"delete {sidecar} if you trust the new file, then retry."
            )
    sidecar.write_text(f"{sha256}  {remote.name}\n")


def verify_cached(path: Path) -> None:
    """Check ``path`` against its ``.sha256`` sidecar (no-op without one).

    Raises:
        DataValidationError: on mismatch (the file was modified or truncated).
    """
    sidecar = path.with_name(path.name + ".sha256")
    if not sidecar.is_file():
        return
    recorded = sidecar.read_text().split()
    if recorded and _hash_file(path, "sha256") != recorded[0].lower():
        raise DataValidationError(
            f"{path} does not match the SHA-256 recorded when it was downloaded "
            f"({sidecar}); delete both and download again"
        )


def extract_zip(archive: Path, dest: Path) -> Path:
    """Extract ``archive`` into ``dest`` atomically (temp folder, then rename).

    Members with absolute paths or ``..`` are refused. When ``dest`` already exists it is
    returned unchanged.

    Raises:
        DataValidationError: when the archive is corrupt or unsafe.
    """
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                base = tmp.resolve()
                for member in zf.namelist():
                    target = (base / member).resolve()
                    if target != base and not target.is_relative_to(base):
                        raise DataValidationError(f"{archive}: unsafe member path {member!r}")
                bad = zf.testzip()
                if bad is not None:
                    raise DataValidationError(f"{archive}: member {bad!r} is corrupt")
                zf.extractall(tmp)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise DataValidationError(
                f"{archive} is not a valid zip archive ({exc}); delete it and download again"
            ) from exc
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():  # somebody else did not win the race: a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def fetch(
    dataset: str,
    remotes: Sequence[RemoteFile],
    *,
    dest_dir: Path | None = None,
    extract: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Download (and optionally unzip) a dataset's files; return the folder holding them.

    Args:
        dataset: dataset name (its cache folder is ``cache_dir() / dataset``).
        remotes: files to fetch.
        dest_dir: where to put them instead of the cache.
        extract: unzip ``.zip`` files into ``<dest_dir>/extracted``.
        timeout: socket timeout in seconds.
    """
    root = dest_dir if dest_dir is not None else dataset_cache_dir(dataset)
    for remote in remotes:
        path = download_file(remote, root, dataset=dataset, timeout=timeout)
        if extract and path.suffix == ".zip":
            target = root / "extracted"
            if not target.is_dir():
                verify_cached(path)
            extract_zip(path, target)
    return root / "extracted" if extract else root


def resolve_source(
    dataset: str,
    *,
    data_dir: str | os.PathLike[str] | None,
    download: bool,
    key_files: Sequence[str],
    remotes: Sequence[RemoteFile] = (),
    extract: bool = False,
    manual_hint: str = "",
    folders: Sequence[str] = (),
) -> Path:
    """Folder holding a dataset's files: ``data_dir``, ``$GENREC_DATA_DIR/<dataset>``, the
    cache, or a fresh download (only with ``download=True``).

    Args:
        dataset: dataset name.
        data_dir: folder given by the user (searched with its subfolders), or ``None``.
        download: whether fetching ``remotes`` is allowed.
        key_files: alternatives for the file that must exist (the first is named in errors).
        remotes: files to download; empty when the dataset cannot be downloaded.
        extract: whether the remotes are zips to unpack.
        manual_hint: how to obtain the files by hand (appended to errors).
        folders: subfolder names of ``data_dir`` that may hold the files (e.g. ``ml-100k``,
            the folder a zip unpacks to); ``<dataset>`` itself is always tried.

    Raises:
        DatasetUnavailableError: the files are not there and were not (or could not be)
            downloaded; the message names the missing file and the ``data_dir`` option.
    """
    wanted = " or ".join(repr(n) for n in key_files)
    # plain sentences: where to point genrec, then how to get the files
    how = (
        f"Or pass download=True (command line: --download) to fetch it from {remotes[0].url}."
        if remotes
        else "There is no automatic download for this dataset."
    )
    if manual_hint:
        how += f" {_sentence(manual_hint)}"
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        subs = tuple(dict.fromkeys((*folders, dataset)))
        found = locate(root, key_files, subs)
        if found is not None:
            return found
        if download and remotes:
            fetched = fetch(dataset, remotes, dest_dir=root, extract=extract)
            found = locate(fetched, key_files, (), depth=2)
            if found is not None:
                return found
            raise DataValidationError(f"{dataset}: downloaded files do not contain {wanted}")
        raise DatasetUnavailableError(
            f"{dataset}: the required file {wanted} is not in data_dir={str(root)!r} nor in "
            f"its subfolder(s) {', '.join(subs)}. Point data_dir (command line: --data-dir) "
            f"at the folder that holds it. {how}"
        )
    for root in (data_root_dir(dataset), dataset_cache_dir(dataset)):
        found = locate(root, key_files, (), depth=2) if root is not None else None
        if found is not None:
            return found
    if download:
        if not remotes:
            raise DatasetUnavailableError(
                f"{dataset}: {wanted} is not available locally, and there is no automatic "
                f"download for this dataset. Pass data_dir=... (command line: --data-dir PATH) "
                f"pointing at a folder with the files."
                + (f" {_sentence(manual_hint)}" if manual_hint else "")
            )
        fetched = fetch(dataset, remotes, extract=extract)
        found = locate(fetched, key_files, (), depth=2)
        if found is None:
            raise DataValidationError(f"{dataset}: downloaded files do not contain {wanted}")
        return found
    raise DatasetUnavailableError(
        f"{dataset}: the required file {wanted} was not found locally (genrec looked in the "
        f"cache {str(dataset_cache_dir(dataset))!r}"
        + (f" and ${DATA_ENV}/{dataset}" if os.environ.get(DATA_ENV) else "")
        + "). Pass data_dir=... (command line: --data-dir PATH) pointing at the folder that "
        f"holds it. {how}"
    )


def _sentence(text: str) -> str:
    """``text`` as a sentence: a capital first letter and a full stop at the end."""
    text = text.strip().rstrip(";,")
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?", ")")) else text + "."


def locate(
    root: Path, key_files: Sequence[str], folders: Sequence[str], *, depth: int = 0
) -> Path | None:
    """Folder holding one of ``key_files``: ``root`` (searched ``depth`` levels deep), or one
    of ``root/<folder>`` (and their direct subfolders)."""

    if not root.is_dir():
        return None
    hit = find_file(root, key_files, depth=depth)
    if hit is None:
        for folder in folders:
            sub = root / folder
            if sub.is_dir():
                hit = find_file(sub, key_files, depth=1)
                if hit is not None:
                    break
    return hit.parent if hit is not None else None


def is_available(dataset: str, key_files: Sequence[str]) -> bool:
    """Whether the dataset loads without a network (in the cache or ``$GENREC_DATA_DIR``)."""
    return any(
        root is not None and locate(root, key_files, (), depth=2) is not None
        for root in (data_root_dir(dataset), dataset_cache_dir(dataset))
    )
