"""`GenerationProbe`: look at what the model writes while it trains.

A supervised loss can fall to 0.0 while greedy generations are already "return return return"; only
the generations show it. Every few steps the probe writes greedy answers to a few fixed prompts and
logs the share that is degenerate (`probe/collapse_rate`, what `CollapseGuard` watches) and, for prompts
whose answer is code, the share whose code parses and defines the entry point (`probe/code_parses`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from transformers import TrainerCallback

from prompts.chat import render_ids
from prompts.parsing import defines_function, extract_code

logger = logging.getLogger(__name__)


class GenerationProbe(TrainerCallback):
    """Greedy generations for `prompts` (chat messages) every `every_steps` optimizer steps.

    `is_collapsed(text)` decides degeneration (e.g. `prompts.collapse.is_collapsed`).
    `entry_points[i]` is the function prompt i asks for, or None when its answer is not code.
    Call `attach(trainer)` once: the metrics join the trainer's next log line (TRL trainers average
    their `_metrics` into each log; other trainers get a log call of their own).
    """

    def __init__(self, prompts: Sequence[Sequence[Mapping[str, str]]], entry_points: Sequence[str | None],
                 tokenizer: Any, *, every_steps: int, max_new_tokens: int, is_collapsed: Callable[[str], bool],
                 metric: str = "probe/collapse_rate"):
        if not prompts or len(prompts) != len(entry_points):
            raise ValueError("the probe needs at least one prompt and one entry point (or None) per prompt")
        if every_steps < 1 or max_new_tokens < 1:
            raise ValueError("every_steps and max_new_tokens must be >= 1")
        self.prompt_ids = [render_ids(tokenizer, list(p)) for p in prompts]
        self.entry_points = list(entry_points)
        self.tokenizer = tokenizer
        self.every_steps, self.max_new_tokens = every_steps, max_new_tokens
        self.is_collapsed, self.metric = is_collapsed, metric
        self.trainer: Any = None
        self.last_texts: list[str] = []

    def attach(self, trainer: Any) -> "GenerationProbe":
        self.trainer = trainer
        trainer.add_callback(self)
        return self

    @torch.no_grad()
    def generate(self, model: Any) -> list[str]:
        """Greedy answers to the probe prompts (the model's train/eval mode is restored afterwards)."""
        pad = self.tokenizer.pad_token_id
        width = max(len(ids) for ids in self.prompt_ids)
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in self.prompt_ids])
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in self.prompt_ids])
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        try:
            out = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                                 max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=pad)
        finally:
            model.train(was_training)
        return self.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)

    def measure(self, model: Any) -> dict[str, float]:
        texts = self.generate(model)
        self.last_texts = texts
        metrics = {self.metric: sum(map(self.is_collapsed, texts)) / len(texts)}
        coded = [(t, ep) for t, ep in zip(texts, self.entry_points) if ep is not None]
        if coded:
            metrics["probe/code_parses"] = sum(defines_function(extract_code(t, ep).code, ep)
                                               for t, ep in coded) / len(coded)
        return metrics

    def on_step_end(self, args, state, control, **kwargs):
        if self.trainer is None or state.global_step % self.every_steps:
            return control
        metrics = self.measure(self.trainer.model)
        logger.info("probe at step %d: %s; first answer: %r", state.global_step, metrics,
                    self.last_texts[0][:200])
        store = getattr(self.trainer, "_metrics", None)
        if isinstance(store, dict) and "train" in store:
            for key, value in metrics.items():
                store["train"][key].append(value)
            control.should_log = True  # the trainer logs right after on_step_end: the values go out now
        else:
            self.trainer.log(metrics)
        return control
