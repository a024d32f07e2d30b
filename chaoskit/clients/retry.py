"""Retry presets on top of tenacity, and the rule that turns attempts into one op outcome.

An op is ``ok`` if any attempt succeeded. If every attempt failed, it is ``info`` when *any*
attempt was indeterminate (it may have been applied), else ``fail``. Sleep and clock are
injectable so unit tests of the policies never wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import tenacity

from chaoskit.clients.base import Outcome
from chaoskit.history import OpType

if TYPE_CHECKING:
    from chaoskit.experiment import ClientSpec

Classify = Callable[[BaseException], OpType]


@dataclass(frozen=True)
class RetryPolicy:
    """``retry=False``: one attempt. Else exponential backoff from ``initial_wait_s``, capped, plus jitter."""

    retry: bool = True
    deadline_s: float = 10.0
    initial_wait_s: float = 0.05
    max_wait_s: float = 1.0
    jitter_s: float = 0.05

    @classmethod
    def none(cls) -> RetryPolicy:
        return cls(retry=False)

    @classmethod
    def from_spec(cls, spec: ClientSpec) -> RetryPolicy:
        return cls(deadline_s=spec.op_deadline_s, initial_wait_s=spec.backoff_initial_s,
                   max_wait_s=spec.backoff_max_s, jitter_s=spec.backoff_jitter_s)


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."


def call_with_policy(
    fn: Callable[[], Any],
    classify: Classify,
    policy: RetryPolicy,
    *,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    before_retry: Callable[[], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Run ``fn`` under ``policy``; return its Outcome (with how many attempts it took). Only exceptions in
    ``retry_on`` are caught."""
    indeterminate = False
    attempts = 0

    def attempt() -> Any:
        nonlocal indeterminate, attempts
        attempts += 1
        try:
            return fn()
        except retry_on as exc:
            if classify(exc) is OpType.INFO:
                indeterminate = True
            raise

    if not policy.retry:
        try:
            return Outcome(OpType.OK, attempt(), attempts=attempts)
        except retry_on as exc:
            return Outcome(OpType.INFO if indeterminate else OpType.FAIL, error=_short(exc), attempts=attempts)

    def on_retry(_state: tenacity.RetryCallState) -> None:
        if before_retry is not None:
            before_retry()

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(retry_on),
        wait=tenacity.wait_exponential(multiplier=policy.initial_wait_s, max=policy.max_wait_s)
        + tenacity.wait_random(0, policy.jitter_s),
        stop=_stop_after(policy.deadline_s, clock),
        before_sleep=on_retry,
        sleep=sleep,
        reraise=True,
    )
    try:
        return Outcome(OpType.OK, retrying(attempt), attempts=attempts)
    except retry_on as exc:
        return Outcome(OpType.INFO if indeterminate else OpType.FAIL, error=_short(exc), attempts=attempts)


def _stop_after(deadline_s: float, clock: Callable[[], float]) -> Callable[[tenacity.RetryCallState], bool]:
    """tenacity's stop_after_delay, on an injectable clock (tests advance a fake one)."""
    start = clock()
    return lambda _state: clock() - start >= deadline_s
