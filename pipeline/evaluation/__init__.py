"""Evaluation of the generator (and discriminator) on code benchmarks.

Modules, one job each: `config` (EvalConfig), `samples` (direct / staged sampling, completions files),
`generation` (batched transformers or vLLM generation), `programs` (completion -> program -> sandbox
job), `scoring` (one sandbox batch, pass@k, best-of-N, quality rates), `pass_at_k.py` (the `evaluate`
metric module, loaded by path through `metric`), `collapse` (mode-collapse score), `runs` (sampling the
adapter and base runs), `report` and `model_card` (artefacts). `evaluate.py` at the repository root wires them to the benchmark rows of
`datasets_build`; nothing here imports that package, so rows arrive as plain dicts. Nothing is imported
here, so that scoring a completions file does not pay for torch and transformers.
"""
