"""The zoo: one file per model family; importing a file registers its models."""

from . import mobilenet  # noqa: F401
