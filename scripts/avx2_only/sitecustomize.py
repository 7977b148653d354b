"""Make this CPU look like an AVX2-only one to every Python process started with this folder on PYTHONPATH.

Why: the project picks bf16 or fp32 from the CPU's flags (``pipeline.models.base.cpu_has_native_bf16``), and
bitsandbytes picks its 4-bit CPU kernels from them too, so a machine with AVX512-BF16 or AMX never runs the
fp32 branches that AVX2-only machines run. With this folder first on PYTHONPATH, torch's and bitsandbytes'
capability checks answer False and the whole suite takes the AVX2 path:

    PYTHONPATH=scripts/avx2_only .venv/bin/python -m pytest -q -n 2 --dist loadfile

The checks are replaced when their modules are first imported, not before: a process that never imports
torch stays without it (tests check that some tools do not load it). Tests that fake the flags themselves
(tests/test_models.py) still override these answers. The sandbox's workers start with ``python -I``, which
ignores PYTHONPATH, so they are unaffected.
"""

import importlib.abc
import importlib.util
import sys

_NO = lambda: False  # noqa: E731
# module -> attributes that answer "does this CPU have native bf16 / AMX?"
_CHECKS = {
    "torch.cpu": ("_is_avx512_bf16_supported", "_is_amx_tile_supported"),
    "bitsandbytes.functional": ("has_avx512bf16",),
    "bitsandbytes.nn.modules": ("has_avx512bf16",),
}


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself; for the modules in _CHECKS it wraps the real loader so that the checks are
    replaced right after the module has run."""

    def find_spec(self, name, path=None, target=None):
        if name not in _CHECKS:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module, _run=run, _names=_CHECKS[name]):
            _run(module)
            for attribute in _names:
                setattr(module, attribute, _NO)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _PatchAfterImport())
