"""The errors of the training layer's inputs and outputs, each reported by the command line in
one line with exit code 2."""


class DataError(ValueError):
    """A data file is missing, truncated, corrupted or mislabelled."""


class RunDirError(RuntimeError):
    """The output directory cannot be used as asked; the message says why."""
