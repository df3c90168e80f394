"""Canonical column names shared by every part of the library (RecTools' ``Columns``)."""

from __future__ import annotations

USER = "user_id"
ITEM = "item_id"
TIMESTAMP = "timestamp"
WEIGHT = "weight"
RATING = "rating"

TITLE = "title"
GENRES = "genres"
YEAR = "year"
TEXT = "text"

INTERACTION_REQUIRED = (USER, ITEM)


class Columns:
    """Namespace with the canonical column names, e.g. ``Columns.User == "user_id"``."""

    User = USER
    Item = ITEM
    Timestamp = TIMESTAMP
    Weight = WEIGHT
    Rating = RATING
    Title = TITLE
    Genres = GENRES
    Year = YEAR
    Text = TEXT
