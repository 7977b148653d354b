"""Third-party console noise a user of this project can do nothing about, filtered at a script's start.

Standard library only at import time, so a script can call ``quiet_third_party()`` before its heavy imports
(bitsandbytes warns while it is being imported).
"""

from __future__ import annotations

import logging
import os
import warnings


def quiet_third_party() -> None:
    """Filter the third-party console noise that tells a user of this project nothing; call it before the heavy
    imports (a script's first lines). Each filter names what it hides and why that is safe to hide."""
    # bitsandbytes (0.50) warns at import, on CPUs with AVX512-BF16, that the optional `kernels` package for its
    # 4-bit CPU inference kernel is missing: it matters to 4-bit CPU runs only, which log their own warning.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    # TRL 1.16's unwrap_model_for_generation calls `is_gradient_checkpointing`, which transformers 5 deprecates:
    # TRL's call, once per generation; our own calls use the current names.
    warnings.filterwarnings("ignore", message=r"`is_gradient_checkpointing` is deprecated", category=FutureWarning)
    # TRL marks `rollout_func` experimental on every trainer it builds; its contract (TRL 1.16) is pinned by
    # tests/test_chain.py and tests/test_train_step.py, and tests/test_trl_contract.py for the private hooks.
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    # transformers' "Loading weights" bar: one line per model load, with nothing to act on (downloads keep theirs).
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
