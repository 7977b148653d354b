"""Shaping signals that need no execution: output format and degenerate repetition.

Small policies under RL drift into repetition loops ("return return return", one sentence pasted
over and over) because such text is cheap and sometimes scores; a repetition score lets a penalty
push back before the loop takes over the whole policy.

Two measures of degenerate text, with two names, on purpose: this ``repetition_score`` (4-grams of words and
punctuation, any stuttered word) is the reward's *graded* signal, so GRPO sees mild repetition cost a little
and heavy repetition a lot; ``prompts.collapse`` (8-grams, stuttered keywords only, a threshold) is
the *verdict* "this sample collapsed" that training logs as ``generator/collapse_rate``, the collapse guard
watches and evaluation reports, tuned to flag only degenerate output. The reward's settings are
``repetition_*``, the verdict's ``collapse_*``.
"""

from __future__ import annotations

import ast
import re

from prompts.collapse import is_copied

_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w+")


def repetition_score(text: str, ngram: int = 4) -> float:
    """Degenerate-repetition score of ``text`` in [0, 1]; 0 for empty or short text.

    The maximum of two fractions:
      * repeated n-grams: share of the token ``ngram``-grams that already occurred earlier in the
        text (a pasted loop of any length drives this towards 1);
      * stutter: share of word tokens identical to the token right before them ("def def").
    Tokens are words and single punctuation characters, so formatting changes nothing.
    """
    tokens = _TOKEN.findall(text)
    if not tokens:
        return 0.0
    stutter_count = sum(
        1 for prev, cur in zip(tokens, tokens[1:]) if cur == prev and _WORD.fullmatch(cur) is not None
    )
    words = sum(1 for t in tokens if _WORD.fullmatch(t) is not None)
    stutter = stutter_count / words if words else 0.0
    grams = [tuple(tokens[i : i + ngram]) for i in range(len(tokens) - ngram + 1)]
    repeated = (len(grams) - len(set(grams))) / len(grams) if grams else 0.0
    return max(stutter, repeated)


def code_defines(code: str, entry_point: str | None) -> bool:
    """Whether ``code`` parses and (when an entry point is known) defines it at top level."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    if not entry_point:
        return True
    return any(
        isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == entry_point
        for node in tree.body
    )


def format_score(stage_texts: list[str], final_code: str, entry_point: str | None, num_stages: int) -> float:
    """Generator format in [0, 1]: mean of ``num_stages`` + 1 checks, one per stage present, and one for final
    code that parses and defines the entry point. A stage is present when its text is not blank and is not a
    copy of an earlier stage (``prompts.collapse.is_copied``): pasting stage 1 into stages 2-4 earns nothing
    for those stages, though each is non-blank."""
    texts = [text if isinstance(text, str) else "" for text in stage_texts[:num_stages]]
    present = sum(1 for k, text in enumerate(texts) if text.strip() and not is_copied(text, texts[:k]))
    code_ok = 1 if isinstance(final_code, str) and final_code.strip() and code_defines(final_code, entry_point) else 0
    return (present + code_ok) / (num_stages + 1)
