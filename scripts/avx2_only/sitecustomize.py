"""Make this CPU look like an AVX2-only one to every Python process started with this folder on PYTHONPATH.

Why: the project picks bf16 or fp32 from the CPU's flags (``pipeline.models.base.cpu_has_native_bf16``), and
bitsandbytes picks its 4-bit CPU kernels from them too, so a machine with AVX512-BF16 or AMX never runs the
fp32 branches that AVX2-only machines run. With this folder first on PYTHONPATH, torch's and bitsandbytes'
capability checks answer False and the whole suite takes the AVX2 path:

    PYTHONPATH=scripts/avx2_only .venv/bin/python -m pytest -q -n 2 --dist loadfile

Tests that fake the flags themselves (tests/test_models.py) still override these answers. The sandbox's
workers start with ``python -I``, which ignores PYTHONPATH, so they are unaffected (they never load torch).
"""

import torch

torch.cpu._is_avx512_bf16_supported = lambda: False
torch.cpu._is_amx_tile_supported = lambda: False
try:
    import bitsandbytes.functional as _bnb_functional
    import bitsandbytes.nn.modules as _bnb_modules
except ImportError:
    pass
else:
    _bnb_functional.has_avx512bf16 = lambda: False
    _bnb_modules.has_avx512bf16 = lambda: False
