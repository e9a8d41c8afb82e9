"""The lightweight runtime: loads compiled code with NumPy and ctypes only."""

from dlc.runtime.module import Kernel, Module, default_num_threads, load_module  # noqa: F401
