"""Request and response bodies of the HTTP API (pydantic models, shown at ``/docs``).

Ids are JSON integers or strings: the server maps them through each model's id map, which
accepts ``"42"`` for an integer id ``42`` (and ``42`` for a string id ``"42"``). Booleans and
floats are rejected as ids rather than silently coerced.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

#: most items accepted in one history (a longer one is a 422, never a slow request)
MAX_HISTORY = 1000
#: most users (or histories) in one batch request
MAX_BATCH = 1000
#: most candidate item ids in one request
MAX_CANDIDATES = 100_000
#: largest ``k``
MAX_K = 1000

MAX_ID_CHARS = 512


def _check_id(value: Any) -> int | str:
    """Accept JSON integers (64-bit) and non-empty strings; reject bools, floats, objects."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(
            f"an id must be a JSON integer or string, got {json.dumps(value, default=str)}"
        )
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise ValueError(f"integer id {value} is out of the 64-bit range")
    if isinstance(value, str) and not 0 < len(value) <= MAX_ID_CHARS:
        raise ValueError(f"a string id must have 1 to {MAX_ID_CHARS} characters")
    return value


#: an external user or item id
ExternalId = Annotated[
    int | str,
    BeforeValidator(_check_id),
    Field(description="external id (JSON integer or string)", examples=[1]),
]
History = Annotated[
    list[ExternalId],
    Field(
        max_length=MAX_HISTORY,
        description=f"chronological item ids, oldest first (at most {MAX_HISTORY})",
    ),
]
Candidates = Annotated[
    list[ExternalId] | None,
    Field(
        default=None,
        min_length=1,
        max_length=MAX_CANDIDATES,
        description="optional allow-list of item ids to choose from",
    ),
]
K = Annotated[int, Field(default=10, ge=1, le=MAX_K, strict=True, description="list length")]
ModelName = Annotated[
    str | None,
    Field(default=None, description="model name from GET /models; optional when one is served"),
]


class _Strict(BaseModel):
    """Request bodies reject unknown fields (a typo is an error, not a silent default)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class RecommendRequest(_Strict):
    """Top-k for one known user (``user_id``) or one ad-hoc history (``history``)."""

    model: ModelName = None
    user_id: ExternalId | None = None
    history: History | None = None
    k: K = 10
    exclude_seen: bool = Field(True, description="drop items already in the history")
    candidates: Candidates = None
    on_unknown: Literal["raise", "popular"] = Field(
        "raise",
        description="unknown user_id: 'raise' (404) or 'popular' (cold start: popular items)",
    )

    @model_validator(mode="after")
    def _one_source(self) -> RecommendRequest:
        if (self.user_id is None) == (self.history is None):
            raise ValueError("give exactly one of 'user_id' or 'history'")
        return self


class BatchRecommendRequest(_Strict):
    """Top-k for many users (``user_ids``) or many ad-hoc histories, in one model call."""

    model: ModelName = None
    user_ids: list[ExternalId] | None = Field(None, min_length=1, max_length=MAX_BATCH)
    histories: list[History] | None = Field(None, min_length=1, max_length=MAX_BATCH)
    k: K = 10
    exclude_seen: bool = True
    candidates: Candidates = None
    on_unknown: Literal["raise", "popular"] = "raise"

    @model_validator(mode="after")
    def _one_source(self) -> BatchRecommendRequest:
        if (self.user_ids is None) == (self.histories is None):
            raise ValueError("give exactly one of 'user_ids' or 'histories'")
        return self


class SimilarRequest(_Strict):
    """Items to show next to one item: the model's top-k for the one-item history."""

    model: ModelName = None
    item_id: ExternalId
    k: K = 10
    candidates: Candidates = None


class ItemOut(BaseModel):
    """Display metadata of one item; ``genres`` holds categories for Amazon-style data."""

    item_id: Any = Field(description="external item id")
    title: str | None = None
    genres: list[str] | None = None
    year: int | None = None


class ScoredItem(ItemOut):
    """One recommended item."""

    score: float
    rank: int = Field(description="1-based position in the list")


class RecommendResponse(BaseModel):
    """One ranked list."""

    model: str
    user_id: Any = None
    history_length: int | None = Field(None, description="items in the history used")
    k: int
    items: list[ScoredItem]


class BatchRecommendResponse(BaseModel):
    """One ranked list per requested user or history, in request order."""

    model: str
    k: int
    results: list[RecommendResponse]


class SimilarResponse(BaseModel):
    """Items similar to ``item``."""

    model: str
    item: ItemOut
    k: int
    items: list[ScoredItem]


class ItemDetail(ItemOut):
    """An item with everything the server knows about it."""

    popularity: int = Field(
        0, description="training users who interacted with it (max over models)"
    )
    models: list[str] = Field(default_factory=list, description="served models that know it")
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="other columns of the item table (with --dataset)"
    )


class ItemSearchResponse(BaseModel):
    """Title search results, most relevant first."""

    query: str
    total: int = Field(description="number of matches before the limit")
    items: list[ItemDetail]


class ModelInfo(BaseModel):
    """One served model."""

    model_config = ConfigDict(protected_namespaces=())

    name: str = Field(description="name to use in requests")
    model: str = Field(description="registered model type, e.g. 'ease'")
    model_class: str
    path: str | None = None
    n_users: int
    n_items: int
    config: dict[str, Any]
    training: dict[str, Any] | None = None


class UserList(BaseModel):
    """A page of known user ids of one model."""

    model: str
    total: int
    user_ids: list[Any]


class UserHistoryOut(BaseModel):
    """A known user's training history (most recent last)."""

    model: str
    user_id: Any
    n_interactions: int
    items: list[ItemOut] = Field(description="the last ``limit`` items, oldest first")


class Health(BaseModel):
    """Liveness: the models are loaded."""

    status: Literal["ok"] = "ok"
    models: list[str]


class ErrorResponse(BaseModel):
    """Every 4xx answer: a machine-readable kind and a message naming the problem."""

    error: str = Field(description="kind, e.g. 'unknown_id', 'validation_error'")
    detail: str = Field(description="human-readable message naming the offending value")
    errors: list[dict[str, Any]] | None = Field(
        None, description="per-field problems for request validation errors"
    )
