"""The wire between the candidate process and the test process.

Values cross as pickles, but only *plain data* can come out on the test side: the unpickler there
refuses every global except ``complex``, so whatever bytes a hostile candidate writes, the test
process gets back None, bool, int, float, complex, str, bytes, bytearray, list, tuple, dict, set,
frozenset, or an opaque ``RemoteRef`` (an id naming an object that stays in the candidate). A
subclass of int whose ``__eq__`` always says True therefore can never reach an assertion.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
from typing import Any, Callable

_HEADER = struct.Struct("!I")
PLAIN_SCALARS = (type(None), bool, int, float, complex, str, bytes)
PLAIN_CONTAINERS = (list, tuple, dict, set, frozenset, bytearray)
# Built-in types may cross as values (``remove_datatype(xs, int)``): they are harmless objects.
# (Never ``type`` or ``object``: a forged pickle could call them to build a class with a lying __eq__.)
PLAIN_TYPES = {t.__name__: t for t in (int, float, complex, str, bytes, bool, list, tuple, dict, set,
                                       frozenset, bytearray)}


class WireError(Exception):
    """The peer closed the channel or sent something that breaks the protocol."""


class RefId(int):
    """Marks an object id inside a pickle (travels as a persistent id)."""


class Record(tuple):
    """A namedtuple's value on the test side: compares exactly like a tuple (as a namedtuple does)
    and reads its fields by name. Built only here, from field names and plain values."""

    _fields: tuple[str, ...] = ()

    @classmethod
    def make(cls, fields: tuple[str, ...], values: tuple) -> "Record":
        record = cls(values)
        object.__setattr__(record, "__dict__", {"_fields": fields})
        return record

    def __getattr__(self, name: str):
        fields = self.__dict__.get("_fields", ())
        if name in fields:
            return self[fields.index(name)]
        raise AttributeError(name)

    def _asdict(self) -> dict:
        return dict(zip(self._fields, self))

    def __repr__(self) -> str:
        return "(" + ", ".join(f"{k}={v!r}" for k, v in zip(self._fields, self)) + ")"


def is_plain(value: Any, extra: tuple[type, ...] = (), depth: int = 0) -> bool:
    """True if ``value`` is built only from exact plain types (no subclasses) or ``extra`` types.

    Nesting deeper than 200 levels (or a cycle) counts as not plain.
    """
    kind = type(value)
    if kind in PLAIN_SCALARS or kind is bytearray or kind in extra:
        return True
    if kind is Record:
        return all(is_plain(v, extra, depth + 1) for v in value)
    if kind is type and PLAIN_TYPES.get(value.__name__) is value:
        return True
    if depth > 200:
        return False
    if kind in (list, tuple, set, frozenset):
        return all(is_plain(v, extra, depth + 1) for v in value)
    if kind is dict:
        return all(is_plain(k, extra, depth + 1) and is_plain(v, extra, depth + 1) for k, v in value.items())
    return False


# Standard-library mappings whose equality with a dict is a plain dict's (for tests comparing them
# with dict literals, as MBPP's do); they cross as dicts.
_DICT_LIKE = (collections.Counter, collections.OrderedDict, collections.defaultdict)


def plain_copy(value: Any, depth: int = 0) -> Any | None:
    """A plain-data copy of ``value`` when one keeps its meaning in comparisons, else None.

    Containers of exact plain types are copied through; standard dict-likes become dicts; tuple,
    int, float, str and bytes subclasses that keep their base's ``__eq__`` and ``__hash__``
    (namedtuples, IntEnum members) become their base type.
    """
    if is_plain(value):
        return value
    if depth > 200:
        return None
    kind = type(value)
    for base in (int, float, str, bytes):  # IntEnum and friends: compare exactly like their base
        if isinstance(value, base) and kind.__eq__ is base.__eq__ and kind.__hash__ is base.__hash__:
            return base(value)
    if kind in _DICT_LIKE or kind is dict:
        out = {}
        for k, v in value.items():
            pk, pv = plain_copy(k, depth + 1), plain_copy(v, depth + 1)
            if (pk is None and k is not None) or (pv is None and v is not None):
                return None
            out[pk] = pv
        return out
    if kind in (list, set, frozenset) or (isinstance(value, tuple) and kind.__eq__ is tuple.__eq__):
        items = [plain_copy(v, depth + 1) for v in value]
        if any(p is None and v is not None for p, v in zip(items, value)):
            return None
        fields = getattr(kind, "_fields", None)
        if isinstance(value, tuple) and isinstance(fields, tuple) and all(type(f) is str for f in fields):
            return Record.make(tuple(fields), tuple(items))  # a namedtuple: keep its field names
        return (tuple if isinstance(value, tuple) else kind)(items)
    return None


def dumps(value: Any, ref_of: Callable[[Any], int | None] | None = None) -> bytes:
    """Pickle ``value``; objects for which ``ref_of`` returns an id travel as references, and
    records as their field names and values."""

    def persistent_id(obj: Any) -> Any:
        if type(obj) is Record:
            return ("record", tuple(obj._fields), tuple(obj))
        return ref_of(obj) if ref_of is not None else None

    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=5)
    pickler.persistent_id = persistent_id  # type: ignore[method-assign]
    pickler.dump(value)
    return buf.getvalue()


class _PlainUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, load_ref: Callable[[int], Any]):
        super().__init__(io.BytesIO(data))
        self._load_ref = load_ref

    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and (name == "complex" or name in PLAIN_TYPES):
            return PLAIN_TYPES.get(name, complex)
        raise WireError(f"refused to build {module}.{name} from the other process")

    def persistent_load(self, pid: Any) -> Any:
        if type(pid) is int:
            return self._load_ref(pid)
        if (type(pid) is tuple and len(pid) == 3 and pid[0] == "record" and type(pid[1]) is tuple
                and type(pid[2]) is tuple and len(pid[1]) == len(pid[2])
                and all(type(f) is str and f.isidentifier() for f in pid[1])):
            return Record.make(pid[1], pid[2])
        raise WireError("malformed reference")


def loads(data: bytes, load_ref: Callable[[int], Any]) -> Any:
    """Unpickle plain data only; references become whatever ``load_ref`` makes of an id."""
    try:
        return _PlainUnpickler(data, load_ref).load()
    except WireError:
        raise
    except Exception as exc:  # a malformed pickle from a hostile peer
        raise WireError(f"unreadable message: {type(exc).__name__}: {exc}") from None


def send(fd: int, payload: bytes) -> None:
    data = _HEADER.pack(len(payload)) + payload
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BrokenPipeError as exc:
            raise WireError("peer closed the channel") from exc
        view = view[n:]


class Reader:
    """Length-prefixed messages from a descriptor, usually in one ``read`` each (buffered)."""

    def __init__(self, fd: int, max_bytes: int):
        self.fd = fd
        self.max_bytes = max_bytes
        self.buf = b""

    def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            try:
                chunk = os.read(self.fd, max(65536, n - len(self.buf)))
            except ConnectionResetError as exc:
                raise WireError("peer closed the channel") from exc
            if not chunk:
                raise WireError("peer closed the channel")
            self.buf += chunk

    def recv(self) -> bytes:
        self._fill(_HEADER.size)
        (size,) = _HEADER.unpack_from(self.buf)
        if size > self.max_bytes:
            raise WireError(f"message of {size} bytes exceeds the limit of {self.max_bytes}")
        self._fill(_HEADER.size + size)
        message = self.buf[_HEADER.size:_HEADER.size + size]
        self.buf = self.buf[_HEADER.size + size:]
        return message
