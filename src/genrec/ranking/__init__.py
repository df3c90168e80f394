"""Cascade ranking: candidate generation, features and a gradient-boosted ranker."""
