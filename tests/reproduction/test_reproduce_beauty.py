"""Reproduction checks on Amazon Beauty (slow; ``make reproduce``)."""

from __future__ import annotations

import pytest

from genrec.bench.reproduction import CHECKS

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


def _explain(record) -> str:
    rows = [
        f"{k}: measured {r['measured']:.4f} vs reference {r['reference']:.4f} "
        f"(diff {r['diff']:+.4f}, tol {r['tol']:.4f}) {'ok' if r['ok'] else 'OUT'}"
        for k, r in record["per_metric"].items()
    ]
    return f"{record['check']} ({record['source']}, {record['tolerance']['text']}):\n" + (
        "\n".join(rows)
    )


@pytest.mark.parametrize("check", CHECKS, ids=[c.name for c in CHECKS])
def test_reproduce(check, reproduce):
    record = reproduce(check)
    if record["data_hash_matches_reference"] is False:
        pytest.fail(f"{check.name}: the data differ from the reference run's (data hash)")
    assert record["passed"], _explain(record)
