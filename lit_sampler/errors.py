"""Every user-facing error class, in one place.

The CLI turns each into one line on stderr and a non-zero exit (:mod:`lit_sampler.cli`); messages
name the file, the key and what was expected versus found.
"""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data or data configuration; the message names file, slice, key, expected vs found."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the network asked for. The message names
    the file, the key and what was expected versus found."""


class OutputError(OSError):
    """The run directory cannot take a result (unwritable, disk full) or holds a damaged one.

    ``str()`` is the whole message; ``errno`` is kept from the underlying error.
    """

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.errno = code


class MissingLambdaError(ValueError):
    """A compressed-sensing baseline has no λ for a noise level of the data. ``missing``: method →
    the noise keys without a λ; ``given``: method → the keys its table has. The message, with the
    fix and the tuning command, is made where it is raised
    (:func:`lit_sampler.evaluation.tuning.missing_lambda_error`) and made again by the CLI with the run's own
    command line (:func:`lit_sampler.failures.report`): this module imports nothing of the package."""

    def __init__(self, missing: dict[str, list[str]], given: dict[str, list[str]], message: str):
        self.missing = missing
        self.given = given
        super().__init__(message)


class ResumeMismatchError(ValueError):
    """The output directory holds results of other settings: resuming there would mix them."""


class DivergenceError(RuntimeError):
    """A chain diverged and ``fail_fast`` is set (the message names the item and the level)."""


class RunInterrupted(RuntimeError):
    """The run stopped on a signal at a batch boundary; ``exit_code`` is ``128 + signal``."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + int(signum)
