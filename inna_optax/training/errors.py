"""The errors of the training layer's inputs, each reported by the command line in
one line with exit code 2."""


class DataError(ValueError):
    """A data file is missing, truncated, corrupted or mislabelled."""
