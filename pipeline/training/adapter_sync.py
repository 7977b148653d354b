"""Adapter-only sync of the vLLM engine with the trainer: after every optimizer step, the server serves the new
weights of the role that was trained, under a new name.

Only the LoRA adapter moves (megabytes), never the base: TRL's own vLLM path merges the adapter into the base
and pushes every weight, which leaves one merged model per engine, where both roles must be served at once.
Each version is saved to a folder of its own and loaded as ``<role>-v<N>``; the previous one is then unloaded
(``pipeline.engines.ServedAdapters``). Loading in place under one name would make vLLM re-read the adapter and
could reuse prefixes cached under the old weights (vLLM #42125).

At train begin (after a resume has restored the checkpoint's adapters into the model) both roles are published,
so a resumed run generates with the checkpoint's adapters, whatever the server served before.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from pipeline.chain.rollout import RolloutState
from pipeline.engines import ServedAdapters
from pipeline.models.adapters import save_adapters

logger = logging.getLogger(__name__)


class AdapterSyncCallback(TrainerCallback):
    """Publishes the role adapters the rollout's vLLM engine generates with: ``adapters`` maps each role to the
    adapter that plays it (the rollout's), ``state`` says which role the step that ended trained."""

    def __init__(self, served: ServedAdapters, model: Any, state: RolloutState, adapters: dict[str, str]) -> None:
        self.served, self.model, self.state, self.adapters = served, model, state, adapters

    def _publish(self, roles: list[str]) -> None:
        with tempfile.TemporaryDirectory(prefix="duelcoder-adapters-") as staging:
            saved = save_adapters(self.model, staging)
            for role in roles:
                name = self.served.publish(role, Path(saved) / role)
                logger.info("vLLM serves %s as %s", role, name)

    def on_train_begin(self, args, state, control, **kwargs):
        self._publish(sorted(set(self.adapters.values())))

    def on_step_end(self, args, state, control, **kwargs):
        phase = self.state.phase
        role = self.adapters["generator"] if phase.role == "unified" else self.adapters[phase.role]
        self._publish([role])
