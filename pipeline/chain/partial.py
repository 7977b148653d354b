"""`PartialBatches`: a long loop over batches of chains that survives being stopped.

Sampling chains is the long part of the bootstrap (a round of 160 chains: about 85 minutes on 2 cores) and of a
staged evaluation (HumanEval+'s 164 chains: about 2.5 hours), longer than a machine or a session may stay up. After
every batch the items sampled so far and the random number generators' states are written to one JSON file
(atomically: a temporary file renamed over it); a rerun with the same ``key`` restores both and continues after the
last batch written, so that it samples what an uninterrupted run would, token for token, on the same machine. A file
whose key differs (other settings, other problems) is a different job: it is set aside with a log line, never mixed in.

The states are those ``transformers.set_seed`` seeds (Python's ``random``, NumPy's, torch's CPU and CUDA generators).
A vLLM server's sampler keeps its own state: resumed sampling there continues with other random draws (greedy
decoding is unaffected).
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch

logger = logging.getLogger(__name__)

T = TypeVar("T")
FORMAT = 1


def rng_state() -> dict[str, Any]:
    """The generators' states as plain JSON data."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {"python": [version, list(internal), gauss],
                             "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
                             "torch": torch.get_rng_state().tolist()}
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


class PartialBatches(Generic[T]):
    """The items of a batched loop written after each batch to ``path``, under ``key`` (the settings that make the
    items what they are: plain JSON data). ``to_dict`` / ``from_dict`` turn an item into JSON data and back.

    Usage: ``done = partial.resume()`` (the items already sampled, generators restored; [] to start), then
    ``partial.save(items)`` after every batch; the caller deletes ``path`` once the items are stored for good.
    ``resumed`` counts the items the last ``resume`` returned (a step's wall time covers only the others).
    """

    def __init__(self, path: str | Path, key: Mapping[str, Any], to_dict: Callable[[T], dict[str, Any]],
                 from_dict: Callable[[dict[str, Any]], T]):
        self.path = Path(path)
        self.key = json.loads(json.dumps(key))  # as it will read back: tuples become lists
        self.to_dict, self.from_dict = to_dict, from_dict
        self.resumed = 0

    def resume(self) -> list[T]:
        """The items a previous run saved under the same key, with the generators set as they were after its last
        batch; [] (generators untouched) when there is none. A file for another key, or one that cannot be read
        back, is set aside as ``<name>.other`` with a warning, and sampling starts over."""
        self.resumed = 0
        if not self.path.is_file():
            return []
        try:
            saved = json.loads(self.path.read_text())
            if saved.get("format") != FORMAT or saved.get("key") != self.key:
                self._set_aside("was written for other settings or problems")
                return []
            items = [self.from_dict(item) for item in saved["items"]]
            rng = saved["rng"]
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
            self._set_aside(f"is unreadable ({type(err).__name__}: {err})")
            return []
        set_rng_state(rng)
        self.resumed = len(items)
        logger.info("resuming after %d items sampled before (%s)", len(items), self.path)
        return items

    def _set_aside(self, why: str) -> None:
        aside = self.path.with_name(self.path.name + ".other")
        logger.warning("%s %s: set aside as %s, sampling from the start", self.path, why, aside.name)
        os.replace(self.path, aside)

    def save(self, items: Sequence[T]) -> None:
        """Write every item so far and the generators' states; the file is whole at every moment."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        payload = {"format": FORMAT, "key": self.key, "rng": rng_state(), "items": [self.to_dict(i) for i in items]}
        with temporary.open("w") as handle:
            json.dump(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
