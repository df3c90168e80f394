"""Reproduction checks (``make reproduce``): genrec's numbers on Amazon Beauty against
published or previously measured ones, each within a stated tolerance; every run writes a
record (reference, measured, verdict, config, timings, hardware) to ``$GENREC_REPRO_DIR``
(default ``reports/reproduction``; ``make reproduce`` uses ``docs/measurements/reproduction``,
which ``benchmarks/results_table.py --update-readme`` turns into the README table).

Checks marked ``gpu`` (full-softmax SASRec, TIGER) skip without CUDA and state the expected
CPU time, unless ``GENREC_REPRO_ALLOW_CPU=1``; BCE SASRec runs on a CPU (~1 hour). See
:mod:`genrec.bench.reproduction` for the check definitions.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BEAUTY = SHARED_DATA / "amazon-beauty"


@pytest.fixture(scope="session")
def beauty():
    """The Beauty dataset and its leave-one-out split, loaded once per session."""
    if not BEAUTY.is_dir():
        pytest.skip(f"Amazon Beauty not available at {BEAUTY}")
    from genrec.data.loaders import load_dataset
    from genrec.data.splitting import split_dataset

    ds = load_dataset("amazon-beauty", data_dir=str(BEAUTY))
    return ds, split_dataset(ds, "loo")


@pytest.fixture
def reproduce(beauty, request):
    """Run a :class:`~genrec.bench.reproduction.Check`, write its record, return the record."""
    from genrec.bench.reproduction import run_check, write_record

    def _run(check):
        if check.gpu:
            import torch

            if not torch.cuda.is_available() and not os.environ.get("GENREC_REPRO_ALLOW_CPU"):
                pytest.skip(
                    f"{check.name} needs a GPU: no CUDA here, and on a 2-core CPU it would "
                    f"take {check.cpu_estimate} (GENREC_REPRO_ALLOW_CPU=1 runs it anyway)"
                )
        ds, split = beauty
        record = run_check(
            check,
            ds,
            split,
            data_dir=str(BEAUTY),
            command=f"pytest -m slow tests/reproduction -k {request.node.name}",
        )
        path = write_record(record)
        print(f"\n{check.name}: {'PASS' if record['passed'] else 'FAIL'}, record {path}")
        return record

    return _run
