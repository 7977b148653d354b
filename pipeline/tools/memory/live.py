"""Live tensor bytes: what PyTorch really holds during a run, to check the estimate's tensor model against."""

from __future__ import annotations

from typing import Any, Sequence


class LiveTensorBytes:
    """A TorchDispatchMode (built on first use) that follows every tensor storage an op creates until it is freed,
    and keeps the peak of their total: what PyTorch really holds, without the allocator's or Python's overhead.
    ``forget`` drops storages (e.g. frozen weights) from the count."""

    def __new__(cls, ignore: Sequence[Any] = ()):
        import weakref

        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_flatten

        class _Mode(TorchDispatchMode):
            def __init__(self) -> None:
                super().__init__()
                self.ignore = {id(t.untyped_storage()) for t in ignore}
                self.live: dict[int, int] = {}
                self.current = self.peak = 0

            def forget(self, tensors: Sequence[Any]) -> None:
                for t in tensors:
                    key = id(t.untyped_storage())
                    self.ignore.add(key)
                    self.current -= self.live.pop(key, 0)

            def _free(self, key: int) -> None:
                self.current -= self.live.pop(key, 0)

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for t in tree_flatten(out)[0]:
                    if hasattr(t, "untyped_storage"):
                        storage = t.untyped_storage()
                        key = id(storage)
                        if key not in self.live and key not in self.ignore and storage.nbytes():
                            self.live[key] = storage.nbytes()
                            self.current += storage.nbytes()
                            self.peak = max(self.peak, self.current)
                            weakref.finalize(storage, self._free, key)
                return out

        return _Mode()
