"""The errors every layer shares: a refused request (ApplicationError, Conflict) and a failed run (RunFailed).

The failure rule of every run service: a refusal raises an ApplicationError before anything is
written; any other failure is rolled back, recorded in the ledger as a failed run and raised as
RunFailed (GeneratorBusy when the generator lock did not come in time). The API answers 400 for an
ApplicationError, 409 for a Conflict, 404 for a NotFound, 503 for GeneratorBusy and 500 for any other RunFailed;
commands print the message and exit non-zero. The engine keeps its own EngineError.
"""

from __future__ import annotations


class ApplicationError(Exception):
    """The caller asked for something invalid; `message` says what, for a person (API: 400)."""

    def __init__(self, message: str, *, extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


def whole_number_required(name: str, value: object, low: int, high: int) -> int:
    """`value` when it is a whole number (not a bool) from low to high, else an ApplicationError."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApplicationError(
            f"{name} must be a whole number from {low} to {high}, got {value!r}",
            extra={"field": name},
        )
    return value


class Conflict(ApplicationError):
    """The request is valid but the generator's state refuses it now (API: 409)."""


class NotFound(ApplicationError):
    """The thing asked for does not exist (API: 404)."""


class RunFailed(RuntimeError):
    """A run failed and was rolled back; `run_id` is its failed row in the ledger (API: 500)."""

    def __init__(self, message: str, *, run_id: int | None) -> None:
        super().__init__(message)
        self.run_id = run_id


class GeneratorBusy(RunFailed):
    """The generator lock (or SQLite's write lock) did not come in time: nothing was written (API: 503)."""

    def __init__(self, message: str, *, run_id: int | None = None, retry_after: int = 5) -> None:
        super().__init__(message, run_id=run_id)
        self.retry_after = retry_after


class DatabaseBusy(GeneratorBusy):
    """SQLite's single write lock did not come in time for a write other than a run (API: 503)."""

    def __init__(self, *, retry_after: int) -> None:
        super().__init__(
            "The database is busy with another write; try again in a few seconds.",
            retry_after=retry_after,
        )
