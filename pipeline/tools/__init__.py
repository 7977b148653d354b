"""Command-line tools over the pipeline: ``memory`` (peak-memory estimate of a recipe), ``push`` (a run's
adapters to the Hub), ``solve`` (solve rates of problems), ``bench_rollout`` (generation speed).

The highest level of ``pipeline``: may import every other part of it, nothing imports it back.
"""
