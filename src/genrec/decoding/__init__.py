"""Shared decoding infrastructure: the semantic-ID trie, constrained beam search and logits
processors (see DESIGN.md, section 5)."""

from genrec.decoding.beam_search import (
    BeamSearchOutput,
    Static,
    beam_search,
    expand_to_beams,
    flat_beam_indices,
    flatten_beams,
    gather_beams,
    reorder_state,
    unflatten_beams,
)
from genrec.decoding.processors import LogitsProcessor, TemperatureProcessor, TrieConstraint
from genrec.decoding.trie import SemanticIDTrie

__all__ = [
    "BeamSearchOutput",
    "LogitsProcessor",
    "SemanticIDTrie",
    "Static",
    "TemperatureProcessor",
    "TrieConstraint",
    "beam_search",
    "expand_to_beams",
    "flat_beam_indices",
    "flatten_beams",
    "gather_beams",
    "reorder_state",
    "unflatten_beams",
]
