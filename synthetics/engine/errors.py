"""Errors the engine raises for input it refuses."""


class EngineError(ValueError):
    """The engine cannot simulate with this input; the message says why."""


class InvalidTarget(EngineError):
    """A manual run asked for a number of sessions outside 1..max_per_run."""
