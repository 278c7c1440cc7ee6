"""int8 per runtime, fed by one calibration interface (CalibrationSet)."""

from .calibration import CalibrationSet

__all__ = ["CalibrationSet"]
