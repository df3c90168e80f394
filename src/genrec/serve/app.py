"""FastAPI app over saved artifacts: the same ``recommend()`` the evaluator calls.

Nothing here is model-specific: every model is loaded with :func:`genrec.load` and queried
through :meth:`~genrec.core.recommender.Recommender.recommend` (known users) or
:meth:`~genrec.core.recommender.Recommender.recommend_for_history` (ad-hoc histories, similar
items). Requests for single users are micro-batched: while the model is busy, concurrent
requests queue up and the next model call serves all of them at once.

    from genrec.serve import create_app
    app = create_app(["artifacts/ease", "artifacts/sasrec"])   # uvicorn.run(app)
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genrec import columns as C
from genrec.core.recommender import Recommendations, Recommender
from genrec.errors import (
    ConfigError,
    DataValidationError,
    GenrecError,
    UnknownIdError,
    UnknownNameError,
    require_extra,
    suggest,
)

require_extra("fastapi", "serve")

from fastapi import FastAPI, Query, Request  # noqa: E402
from fastapi.concurrency import run_in_threadpool  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import FileResponse, JSONResponse  # noqa: E402
from fastapi.staticfiles import StaticFiles  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402

from genrec._version import __version__  # noqa: E402
from genrec.data.loaders import load_dataset  # noqa: E402
from genrec.data.loaders.files import split_genres  # noqa: E402
from genrec.io import load_model  # noqa: E402
from genrec.serve import schemas as S  # noqa: E402

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: request bodies larger than this are refused with 413 before parsing
MAX_BODY_BYTES = 4 * 1024 * 1024
#: longest text attribute returned by ``GET /items/{id}``
MAX_ATTRIBUTE_CHARS = 2000

__all__ = ["ItemCatalog", "MicroBatcher", "ServedModel", "create_app", "load_models"]


# ---------------------------------------------------------------------- loading
@dataclass
class ServedModel:
    """A loaded model under its public name."""

    name: str
    model: Recommender
    path: str | None = None
    #: serialises calls into the model (models need not be thread-safe)
    lock: threading.Lock = field(default_factory=threading.Lock)
    batcher: MicroBatcher | None = None
    #: ``str(external user id) -> internal id``: a fast path for validating request users
    user_index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model.user_map is not None and not self.user_index:
            ids = self.model.user_map.external_ids
            self.user_index = {_key(u): i for i, u in enumerate(ids, start=1)}

    def internal_user(self, user: Any, *, missing: str = "raise") -> int:
        """Internal id of an external user id (0 when unknown and ``missing="zero"``)."""
        internal = self.user_index.get(_key(user))
        if internal is None:  # the id map decides (and words the error)
            user_map = self.model.user_map
            assert user_map is not None
            internal = int(user_map.to_internal([user], missing=missing, what="user")[0])
        return internal


def load_models(paths: Sequence[str | Path]) -> dict[str, ServedModel]:
    """Load artifacts with :func:`genrec.load` and name them.

    A model is named after its type (``config.json`` ``"model"``, e.g. ``"ease"``). When
    several artifacts hold the same type, each of them is named after its directory instead
    (with ``-2``, ``-3`` ... if directory names collide too).

    Raises:
        ArtifactError: a path is not a readable artifact.
        ConfigError: no paths.
    """

    if not paths:
        raise ConfigError("serve needs at least one artifact directory")
    loaded = [(Path(p), load_model(p)) for p in paths]
    types = [m.name for _, m in loaded]
    out: dict[str, ServedModel] = {}
    for path, model in loaded:
        base = model.name if types.count(model.name) == 1 else path.resolve().name
        name, n = base, 1
        while name in out:
            n += 1
            name = f"{base}-{n}"
        out[name] = ServedModel(name, model, str(path))
    return out


def load_item_table(dataset: str, data_dir: str | None = None) -> pd.DataFrame | None:
    """The item table (``title``, ``genres``, ``year`` ...) of a named dataset, for display."""

    return load_dataset(dataset, data_dir=data_dir).items


# ---------------------------------------------------------------------- item metadata
def _py(value: Any) -> Any:
    """A JSON-friendly Python value (numpy scalars unwrapped, NaN/NA -> None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_py(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _py(v) for k, v in value.items()}
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str) and len(value) > MAX_ATTRIBUTE_CHARS:
        return value[:MAX_ATTRIBUTE_CHARS] + "..."
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _key(value: Any) -> str:
    """Lookup key of an external id: ``42``, ``np.int64(42)`` and ``"42"`` are the same."""
    return str(value.item() if isinstance(value, np.generic) else value)


