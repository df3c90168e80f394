"""genrec.console.LongStep: a step that cannot be counted prints timestamped start, progress
(with an ETA when told the amount of work) and end lines in any context."""

from __future__ import annotations

import re
import time

import pytest

from genrec.console import LongStep, format_seconds, long_step

STAMP = re.compile(r"^\[\d\d:\d\d:\d\d\] ")


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_long_step_lines_in_a_log(capsys):
    with LongStep("fitting x", total=4, unit="batches", every=0.05) as step:
        for _ in range(4):
            time.sleep(0.06)
            step.advance()
    lines = _lines(capsys.readouterr().err)  # pytest's capture is not a terminal
    assert all(STAMP.match(line) for line in lines), lines
    assert lines[0].endswith("fitting x: started")
    progress = [line for line in lines if "elapsed" in line]
    assert progress, lines
    assert any(re.search(r"\d/4 batches, ETA \d", line) for line in progress), progress
    assert re.search(r"fitting x: done in \d+\.\d s$", lines[-1])
    assert step.seconds is not None and step.seconds >= 0.24


def test_long_step_failure_and_disabled(capsys):
    with pytest.raises(ValueError), LongStep("step y", every=60):
        raise ValueError("boom")
    err = capsys.readouterr().err
    assert "step y: started" in err and "step y: stopped after" in err and "ValueError" in err
    with long_step("quiet", enabled=False):
        pass
    assert capsys.readouterr().err == ""


def test_long_step_through_a_callback():
    said: list[str] = []
    with LongStep("bench", say=said.append, every=0.02, quiet_start=True):
        time.sleep(0.1)
    assert "bench: started" not in said
    assert any("bench:" in s and "elapsed" in s for s in said)
    assert said[-1].startswith("bench: done in")


def test_format_seconds():
    assert format_seconds(4.21) == "4.2 s"
    assert format_seconds(58.4) == "58 s"
    assert format_seconds(185) == "3 min 05 s"
    assert format_seconds(3720) == "1 h 02 min"
