"""Errors that gen_loop raises on bad input, each with a message that says what to do."""

from __future__ import annotations


class GenLoopError(Exception):
    """Base class: an error the command line prints as one clear message, without a traceback."""


class ConfigError(GenLoopError):
    """A configuration value is invalid; the message names the config key."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(f"config key '{key}': {message}")


class InputDataError(GenLoopError):
    """Input data (a target folder, a dataset, a weights file) is missing or unusable."""


class GeneratorError(GenLoopError):
    """A generator could not make a batch (an external simulator failed, timed out or wrote
    unusable output); the loop records the trial as failed with this message and goes on."""


class FinetuneError(GenLoopError):
    """The fine-tune could not be made (the user's trainer command failed or wrote unusable
    output); the run keeps its search results, records the failed verdict and stops with this
    message."""
