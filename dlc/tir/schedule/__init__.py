"""The Schedule API (primitives on loops) and its replayable trace."""

from dlc.tir.schedule.schedule import Loop, Schedule  # noqa: F401
from dlc.tir.schedule.trace import Trace  # noqa: F401