class ItemCatalog:
    """Display metadata of every item the served models know.

    Titles come from the artifacts (``items.json``); genres/categories, years and any other
    column come from an optional item table (``genrec serve --dataset``).

    Args:
        models: served models by name.
        items: optional item table keyed by ``item_id``.
    """

    def __init__(self, models: Mapping[str, ServedModel], items: pd.DataFrame | None = None):

        table: dict[str, dict[str, Any]] = {}
        if items is not None and C.ITEM in items.columns:
            other = [c for c in items.columns if c not in (C.ITEM, C.TITLE, C.GENRES, C.YEAR)]
            for row in items.to_dict("records"):
                genres = split_genres(row.get(C.GENRES)) if C.GENRES in row else None
                year = _py(row.get(C.YEAR))
                table[_key(row[C.ITEM])] = {
                    "title": _py(row.get(C.TITLE)),
                    "genres": genres or None,
                    "year": int(year) if isinstance(year, (int, float)) else None,
                    "attributes": {c: _py(row.get(c)) for c in other},
                }
        self._meta: dict[str, list[dict[str, Any]]] = {}
        self._details: dict[str, dict[str, Any]] = {}
        for name, served in models.items():
            model = served.model
            ext = [_py(v) for v in model.item_map.external_ids]  # type: ignore[union-attr]
            titles = model.item_titles_
            pop = model.item_popularity_
            meta: list[dict[str, Any]] = [{"item_id": None, "title": None}]
            for i, item_id in enumerate(ext, start=1):
                key = _key(item_id)
                extra = table.get(key, {})
                title = (str(titles[i]) if titles is not None else "") or extra.get("title")
                entry = {
                    "item_id": item_id,
                    "title": title or None,
                    "genres": extra.get("genres"),
                    "year": extra.get("year"),
                }
                meta.append(entry)
                popularity = int(pop[i]) if pop is not None else 0
                detail = self._details.get(key)
                if detail is None:
                    self._details[key] = {
                        **entry,
                        "popularity": popularity,
                        "models": [name],
                        "attributes": extra.get("attributes", {}),
                    }
                else:
                    detail["models"].append(name)
                    detail["popularity"] = max(detail["popularity"], popularity)
                    detail["title"] = detail["title"] or entry["title"]
            self._meta[name] = meta
        # search index: lower-case titles, most popular first (the autocomplete's order)
        order = sorted(self._details, key=lambda k: -self._details[k]["popularity"])
        self._search_keys = order
        self._search_titles = [(self._details[k]["title"] or "").lower() for k in order]

    def row(self, model: str, internal_id: int) -> dict[str, Any]:
        """Metadata of internal item ``internal_id`` of ``model`` (a fresh dict)."""
        return dict(self._meta[model][internal_id])

    def get(self, item_id: Any) -> dict[str, Any]:
        """Details of an external item id; :class:`UnknownIdError` when no model knows it."""
        detail = self._details.get(_key(item_id))
        if detail is None:
            raise UnknownIdError(
                f"unknown item id {item_id!r} (not in any of the served models' "
                f"{len(self._details)} items)"
            )
        return detail

    def search(self, query: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """Items whose title contains ``query`` (case-insensitive) or whose id equals it.

        Titles that start with the query come first, then by popularity.
        """
        q = query.strip().lower()
        if not q:
            return 0, []
        hits = [i for i, t in enumerate(self._search_titles) if q in t]
        exact = self._details.get(query.strip())
        prefix = [i for i in hits if self._search_titles[i].startswith(q)]
        rest = [i for i in hits if not self._search_titles[i].startswith(q)]
        keys = [self._search_keys[i] for i in prefix + rest]
        if exact is not None:
            keys = [query.strip()] + [k for k in keys if k != query.strip()]
        return len(keys), [self._details[k] for k in keys[:limit]]


# ---------------------------------------------------------------------- micro-batching
@dataclass
class _Job:
    user: Any
    k: int
    exclude_seen: bool
    future: asyncio.Future


class MicroBatcher:
    """Serves single-user requests of one model in batches, from the event loop.

    Requests wait in a list; whenever the model is idle, everything waiting (up to
    ``max_batch``) is grouped by ``(k, exclude_seen)`` and each group is answered by one
    ``model.recommend`` call in a worker thread. An idle server adds no waiting; a busy one
    amortises the per-call overhead over the batch, and there is one thread hand-off per
    batch instead of one per request. Users must be validated first (unknown users get the
    popularity fallback here).

    Args:
        served: the model and its lock.
        max_batch: most users per model call.
    """

    def __init__(self, served: ServedModel, max_batch: int = 64):
        self.served = served
        self.max_batch = max_batch
        self._pending: list[_Job] = []
        self._running = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"genrec-{served.name}")
        #: model calls made and users served (for tests and monitoring)
        self.calls = 0
        self.users = 0

    async def recommend(self, user: Any, k: int, exclude_seen: bool) -> tuple[Recommendations, int]:
        """Top-``k`` for one user: ``(Recommendations of its batch, row of this user)``."""
        loop = asyncio.get_running_loop()
        job = _Job(user, k, exclude_seen, loop.create_future())
        self._pending.append(job)
        if not self._running:
            self._running = True
            loop.create_task(self._drain())  # runs after the requests already read queue up
        return await job.future

    def close(self) -> None:
        """Stop the worker thread."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                jobs = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                groups: dict[tuple[int, bool], list[_Job]] = {}
                for j in jobs:
                    groups.setdefault((j.k, j.exclude_seen), []).append(j)
                for (k, exclude_seen), group in groups.items():
                    users = np.empty(len(group), dtype=object)
                    users[:] = [j.user for j in group]
                    try:
                        recs = await loop.run_in_executor(
                            self._executor, self._call, users, k, exclude_seen
                        )
                    except Exception as exc:  # hand every error to the waiting requests
                        for j in group:
                            if not j.future.done():
                                j.future.set_exception(exc)
                        continue
                    self.calls += 1
                    self.users += len(group)
                    for row, j in enumerate(group):
                        if not j.future.done():  # the client may have gone away
                            j.future.set_result((recs, row))
        finally:
            self._running = False

    def _call(self, users: np.ndarray, k: int, exclude_seen: bool) -> Recommendations:
        with self.served.lock:
            return self.served.model.recommend(
                users, k=k, exclude_seen=exclude_seen, on_unknown="popular"
            )


# ---------------------------------------------------------------------- the app
def _error(status: int, kind: str, detail: str, errors: list[dict] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": kind, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(status_code=status, content=body)


def _loc(loc: Sequence[Any]) -> str:
    return ".".join(str(p) for p in loc) or "request"


def _add_error_handlers(app: FastAPI) -> None:
    """The error contract: every bad request is a 4xx JSON ``{"error", "detail"}``."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""), "type": e["type"]}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{_loc(e['loc'])}: {e['msg']}" for e in errors)
        if any(e["type"] == "json_invalid" for e in errors):
            return _error(400, "malformed_json", f"request body is not valid JSON ({detail})")
        return _error(422, "validation_error", detail or "invalid request", errors)

    @app.exception_handler(UnknownIdError)
    async def _unknown_id(request: Request, exc: UnknownIdError) -> JSONResponse:
        return _error(404, "unknown_id", str(exc))

    @app.exception_handler(UnknownNameError)
    async def _unknown_name(request: Request, exc: UnknownNameError) -> JSONResponse:
        return _error(404, "unknown_model", str(exc))

    @app.exception_handler(ConfigError)
    async def _config(request: Request, exc: ConfigError) -> JSONResponse:
        return _error(422, "invalid_value", str(exc))

    @app.exception_handler(DataValidationError)
    async def _data(request: Request, exc: DataValidationError) -> JSONResponse:
        return _error(422, "invalid_data", str(exc))

    @app.exception_handler(GenrecError)
    async def _genrec(request: Request, exc: GenrecError) -> JSONResponse:
        return _error(400, "bad_request", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status_code, "http_error"
        )
        return _error(exc.status_code, kind, str(exc.detail))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover
        return _error(500, "internal_error", f"{type(exc).__name__}: {exc}")


