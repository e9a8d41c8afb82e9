"""dlc: a deep-learning compiler. Tensor expressions and ONNX models to fast native code.

Light to import: nothing here loads llvmlite or onnx until it is needed.
"""

__version__ = "0.1.0"

from dlc import te  # noqa: E402,F401
from dlc.errors import (  # noqa: E402,F401
    ArgumentError,
    ArtifactError,
    CodegenError,
    DlcError,
    DlcTypeError,
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


def build(sch, target=None, name=None):
    """Compile a Schedule for ``target`` ("llvm" by default); returns a runtime Module."""
    from dlc.build import build as _build

    return _build(sch, target, name)
