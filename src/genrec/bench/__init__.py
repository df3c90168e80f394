"""Benchmarks, suites, tuning and reproduction checks (the ``bench`` floor): everything that
fits and compares several models under one protocol."""
