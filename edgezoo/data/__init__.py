"""Data sets that ship inside installed packages; each loader returns a TaskData."""

from .base import TaskData

__all__ = ["TaskData"]
