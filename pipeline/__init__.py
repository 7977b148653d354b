"""The pipeline: models and adapters, generation engines, the five-stage chain, evaluation, the warm start, training, the bootstrap
and command-line tools. Imports ``sandbox`` and ``prompts`` of ours, nothing else (``train.py`` and
``evaluate.py`` wire in ``datasets_build`` and ``rewards``).

Its sub-packages are levels; each imports only the levels below it (``tests/test_layering.py`` checks):

0. ``models``: base model, tokenizer, precision, the two role adapters, ``Policies``.
1. ``engines``: generation engines (transformers; vLLM's server over HTTP with the role adapters served by name).
2. ``chain``: the five stages for both roles, and the ``rollout_func`` TRL calls.
3. ``evaluation``: benchmarks, sampling, scoring, the collapse measure.
4. ``training``: the GRPO trainer, schedule, replay, checkpoints, the training callbacks (collapse guard, benchmark
   evaluation), console, report, run records and the end of a run (RL's and the warm start's).
5. ``warmstart``: supervised warm start of the generator adapter (it ends through ``training``'s ``finish_run``);
   ``bootstrap``: expert iteration on the model's own verified samples.
6. ``tools``: memory estimate, Hub push, solve rates, generation speed.

``quiet`` (third-party console noise, filtered at a script's start) belongs to no level: standard library only.
"""
