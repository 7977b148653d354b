"""A digest of a plain value that is equal for two values exactly when Python's ``==`` says so.

Differential testing (EvalPlus) compares a candidate's return value with the reference's. Some
of those values are huge (HumanEval+'s ``string_sequence`` returns strings of 100 MB in all over
its inputs), and copying them out of the sandbox for every candidate would cost more than running
the candidate. So a large value crosses as its fingerprint, and the caller compares fingerprints.

That is sound only if the fingerprint respects Python's equality on plain data, so values are
first put in a normal form that follows it: ``True == 1 == 1.0 == 1+0j``, ``-0.0 == 0``,
``bytearray(b"a") == b"a"``, ``{1, 2} == frozenset({2, 1})``, a dict equals a dict with the same
items in another order, a list never equals a tuple. A NaN is unequal to everything, itself
included: a value holding one has no fingerprint (``None``), and callers treat ``None`` as equal
to nothing.

Normalising costs a Python step per item, too slow for a list of a million tuples (MBPP+'s
``combinations_colors`` returns such lists). Containers that large get a second kind of
fingerprint, the digest of their pickle with memoisation off (``p:``; the normal form's is
``n:``): equal digests still mean equal values (same types, same items, same float bits), but
equal values may have different digests (``1`` against ``1.0``, a set built in another order), so
the price of speed is that such a value can fail where Python's ``==`` would have passed it,
never the reverse. The one exception, noted: two NaNs at the same place compare equal this way.
"""

from __future__ import annotations

import hashlib
import math
import pickle
from typing import Any

_MAX_DEPTH = 200


class _Unequal(Exception):
    """The value holds a NaN (or is nested too deep): it compares equal to nothing."""


def _number(value: int | float | complex) -> bytes:
    if type(value) is complex:
        if value.imag != 0 or math.isnan(value.imag):
            if math.isnan(value.real) or math.isnan(value.imag):
                raise _Unequal
            return b"c" + _number(value.real) + b"," + _number(value.imag)
        value = value.real
    if type(value) is float:
        if math.isnan(value):
            raise _Unequal
        if math.isinf(value):
            return b"+inf" if value > 0 else b"-inf"
        if value.is_integer():
            value = int(value)
        else:
            return b"f" + value.hex().encode()
    return b"n" + str(int(value)).encode() if abs(value) < 1 << 256 else b"n" + int(value).to_bytes(
        (int(value).bit_length() + 8) // 8, "little", signed=True).hex().encode()


def _update(h: "hashlib._Hash", value: Any, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _Unequal
    kind = type(value)
    if value is None:
        h.update(b"N;")
    elif kind in (bool, int, float, complex):
        h.update(_number(value) + b";")
    elif kind is str:
        data = value.encode("utf-8", "surrogatepass")
        h.update(b"s%d:" % len(data) + data)
    elif kind in (bytes, bytearray):
        h.update(b"b%d:" % len(value) + bytes(value))
    elif kind is list or isinstance(value, tuple):
        h.update((b"l" if kind is list else b"t") + b"%d[" % len(value))
        for item in value:
            _update(h, item, depth + 1)
        h.update(b"]")
    elif kind in (set, frozenset):
        h.update(b"S%d{" % len(value) + b"".join(sorted(_digest(v, depth + 1) for v in value)) + b"}")
    elif kind is dict:
        pairs = sorted(_digest(k, depth + 1) + _digest(v, depth + 1) for k, v in value.items())
        h.update(b"D%d{" % len(value) + b"".join(pairs) + b"}")
    elif kind is type:
        h.update(b"T" + value.__qualname__.encode() + b";")
    else:
        raise TypeError(f"not plain data: {kind.__name__}")


def _digest(value: Any, depth: int) -> bytes:
    h = hashlib.sha256()
    _update(h, value, depth)
    return h.digest()


class _HashSink:
    def __init__(self) -> None:
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return len(data)


def fingerprint(value: Any, fast: bool = False) -> str | None:
    """``n:`` and the hex digest of ``value``'s normal form, or None when it equals nothing (holds
    a NaN); with ``fast`` (for huge containers), ``p:`` and the digest of its pickle.

    Raises TypeError for anything but plain data (what ``wire.is_plain`` accepts)."""
    if fast:
        sink = _HashSink()
        pickler = pickle.Pickler(sink, protocol=4)  # streamed into the hash: no copy of the value
        pickler.fast = True  # no memo: equal items pickle the same whether or not they are one object
        try:
            pickler.dump(value)
        except (pickle.PicklingError, TypeError, ValueError, RecursionError) as exc:
            raise TypeError(f"not plain data: {exc}") from None
        return "p:" + sink.hash.hexdigest()
    try:
        return "n:" + _digest(value, 0).hex()
    except _Unequal:
        return None


def matches(digest: str | None, value: Any) -> bool:
    """Whether plain ``value`` has this fingerprint (computed the same way: ``n:`` or ``p:``)."""
    if digest is None:
        return False
    return fingerprint(value, fast=digest.startswith("p:")) == digest


def rough_size(value: Any, budget: int) -> int:
    """An estimate of ``value``'s size in bytes, counting stops once it passes ``budget``
    (so that sizing a huge value costs no more than sizing a value of ``budget`` bytes)."""
    total, stack = 0, [value]
    while stack and total <= budget:
        item = stack.pop()
        kind = type(item)
        if kind in (str, bytes, bytearray):
            total += len(item) + 8
        elif kind in (list, tuple, set, frozenset) or isinstance(item, tuple):
            total += 8 + 8 * len(item)
            stack.extend(item)
        elif kind is dict:
            total += 8 + 16 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif kind is int:
            total += 8 + item.bit_length() // 8
        else:
            total += 8
    return total
