"""HTTP serving and the web demo (extra ``serve``: ``pip install 'genrec[serve]'``).

    from genrec.serve import create_app, run
    app = create_app(["artifacts/ease", "artifacts/sasrec"])
    run(["artifacts/ease"], host="127.0.0.1", port=8000)      # blocking, uvicorn

Importing this package needs nothing extra; the names below import FastAPI (and ``run``
uvicorn) on first use and raise an ``ImportError`` naming the extra when it is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["ItemCatalog", "MicroBatcher", "create_app", "load_models", "run"]


def run(
    artifacts: Sequence[str | Path],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    dataset: str | None = None,
    data_dir: str | None = None,
    micro_batch: bool = True,
    threads: int | None = 1,
    log_level: str = "info",
) -> None:
    """Load ``artifacts`` and serve them with uvicorn until interrupted.

    Args:
        artifacts: artifact directories written by ``model.save`` / ``genrec train``.
        host, port: where to listen (the default binds to localhost only).
        dataset, data_dir: optional dataset whose item table adds genres/categories and
            years to the titles stored in the artifacts.
        micro_batch: batch concurrent single-user requests into one model call.
        threads: torch intra-op threads (``None``: torch's default). One thread per model
            call is fastest for the small, concurrent calls of a server on shared cores;
            raise it for large neural models on an otherwise idle machine.
        log_level: uvicorn log level.
    """
    from genrec.errors import require_extra

    uvicorn = require_extra("uvicorn", "serve")
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    from genrec.serve.app import create_app, load_item_table

    items = load_item_table(dataset, data_dir) if dataset else None
    app = create_app(list(artifacts), items, micro_batch=micro_batch)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def __getattr__(name: str) -> Any:
    if name in ("ItemCatalog", "MicroBatcher", "create_app", "load_models"):
        from genrec.serve import app

        return getattr(app, name)
    raise AttributeError(f"module 'genrec.serve' has no attribute {name!r}")
