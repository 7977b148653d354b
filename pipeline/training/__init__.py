"""Training glue around TRL's ``GRPOTrainer``: the adversarial schedule, failure replay, checkpoints
that resume exactly, logging, the model card and pushing to the Hub. ``train.py`` wires it up.

docs/training.md, "One step, top to bottom", follows one optimizer step through these modules in order.
"""
