"""The lightweight runtime: loads compiled code with NumPy and ctypes only.

    model = dlc.runtime.load("model.dlc")
    outputs = model.run({"x": x})
"""

from dlc.runtime.loader import LoadedModel, load  # noqa: F401
from dlc.runtime.module import Kernel, Module, default_num_threads, load_module  # noqa: F401
