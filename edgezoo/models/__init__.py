"""The zoo: one file per model family; importing a file registers its models."""

from . import cnn, mlp, mobilenet  # noqa: F401
