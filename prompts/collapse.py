"""Mode-collapse detection: degenerate repetition in model output.

RL on code rewards can collapse a policy into loops of the same tokens ("return return return",
"def def", one line over and over). Such output still parses now and then, so pass rates alone hide it;
the evaluation reports the share of samples flagged here.

The score is the fraction of a text's tokens that are repetition, where a token counts as repetition
when it ends an n-gram (``CollapseConfig.ngram`` tokens, default 8) that already occurred earlier in the
text, or when it is a Python keyword right after the same keyword ("return return"). A sample is
collapsed when the score reaches ``threshold`` (default 0.5: at least half the text is repetition) or
when it stutters a statement keyword at all ("def def" is never valid code nor ordinary prose).
Measured on HumanEval's 164 prompts + canonical solutions the score stays far below the threshold
(highest 0.24, mean 0.02; tests/test_evaluate_metrics.py).

A staged chain is judged as a whole (``chain_text``): the small model's usual failure in staged mode is not a
loop inside one stage but a stage pasted into the next ones (the base SmolLM2-135M does it on 163 of 164
HumanEval+ tasks, docs/learning.md run 3), which no single stage shows. ``copied_share`` measures that paste
stage by stage, for the rewards that must not pay for it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+|\S")
# Statement keywords that never legitimately follow themselves ("not not x" is valid Python: excluded).
STUTTER_KEYWORDS = frozenset({"def", "return", "class", "import", "from", "for", "while", "if", "elif",
                              "else", "lambda", "yield", "assert", "pass", "with", "try", "except"})


@dataclass(frozen=True)
class CollapseConfig:
    """ngram: length of the repeated token sequences counted; threshold: score at or above which a text is
    collapsed; min_tokens: shorter texts are never flagged by the score (too little text to judge)."""

    ngram: int = 8
    threshold: float = 0.5
    min_tokens: int = 16

    def __post_init__(self) -> None:
        if self.ngram < 2:
            raise ValueError(f"ngram must be >= 2, got {self.ngram}")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")


DEFAULT_COLLAPSE = CollapseConfig()


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def keyword_stutters(text: str) -> int:
    """How often a statement keyword directly follows itself ("return return")."""
    tokens = _tokens(text)
    return sum(a == b and a in STUTTER_KEYWORDS for a, b in zip(tokens, tokens[1:]))


def collapse_score(text: str, config: CollapseConfig = DEFAULT_COLLAPSE) -> float:
    """Fraction of the tokens of `text` that repeat earlier material (0 = none, 1 = all); see the module doc."""
    tokens = _tokens(text)
    if not tokens:
        return 0.0
    seen: set[tuple[str, ...]] = set()
    repeated = 0
    n = config.ngram
    for i, token in enumerate(tokens):
        stutter = i > 0 and token == tokens[i - 1] and token in STUTTER_KEYWORDS
        gram = tuple(tokens[i - n + 1:i + 1]) if i + 1 >= n else None
        if gram is not None and gram in seen:
            repeated += 1
        elif stutter:
            repeated += 1
        if gram is not None:
            seen.add(gram)
    return repeated / len(tokens)


def is_collapsed(text: str, config: CollapseConfig = DEFAULT_COLLAPSE) -> bool:
    """Whether `text` is degenerate: a keyword stutter, or a repetition score at or above the threshold."""
    if keyword_stutters(text):
        return True
    return len(_tokens(text)) >= config.min_tokens and collapse_score(text, config) >= config.threshold


def chain_text(stage_texts: Sequence[str]) -> str:
    """The text a staged chain's collapse is judged on: its stages in order. Evaluation, the bootstrap's filter
    and the training's ``generator/collapse_rate`` all judge this one text."""
    return "\n".join(stage_texts)


def copied_share(text: str, earlier: Sequence[str], config: CollapseConfig = DEFAULT_COLLAPSE) -> float:
    """Share of the ``config.ngram``-grams of ``text`` that already occur in one of the ``earlier`` texts, in
    [0, 1]; 0 for a blank text. A text too short for one n-gram counts as copied (1.0) when its tokens equal an
    earlier text's, else 0."""
    tokens = _tokens(text)
    if not tokens:
        return 0.0
    n = config.ngram
    if len(tokens) < n:
        return float(any(_tokens(e) == tokens for e in earlier))
    seen = {tuple(t[i:i + n]) for t in map(_tokens, earlier) for i in range(len(t) - n + 1)}
    grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return sum(g in seen for g in grams) / len(grams)


def is_copied(text: str, earlier: Sequence[str], config: CollapseConfig = DEFAULT_COLLAPSE) -> bool:
    """Whether ``text`` mostly repeats the ``earlier`` texts (``copied_share`` at or above ``config.threshold``)."""
    return copied_share(text, earlier, config) >= config.threshold
