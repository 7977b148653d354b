"""Chance sources made repeatable inside candidate and test processes.

A test whose verdict depends on chance (``random``, ``os.urandom``, the clock) passes on the
reference in one run and fails on a candidate in another: to a reward it looks like a caught bug
that does not exist. Rewards re-run verdicts to reject such tests (``rewards/README.md``), but
honest tests use these sources too (property tests with ``random``, ``uuid`` keys, a stopwatch
around a call), and re-running cannot make them repeat. So every candidate and test process starts
from the same state:

- ``random``: the module's generator is seeded with ``SEED``; ``random.seed()`` and
  ``random.Random()`` without a seed use a fixed seed too (instead of the OS's entropy);
- ``os.urandom``, ``os.getrandom`` and ``random.SystemRandom`` (and so ``secrets`` and
  ``uuid.uuid4``): a seeded byte stream;
- the clock: ``time.time``/``monotonic``/``perf_counter``/``process_time``/``thread_time`` (and
  their ``_ns`` forms, ``clock_gettime``), the no-argument forms of ``localtime``/``gmtime``/
  ``ctime``/``asctime``/``strftime``, and ``datetime.datetime.now``/``utcnow``/``today``,
  ``datetime.date.today`` read a frozen instant. A stopwatch around a call then reads 0 s: speed is
  judged by the sandbox's time limits (which the rewards derive from the reference's time), never
  by a test's own clock. ``time.sleep`` still sleeps.

What stays chance (object addresses, ``/proc``, thread scheduling, reading ``/dev/urandom``) is
left to the rewards' repeated runs. The sandbox's own code keeps the real clock: it binds the
functions it needs before ``settle`` runs (see ``REAL_MONOTONIC``).
"""

from __future__ import annotations

import datetime
import os
import random
import time

SEED = 0
# The frozen instant: 2024-01-01 00:00:00 UTC, and a monotonic clock reading of 1000 s.
EPOCH_S = 1_704_067_200.0
MONOTONIC_S = 1000.0
REAL_MONOTONIC = time.monotonic  # for the harness: bound before any process freezes the clock

_CLOCKS = {
    "time": EPOCH_S, "monotonic": MONOTONIC_S, "perf_counter": MONOTONIC_S,
    "process_time": 0.0, "thread_time": 0.0,
}  # fmt: skip


def _clock_patches() -> dict[str, object]:
    """The frozen ``time`` functions, built once (in the zygotes, before any fork)."""
    patches: dict[str, object] = {}
    for name, value in _CLOCKS.items():
        patches[name] = lambda _v=value: _v
        patches[name + "_ns"] = lambda _v=value: int(_v * 1e9)
    patches["clock_gettime"] = lambda clk_id: EPOCH_S if clk_id == time.CLOCK_REALTIME else MONOTONIC_S
    patches["clock_gettime_ns"] = lambda clk_id: int(patches["clock_gettime"](clk_id) * 1e9)  # type: ignore[operator]
    real = {name: getattr(time, name) for name in ("localtime", "gmtime", "ctime", "asctime", "strftime")}
    for name in ("localtime", "gmtime", "ctime"):
        patches[name] = lambda secs=None, _real=real[name]: _real(EPOCH_S if secs is None else secs)
    patches["asctime"] = lambda t=None: real["asctime"](real["localtime"](EPOCH_S) if t is None else t)
    patches["strftime"] = lambda fmt, t=None: real["strftime"](fmt, real["localtime"](EPOCH_S) if t is None else t)
    return patches


class _FrozenDateTime(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls.fromtimestamp(EPOCH_S, tz)

    @classmethod
    def utcnow(cls):
        return cls.fromtimestamp(EPOCH_S, datetime.timezone.utc).replace(tzinfo=None)

    @classmethod
    def today(cls):
        return cls.fromtimestamp(EPOCH_S)


class _FrozenDate(datetime.date):
    @classmethod
    def today(cls):
        return cls.fromtimestamp(EPOCH_S)


for _cls, _name in ((_FrozenDateTime, "datetime"), (_FrozenDate, "date")):
    _cls.__name__ = _cls.__qualname__ = _name
    _cls.__module__ = "datetime"
_TIME_PATCHES = _clock_patches()
_REAL_SEED = random.Random.seed


def _seed_or_fixed(self, a=None, version=2):  # random.seed() and Random() without a seed
    return _REAL_SEED(self, SEED if a is None else a, version)


def _seed_entropy(seed: int) -> None:
    stream = random.Random(seed ^ 0x5EED)

    def urandom(size: int) -> bytes:
        if not isinstance(size, int) or isinstance(size, bool):
            raise TypeError("an integer is required")
        if size < 0:
            raise ValueError("negative argument not allowed")
        return stream.randbytes(size)

    os.urandom = urandom
    if hasattr(os, "getrandom"):
        os.getrandom = lambda size, flags=0: urandom(size)
    random._urandom = urandom  # type: ignore[attr-defined]  # SystemRandom, and so secrets
    random.Random.seed = _seed_or_fixed  # type: ignore[method-assign]
    random.seed = random._inst.seed  # type: ignore[attr-defined]  # the module's bound method, rebound
    random.seed(seed)


def reseed(seed: int = SEED) -> None:
    """Put ``random``'s generator back to its settled state (after the program has loaded, so that
    the calls a test makes see the same draws whatever the program drew at import)."""
    random.seed(seed)


def settle(seed: int = SEED) -> None:
    """Make this process's chance sources repeatable (call once, in the forked child, before the
    program or the test runs)."""
    _seed_entropy(seed)
    for name, value in _TIME_PATCHES.items():
        setattr(time, name, value)
    datetime.datetime, datetime.date = _FrozenDateTime, _FrozenDate
