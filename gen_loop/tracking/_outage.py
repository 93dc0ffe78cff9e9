"""Skip and count: how a logging call behaves when the store cannot be reached.

A call is not attempted while :class:`~gen_loop.tracking._server.StoreHealth` says the store
is down, and a call that fails on the way to the store is counted instead of raised (the
policy is in :mod:`gen_loop.tracking._server`). Bad arguments and programming errors still
raise.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from gen_loop.tracking._server import StoreHealth

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])


class _NoRun(ConnectionError):
    """The run was never created because the store was unreachable."""


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Errors of a store that cannot be reached or refuses a write (not programming errors)."""
    from mlflow.exceptions import MlflowException

    errors: tuple[type[BaseException], ...] = (MlflowException, ConnectionError, TimeoutError)
    try:
        import requests

        errors += (requests.exceptions.RequestException,)
    except ImportError:  # pragma: no cover - a dependency of mlflow
        pass
    return errors


def attempt(
    health: StoreHealth, trial: int | None, what: str, call: Callable[[], _T]
) -> tuple[bool, _T | None]:
    """Make one logging call unless the store is down; count it when skipped or failed.

    Args:
        health: The store's health, shared by the parent run and its trials.
        trial: The trial number the call belongs to; None for the parent run.
        what: The call, for the warning and the count.
        call: Does the call.

    Returns:
        Whether the call went through, and its result (None when it did not).
    """
    if not health.available():
        health.lost(trial, what)
        return False, None
    try:
        result = call()
    except _transport_errors() as err:
        health.lost(trial, what, err)
        return False, None
    if health.down:
        health.recovered()
    return True, result


def _tolerant(fallback: Callable[[], object] = lambda: None) -> Callable[[_F], _F]:
    """Make a logging method skip and count its call instead of raising when the store fails.

    The method's object needs ``_health`` (a StoreHealth) and ``_trial_number``.

    Args:
        fallback: Makes the value returned for a skipped or failed call.
    """

    def decorate(method: _F) -> _F:
        @wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            done, result = attempt(
                self._health,
                self._trial_number,
                method.__name__,
                lambda: method(self, *args, **kwargs),
            )
            return result if done else fallback()

        return cast(_F, wrapper)

    return decorate
