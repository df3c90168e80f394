"""Evaluation: metrics, the evaluator, statistics and reports."""
