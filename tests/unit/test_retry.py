"""Tests for chaoskit.clients.retry.call_with_policy on a fake clock (no real waiting)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from chaoskit.clients.retry import RetryPolicy, call_with_policy
from chaoskit.experiment import ClientSpec
from chaoskit.history import OpType
from tests.unit.fakes import FakeTime


class Flaky:
    """Raises the given exceptions in order, then returns ``result``."""

    def __init__(self, errors: Sequence[BaseException], result: object = "done") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


class Indeterminate(Exception):
    pass


class Refused(Exception):
    pass


def classify(exc: BaseException) -> OpType:
    return OpType.INFO if isinstance(exc, Indeterminate) else OpType.FAIL


POLICY = RetryPolicy(deadline_s=10.0, initial_wait_s=0.05, max_wait_s=1.0, jitter_s=0.0)


def _call(fn: Callable[[], object], policy: RetryPolicy = POLICY, **kw: object):  # type: ignore[no-untyped-def]
    ft = FakeTime()
    out = call_with_policy(fn, classify, policy, sleep=ft.sleep, clock=ft.clock, **kw)  # type: ignore[arg-type]
    return out, ft


def test_success_after_failures_is_ok_with_value() -> None:
    fn = Flaky([Refused("a"), Indeterminate("b"), Refused("c")], result=42)
    out, ft = _call(fn)
    assert out.type is OpType.OK
    assert out.value == 42
    assert fn.calls == 4 and out.attempts == 4, "the outcome says how many times the op was sent"
    assert len(ft.sleeps) == 3


def test_all_attempts_failing_with_fail_classification_is_fail() -> None:
    fn = Flaky([Refused(f"refused {i}") for i in range(1000)])
    out, _ = _call(fn)
    assert out.type is OpType.FAIL
    assert out.error is not None and out.error.startswith("Refused: refused")
    assert fn.calls > 1


def test_one_indeterminate_attempt_makes_the_op_info_even_if_later_ones_fail() -> None:
    fn = Flaky([Refused("a"), Indeterminate("timeout")] + [Refused("b")] * 1000)
    out, _ = _call(fn)
    assert out.type is OpType.INFO
    assert out.error == "Refused: b"


def test_no_retry_policy_makes_exactly_one_attempt() -> None:
    fn = Flaky([Refused("x"), Refused("y")], result=1)
    out, ft = _call(fn, RetryPolicy.none())
    assert out.type is OpType.FAIL
    assert fn.calls == 1 and out.attempts == 1
    assert ft.sleeps == []


def test_no_retry_policy_indeterminate_error_is_info() -> None:
    out, _ = _call(Flaky([Indeterminate("t")]), RetryPolicy.none())
    assert out.type is OpType.INFO


def test_no_retry_policy_success_is_ok() -> None:
    out, _ = _call(Flaky([], result="v"), RetryPolicy.none())
    assert (out.type, out.value) == (OpType.OK, "v")


def test_before_retry_is_called_between_attempts_only() -> None:
    seen: list[int] = []
    fn = Flaky([Refused("a"), Refused("b")], result=1)
    out, _ = _call(fn, before_retry=lambda: seen.append(fn.calls))
    assert out.type is OpType.OK
    assert seen == [1, 2]  # after attempt 1 and after attempt 2, never after the successful 3rd


def test_deadline_stops_retries() -> None:
    policy = RetryPolicy(deadline_s=2.0, initial_wait_s=0.5, max_wait_s=0.5, jitter_s=0.0)
    fn = Flaky([Refused("r")] * 1000)
    out, ft = _call(fn, policy)
    assert out.type is OpType.FAIL
    assert 2.0 <= ft.now < 2.0 + 0.5 + 1e-9
    assert fn.calls == 5 == out.attempts  # attempts at 0, 0.5, 1.0, 1.5, 2.0


def test_backoff_is_exponential_and_capped() -> None:
    policy = RetryPolicy(deadline_s=100.0, initial_wait_s=0.1, max_wait_s=0.5, jitter_s=0.0)
    _, ft = _call(Flaky([Refused("r")] * 6, result=1), policy)
    assert ft.sleeps == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5, 0.5])


def test_exceptions_outside_retry_on_propagate() -> None:
    with pytest.raises(KeyError):
        _call(Flaky([KeyError("k")]), retry_on=(Refused, Indeterminate))


def test_long_error_text_is_shortened() -> None:
    out, _ = _call(Flaky([Refused("x" * 500)]), RetryPolicy.none())
    assert out.error is not None and len(out.error) == 200 and out.error.endswith("...")


def test_policy_from_client_spec() -> None:
    spec = ClientSpec(pattern="sentinel-backoff", timeout_s=0.5, op_deadline_s=3.0,
                      backoff_initial_s=0.1, backoff_max_s=0.4, backoff_jitter_s=0.0)
    policy = RetryPolicy.from_spec(spec)
    assert (policy.retry, policy.deadline_s, policy.initial_wait_s, policy.max_wait_s, policy.jitter_s) \
        == (True, 3.0, 0.1, 0.4, 0.0)
