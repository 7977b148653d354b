"""Quality of the reasoning and of the tests, measured during training without executing anything.

Validity and bug-catch rates per stage come from `rewards.metrics.batch_metrics` (they need the
sandbox); these complement them with what execution cannot see:

* **test diversity** per stage: of all tests the samples of one task wrote at stage k, the share that
  are distinct after AST normalisation (`prompts.testcases.dedup_key`: formatting, comments and assert
  messages ignored). A GRPO group whose members all write the same asserts has diversity 1/group size;
  that is the discriminator's mode collapse. Averaged over the tasks with at least one stage-k test.
* **reasoning coherence**: whether the final code implements the pseudocode it follows. Of the code's
  own identifiers (names it defines or uses, attribute names; lower-cased, at least 3 characters, Python
  builtins, keywords and the stopwords below excluded), the share that the pseudocode stage names as a word.
  Undefined (left out) when the code does not parse or has no such identifier.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prompts.stages import NUM_STAGES, get_stage
from prompts.testcases import dedup_key
from prompts.record import RolloutRecord
from rewards.batch import parse_batch

PSEUDOCODE_STAGE = get_stage("pseudocode").id
MIN_IDENTIFIER_CHARS = 3
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# English function words and the words that structure pseudocode ("step 2: repeat until the end"): a variable
# that happens to be called `end` or `step` is not evidence that the code follows the pseudocode.
STOPWORDS = frozenset("""
the and for each with from into that this then than when while are was were not but all any its has have
begin end step steps repeat until let set given using input output return returns
""".split()) | frozenset(k.lower() for k in keyword.kwlist)
BUILTIN_NAMES = frozenset(name.lower() for name in dir(builtins))


def diversity(tests: Iterable[str]) -> float | None:
    """Distinct tests (by `dedup_key`) / all tests; None when there are none."""
    keys = [dedup_key(test) for test in tests]
    return len(set(keys)) / len(keys) if keys else None


def pseudocode_words(text: str) -> set[str]:
    """Lower-cased words and identifiers of `text` with at least 3 characters, stopwords excluded."""
    return {w.lower() for w in _WORD.findall(text) if len(w) >= MIN_IDENTIFIER_CHARS} - STOPWORDS


def code_identifiers(code: str) -> set[str] | None:
    """The names `code` defines or uses (functions, classes, arguments, variables, attributes, imports),
    lower-cased, at least 3 characters, builtins and stopwords excluded; None if it does not parse."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    lowered = {n.lower() for n in names if len(n) >= MIN_IDENTIFIER_CHARS}
    return lowered - BUILTIN_NAMES - STOPWORDS


def coherence(pseudocode: str, code: str) -> float | None:
    """|pseudocode words ∩ code identifiers| / |code identifiers|; None when undefined (see module doc)."""
    identifiers = code_identifiers(code)
    if not identifiers:
        return None
    return len(identifiers & pseudocode_words(pseudocode)) / len(identifiers)


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def quality_metrics(batch: Mapping[str, Any] | Sequence[RolloutRecord], num_stages: int = NUM_STAGES) -> dict[str, float]:
    """`quality/diversity/stage<k>`, `quality/diversity` (all stages of a task pooled) and
    `quality/coherence` (mean over samples where it is defined) of a batch: TRL reward kwargs or parsed
    `RolloutRecord`s. Every sample is one episode; tests are pooled per `task_id`. Metrics with nothing to
    average are left out."""
    samples = parse_batch(batch, num_stages) if isinstance(batch, Mapping) else list(batch)
    by_task: dict[str, list[RolloutRecord]] = defaultdict(list)
    for sample in samples:
        by_task[sample.task_id].append(sample)
    out: dict[str, float] = {}
    for k in range(1, num_stages + 1):
        value = _mean(diversity(t for s in group for t in s.tests_by_stage[k - 1]) for group in by_task.values())
        if value is not None:
            out[f"quality/diversity/stage{k}"] = value
    pooled = _mean(diversity(t for s in group for stage in s.tests_by_stage for t in stage)
                   for group in by_task.values())
    if pooled is not None:
        out["quality/diversity"] = pooled
    if num_stages >= PSEUDOCODE_STAGE:
        value = _mean(coherence(s.stage_texts[PSEUDOCODE_STAGE - 1], s.final_code) for s in samples)
        if value is not None:
            out["quality/coherence"] = value
    return out
