"""Differential testing in the sandbox (``CallsJob``): values come back, expected values never go in,
and a huge value comes back as a digest that respects ``==`` (``sandbox/fingerprint.py``)."""

from __future__ import annotations

import json

import pytest

from sandbox import Sandbox
from sandbox.fingerprint import fingerprint, matches
from sandbox.types import CallsJob, Fingerprint, JobError

PROGRAM = """
import time
def f(x, y=1):
    if x == 3:
        raise ValueError('three')
    return [x, y, {x: (x, 1.5)}]
def text(n):
    return 'ab' * n
def pairs(n):
    return [(i, str(i)) for i in range(n)]
def spin(x):
    while True:
        pass
def nap(s):
    time.sleep(s)
    return s
class Agreeable:
    def __eq__(self, other):
        return True
def agreeable(x):
    return Agreeable() if x else None
class Str(str):
    def __eq__(self, other):
        return True
    __hash__ = str.__hash__
def liar(x):
    return Str('no')
calls = []
def counting(x):
    calls.append(x)
    return len(calls)
"""


def job(name: str, *inputs: tuple, limit: float = 2.0, total: float = 20.0) -> CallsJob:
    return CallsJob(PROGRAM, name, tuple(inputs), (limit,) * len(inputs), total)


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox() as sb:
        yield sb


def test_values_come_back_in_order_and_a_raise_ends_the_calls(sandbox):
    result = sandbox.run_calls([job("f", (1,), (2, 5), (3,), (4,))])[0]
    assert [o.status for o in result.outcomes] == ["ok", "ok", "raised"]
    assert result.outcomes[0].value == [1, 1, {1: (1, 1.5)}]
    assert result.outcomes[1].value == [2, 5, {2: (2, 1.5)}]
    assert "ValueError: three" in result.outcomes[2].detail
    assert not result.all_ok


def test_calls_share_one_process_in_order(sandbox):
    result = sandbox.run_calls([job("counting", (7,), (8,), (9,))])[0]
    assert [o.value for o in result.outcomes] == [1, 2, 3]


def test_a_call_past_its_limit_times_out_and_ends_the_calls(sandbox):
    result = sandbox.run_calls([job("spin", (1,), (2,), limit=0.3)])[0]
    assert [o.status for o in result.outcomes] == ["timeout"]
    slow = sandbox.run_calls([job("nap", (0.01,), (0.5,), (0.01,), limit=0.2)])[0]
    assert [o.status for o in slow.outcomes] == ["ok", "timeout"]


def test_objects_with_their_own_eq_never_come_back_as_values(sandbox):
    result = sandbox.run_calls([job("agreeable", (1,), (0,)), job("liar", (1,))])
    assert [o.status for o in result[0].outcomes] == ["opaque", "ok"]  # opaque does not end the calls
    assert result[0].outcomes[0].value is None and result[0].outcomes[1].value is None
    assert [o.status for o in result[1].outcomes] == ["opaque"]


def test_load_errors_are_reported_not_raised(sandbox):
    broken, missing = sandbox.run_calls([CallsJob("def f(:\n", "f", ((1,),), (1.0,), 5.0), job("nope", (1,))])
    assert broken.outcomes == [] and "SyntaxError" in broken.load_error
    assert "does not define 'nope'" in missing.load_error


def test_huge_values_come_back_as_digests_that_respect_equality(sandbox):
    small, big = sandbox.run_calls([job("text", (10,), (100_000,)), job("pairs", (5,), (400_000,))])
    assert small.outcomes[0].value == "ab" * 10
    digest = small.outcomes[1].value
    assert type(digest) is Fingerprint and matches(digest.digest, "ab" * 100_000)
    assert not matches(digest.digest, "ab" * 99_999 + "ac")
    assert big.outcomes[0].value == [(i, str(i)) for i in range(5)]
    assert type(big.outcomes[1].value) is Fingerprint
    assert matches(big.outcomes[1].value.digest, [(i, str(i)) for i in range(400_000)])
    assert not matches(big.outcomes[1].value.digest, [(i, str(i)) for i in range(399_999)] + [(0, "0")])


def test_the_job_carries_inputs_only():
    """What goes into the sandbox: the program, the inputs and the limits. There is no field for an
    expected value, so none can leak to the candidate."""
    message = job("f", (1,), (2,)).to_dict()
    assert set(message) == {"kind", "program", "entry_point", "inputs", "limits", "total_limit", "fingerprint_over"}
    assert CallsJob.from_dict(json.loads(json.dumps(message))) == job("f", (1,), (2,))


def test_malformed_calls_jobs_are_refused():
    with pytest.raises(JobError):
        CallsJob(PROGRAM, "f", ((1,),), (1.0, 2.0), 5.0)
    with pytest.raises(JobError):
        CallsJob(PROGRAM, "not an identifier", ((1,),), (1.0,), 5.0)
    with pytest.raises(JobError):
        CallsJob(PROGRAM, "f", ((1,),), (float("inf"),), 5.0)


@pytest.mark.parametrize("a, b", [
    (1, True), (1, 1.0), (1, 1 + 0j), (0, -0.0), (2 ** 70, float(2 ** 70)), (b"ab", bytearray(b"ab")),
    ({1, 2}, frozenset({2, 1})), ({"a": 1, "b": [2]}, {"b": [2], "a": 1}), ([1, (2, "x")], [1.0, (2, "x")]),
    (float("inf"), float("inf")), (0.1, 0.1), (10 ** 5000, 10 ** 5000),
], ids=lambda v: type(v).__name__)
def test_equal_values_have_equal_fingerprints(a, b):
    assert a == b and fingerprint(a) == fingerprint(b) is not None


@pytest.mark.parametrize("a, b", [
    ([1, 2], (1, 2)), ("1", 1), (b"a", "a"), (0.1, 0.1000000001), ({1: 2}, {1: 3}), ({1}, {1, 2}),
    ([[1]], [[1], []]), (None, 0), (float("inf"), float("-inf")), (1 + 2j, 1 + 3j), (10 ** 5000, 10 ** 5000 + 1),
], ids=lambda v: type(v).__name__)
def test_unequal_values_have_unequal_fingerprints(a, b):
    assert a != b and fingerprint(a) != fingerprint(b)


def test_nan_equals_nothing():
    assert fingerprint(float("nan")) is None and fingerprint([1, float("nan")]) is None
    assert not matches(None, float("nan"))


def test_fast_fingerprints_never_call_unequal_values_equal():
    assert fingerprint([(1, "a")] * 3, fast=True) == fingerprint([(1, "a"), (1, "a"), (1, "a")], fast=True)
    assert fingerprint([1, 2], fast=True) != fingerprint((1, 2), fast=True)
    assert fingerprint([1, 2], fast=True) != fingerprint([1, 3], fast=True)
    # The documented price: equal values of other types may differ (a fail where == would pass).
    assert fingerprint([1], fast=True) != fingerprint([1.0], fast=True)
