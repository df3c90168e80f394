"""genrec.errors helpers."""

from __future__ import annotations

import warnings

from genrec.data.loaders.files import load_csv
from genrec.errors import DuplicateIdWarning, caller_stacklevel


def test_caller_stacklevel_is_one_outside_genrec():
    assert caller_stacklevel() == 1  # this test file is not part of genrec


def test_a_warning_from_deep_inside_genrec_names_the_callers_line(tmp_path):
    # load_csv -> _dataset_from_frame -> Dataset -> _validate_side_table warns
    (tmp_path / "ratings.csv").write_text("user_id,item_id\n1,a\n1,b\n2,a\n")
    (tmp_path / "items.csv").write_text("item_id,title\na,First\na,Second\nb,Beta\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_csv(tmp_path / "ratings.csv", items_path=tmp_path / "items.csv")
    repeated = [w for w in caught if issubclass(w.category, DuplicateIdWarning)]
    assert len(repeated) == 1 and repeated[0].filename == __file__
    assert len(ds.items) == 2
