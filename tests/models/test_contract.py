"""Every registered model runs the whole :class:`genrec.testing.RecommenderContract`.

A test class is generated per name in :func:`genrec.list_models`, so a newly registered
model is covered with no edit here; give it a tiny config in ``TINY`` if its defaults are
slow, and an honest ``FLOORS`` entry (recall@10 on the synthetic leave-one-out test).
"""

from __future__ import annotations

from typing import Any

import genrec
from genrec.testing import RecommenderContract

# Tiny, fast configs for the 60-user x 40-item synthetic data.
TINY: dict[str, dict[str, Any]] = {
    "ease": {"l2": 10.0},
    "itemknn": {"n_neighbors": 20, "shrink": 1.0},
    # 60 users x 40 items: more factors or less regularisation lets ALS memorise histories
    "als": {"factors": 8, "iterations": 10, "regularization": 1.0},
}

# Minimum recall@10 on the synthetic leave-one-out test (random ranking: ~0.30). A test user
# has seen 7 of its cluster's 10 items and the target is one of the other 3, so any model
# that learns co-occurrence gets ~1.0. Popularity only helps users of the largest cluster
# (~half of them), so its floor is lower.
FLOORS: dict[str, float | None] = {
    "popularity": 0.4,
    "ease": 0.9,
    "itemknn": 0.9,
    "als": 0.9,
}

for _name in genrec.list_models():
    _cls = type(
        f"TestContract_{_name}",
        (RecommenderContract,),
        {
            "model_name": _name,
            "config_overrides": TINY.get(_name, {}),
            "quality_floor": FLOORS.get(_name, 0.0),
            "__module__": __name__,
        },
    )
    globals()[_cls.__name__] = _cls
del _name, _cls