def docs_assets_dir() -> Path | None:
    """Folder of the Swagger UI and ReDoc files shipped by the ``fastapi-offline`` package
    (extra ``serve``), or ``None`` when it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "static"
    wanted = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js")
    return folder if all((folder / name).is_file() for name in wanted) else None


_DOCS_FALLBACK = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>genrec API</title>
<link rel="stylesheet" href="{root}/static/style.css"></head>
<body><main style="max-width: 720px; margin: 2em auto; font-family: sans-serif">
<h1>genrec API</h1>
<p>The interactive API documentation needs the Swagger UI files of the
<code>fastapi-offline</code> package, which is not installed:
<code>pip install 'genrec[serve]'</code>.</p>
<p>Meanwhile: the OpenAPI schema at <a href="{root}/openapi.json">/openapi.json</a> and the
web demo at <a href="{root}/">/</a>.</p></main></body></html>
"""


#: The docs pages may load nothing from another host: ReDoc's bundle, for one, would fetch its
#: vendor's logo from a CDN; the browser blocks it before any request leaves.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:"
)


def _add_docs_routes(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` served from local files, so both work without
    internet (FastAPI's defaults load them from a CDN); without ``fastapi-offline`` ``/docs``
    is a page linking the schema and the web demo."""
    from fastapi.openapi.docs import (
        get_redoc_html,
        get_swagger_ui_html,
        get_swagger_ui_oauth2_redirect_html,
    )
    from fastapi.responses import HTMLResponse

    assets = docs_assets_dir()
    title = f"{app.title} API"
    if assets is None:

        @app.get("/docs", include_in_schema=False)
        def docs_fallback(request: Request) -> HTMLResponse:
            root = request.scope.get("root_path", "")
            return HTMLResponse(_DOCS_FALLBACK.format(root=root))

        return
    app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")
    redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=title,
            oauth2_redirect_url=f"{root}{redirect}",
            swagger_js_url=f"{root}/docs-assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs-assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs-assets/favicon.png",
            # no request to the online validator (swagger.io) from the page
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    @app.get(redirect, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{title} (ReDoc)",
            redoc_js_url=f"{root}/docs-assets/redoc.standalone.js",
            redoc_favicon_url=f"{root}/docs-assets/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page


def create_app(
    models: Sequence[str | Path] | Mapping[str, Recommender],
    items: pd.DataFrame | None = None,
    *,
    micro_batch: bool = True,
    max_batch: int = 64,
) -> FastAPI:
    """Build the FastAPI app.

    Args:
        models: artifact directories (named by :func:`load_models`) or fitted models by name.
        items: optional item table (``item_id``, ``title``, ``genres``, ``year`` ...) for
            display, e.g. ``genrec.load_dataset("movielens-small").items``.
        micro_batch: batch concurrent single-user requests into one model call.
        max_batch: most users per micro-batched call.

    Returns:
        The app: JSON endpoints, OpenAPI docs at ``/docs`` and the web demo at ``/``.
    """
    if isinstance(models, Mapping):
        served = {name: ServedModel(name, m) for name, m in models.items()}
    else:
        served = load_models(list(models))
    if not served:
        raise ConfigError("serve needs at least one model")
    for name, s in served.items():
        if not s.model.is_fitted:
            raise ConfigError(f"model {name!r} is not fitted")
    catalog = ItemCatalog(served, items)
    if micro_batch:
        for s in served.values():
            s.batcher = MicroBatcher(s, max_batch=max_batch)

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        yield
        for s in served.values():
            if s.batcher is not None:
                s.batcher.close()

    app = FastAPI(
        title="genrec",
        version=__version__,
        description="Recommendations from genrec artifacts. Errors are JSON "
        '`{"error": kind, "detail": message}` with a 4xx status.',
        lifespan=lifespan,
        docs_url=None,  # served from local files by _add_docs_routes (no CDN)
        redoc_url=None,
        responses={
            404: {"model": S.ErrorResponse, "description": "unknown model, user or item"},
            422: {"model": S.ErrorResponse, "description": "invalid request"},
        },
    )
    app.state.models = served
    app.state.catalog = catalog
    _add_error_handlers(app)
    _add_docs_routes(app)

    @app.middleware("http")
    async def _limit_body(request: Request, call_next: Callable) -> Any:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > MAX_BODY_BYTES:
            return _error(413, "too_large", f"request body over {MAX_BODY_BYTES} bytes")
        return await call_next(request)

    # -------------------------------------------------------------- helpers
    def get_served(name: str | None) -> ServedModel:
        if name is None:
            if len(served) == 1:
                return next(iter(served.values()))
            raise ConfigError(
                f"several models are served ({', '.join(served)}): name one with 'model'"
            )
        if name not in served:
            raise UnknownNameError(
                f"unknown model {name!r}; served: {', '.join(served)}.{suggest(name, served)}"
            )
        return served[name]

    def ranked(s: ServedModel, recs: Recommendations, row: int) -> list[dict[str, Any]]:
        out = []
        for rank, (i, score) in enumerate(
            zip(recs.internal_item_ids[row].tolist(), recs.scores[row].tolist()), start=1
        ):
            if i == 0 or not math.isfinite(score):
                break
            entry = catalog.row(s.name, i)
            entry["score"] = score
            entry["rank"] = rank
            out.append(entry)
        return out

    def call(s: ServedModel, fn: Callable[[], Recommendations]) -> Recommendations:
        with s.lock:
            return fn()

    def check_users(s: ServedModel, users: list[Any], on_unknown: str) -> None:
        if on_unknown == "raise" and not all(_key(u) in s.user_index for u in users):
            try:
                s.model.user_map.to_internal(users, what="user")  # type: ignore[union-attr]
            except UnknownIdError as exc:  # the hint this surface takes: a JSON field
                raise UnknownIdError(
                    f'{exc}; send "on_unknown": "popular" to get the most popular items instead'
                ) from exc

    def history_length(s: ServedModel, user: Any) -> int:
        internal = s.internal_user(user, missing="zero")
        hist = s.model.train_histories_
        if internal == 0 or hist is None:
            return 0
        return int(hist.seq_indptr[internal + 1] - hist.seq_indptr[internal])

    # -------------------------------------------------------------- endpoints
    @app.get("/health", response_model=S.Health, tags=["meta"])
    def health() -> dict[str, Any]:
        """Liveness and the served model names."""
        return {"status": "ok", "models": list(served)}

    @app.get("/models", response_model=list[S.ModelInfo], tags=["meta"])
    def list_served() -> list[dict[str, Any]]:
        """Served models: name to use in requests, type, sizes and config."""
        return [
            {
                "name": name,
                "model": s.model.name,
                "model_class": type(s.model).__name__,
                "path": s.path,
                "n_users": s.model.user_map.size,  # type: ignore[union-attr]
                "n_items": s.model.item_map.size,  # type: ignore[union-attr]
                "config": _py(s.model.config.to_dict()),
                "training": _py(getattr(s.model, "training_info_", None)),
            }
            for name, s in served.items()
        ]

    @app.post("/recommend", response_model=S.RecommendResponse, tags=["recommend"])
    async def recommend(req: S.RecommendRequest) -> dict[str, Any]:
        """Top-k for one known user (``user_id``) or an ad-hoc ``history`` of item ids."""
        s = get_served(req.model)
        if req.user_id is not None:
            user = req.user_id
            check_users(s, [user], req.on_unknown)
            if s.batcher is not None and req.candidates is None:
                recs, row = await s.batcher.recommend(user, req.k, req.exclude_seen)
            else:
                recs, row = (
                    await run_in_threadpool(
                        call,
                        s,
                        lambda: s.model.recommend(
                            [user],
                            k=req.k,
                            exclude_seen=req.exclude_seen,
                            candidates=req.candidates,
                            on_unknown=req.on_unknown,
                        ),
                    ),
                    0,
                )
            n_hist = history_length(s, user)
        else:
            history = req.history or []
            recs = await run_in_threadpool(
                call,
                s,
                lambda: s.model.recommend_for_history(
                    [history], k=req.k, exclude_seen=req.exclude_seen, candidates=req.candidates
                ),
            )
            row, user, n_hist = 0, None, len(history)
        return {
            "model": s.name,
            "user_id": user,
            "history_length": n_hist,
            "k": req.k,
            "items": ranked(s, recs, row),
        }

    @app.post("/recommend/batch", response_model=S.BatchRecommendResponse, tags=["recommend"])
    def recommend_batch(req: S.BatchRecommendRequest) -> dict[str, Any]:
        """Top-k for many users or histories with ONE model call (results in request order)."""
        s = get_served(req.model)
        if req.user_ids is not None:
            users = list(req.user_ids)
            check_users(s, users, req.on_unknown)
            arr = np.empty(len(users), dtype=object)
            arr[:] = users
            recs = call(
                s,
                lambda: s.model.recommend(
                    arr,
                    k=req.k,
                    exclude_seen=req.exclude_seen,
                    candidates=req.candidates,
                    on_unknown=req.on_unknown,
                ),
            )
            lengths = [history_length(s, u) for u in users]
            ids: list[Any] = users
        else:
            histories = [list(h) for h in req.histories or []]
            recs = call(
                s,
                lambda: s.model.recommend_for_history(
                    histories, k=req.k, exclude_seen=req.exclude_seen, candidates=req.candidates
                ),
            )
            lengths = [len(h) for h in histories]
            ids = [None] * len(histories)
        results = [
            {
                "model": s.name,
                "user_id": u,
                "history_length": n,
                "k": req.k,
                "items": ranked(s, recs, r),
            }
            for r, (u, n) in enumerate(zip(ids, lengths))
        ]
        return {"model": s.name, "k": req.k, "results": results}

    @app.post("/similar", response_model=S.SimilarResponse, tags=["recommend"])
    def similar(req: S.SimilarRequest) -> dict[str, Any]:
        """Items to show next to ``item_id``: the model's top-k for the one-item history."""
        s = get_served(req.model)
        recs = call(
            s,
            lambda: s.model.recommend_for_history(
                [[req.item_id]], k=req.k, exclude_seen=True, candidates=req.candidates
            ),
        )
        item_map = s.model.item_map
        assert item_map is not None
        item = catalog.row(s.name, int(item_map.to_internal([req.item_id], what="item")[0]))
        return {"model": s.name, "item": item, "k": req.k, "items": ranked(s, recs, 0)}

    @app.get("/items", response_model=S.ItemSearchResponse, tags=["items"])
    def search_items(
        query: str = Query(..., min_length=1, max_length=200, description="part of a title"),
        limit: int = Query(10, ge=1, le=100),
    ) -> dict[str, Any]:
        """Title search (case-insensitive substring; an exact id matches too), for
        autocomplete. Titles starting with the query come first, then popular items."""
        total, found = catalog.search(query, limit)
        return {"query": query, "total": total, "items": found}

    @app.get("/items/{item_id}", response_model=S.ItemDetail, tags=["items"])
    def get_item(item_id: str) -> dict[str, Any]:
        """Metadata of one item: title, genres/categories, year, popularity, other columns."""
        return catalog.get(item_id)

    @app.get("/users", response_model=S.UserList, tags=["users"])
    def list_users(
        model: str | None = Query(None, description="model name; optional with one model"),
        offset: int = Query(0, ge=0),
        limit: int = Query(100, ge=1, le=10_000),
    ) -> dict[str, Any]:
        """A page of known user ids (for the demo's user picker)."""
        s = get_served(model)
        ids = s.model.user_map.external_ids  # type: ignore[union-attr]
        return {
            "model": s.name,
            "total": len(ids),
            "user_ids": [_py(u) for u in ids[offset : offset + limit]],
        }

    @app.get("/users/{user_id}/history", response_model=S.UserHistoryOut, tags=["users"])
    def user_history(
        user_id: str,
        model: str | None = Query(None, description="model name; optional with one model"),
        limit: int = Query(50, ge=1, le=S.MAX_HISTORY),
    ) -> dict[str, Any]:
        """A known user's training history as the model sees it (the last ``limit`` items)."""
        s = get_served(model)
        internal = s.internal_user(user_id)
        hist = s.model.train_histories_
        assert hist is not None
        seq = hist.seq_items[hist.seq_indptr[internal] : hist.seq_indptr[internal + 1]]
        return {
            "model": s.name,
            "user_id": _py(s.model.user_map.external_ids[internal - 1]),  # type: ignore[union-attr]
            "n_interactions": len(seq),
            "items": [catalog.row(s.name, int(i)) for i in seq[-limit:]],
        }

    # -------------------------------------------------------------- web demo
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        page = STATIC_DIR / "index.html"
        if not page.is_file():  # e.g. a wheel built without the package data
            raise StarletteHTTPException(404, f"web demo files are not installed ({page})")
        return FileResponse(page, headers={"Cache-Control": "no-cache"})

    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
