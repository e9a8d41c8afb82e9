"""dlc: a deep-learning compiler. Tensor expressions and ONNX models to fast native code.

Light to import: nothing here loads llvmlite or onnx until it is needed.
"""

__version__ = "0.1.0"

from dlc import te  # noqa: E402,F401

# Imported eagerly (it loads no llvmlite) so that the name ``dlc.build`` is the function:
# a lazy ``from dlc.build import ...`` would rebind it to the submodule on first use.
from dlc.build import build  # noqa: E402,F401
from dlc.compile import compile  # noqa: E402,F401,A004  (the function, not the module)
from dlc.errors import (  # noqa: E402,F401
    ArgumentError,
    ArtifactError,
    CodegenError,
    DlcError,
    DlcTypeError,
    InternalError,
    LoweringError,
    ModelError,
    ScheduleError,
    TargetError,
    UnsupportedOpError,
)
from dlc.target import Target  # noqa: E402,F401
from dlc.tir.schedule import Loop, Schedule, Trace  # noqa: E402,F401
from dlc.tir.stmt import ForKind  # noqa: E402,F401


def lower(sch, name=None):
    """Lower a Schedule to loop IR (a PrimFunc; print it to read the loops)."""
    from dlc.tir.lower import lower as _lower

    return _lower(sch, name)

