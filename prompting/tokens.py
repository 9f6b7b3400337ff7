"""Token estimates for budgets, without a model-specific tokenizer.

The heuristic is ``ceil(characters / 4)``: about right for English prose with
OpenAI-style BPE tokenizers, and on the safe side of what the bundled MiniLM
WordPiece tokenizer produces. Non-empty text costs at least one token.
"""

from __future__ import annotations

import math

__all__ = ["CHARS_PER_TOKEN", "estimate_tokens"]

#: Characters per token assumed by :func:`estimate_tokens`.
CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """Estimated tokens in ``text``: ``ceil(len / 4)``, 0 only for the empty string (pure)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)
