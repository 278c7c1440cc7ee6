"""Where artifacts run: one Runner per runtime (shared by the checker and the benchmark), and timing."""

from .runners import Runner, measure_latency

__all__ = ["Runner", "measure_latency"]
