"""dlc: a deep-learning compiler. Tensor expressions and ONNX models to fast native code.

Light to import: ``import dlc`` (and so ``import dlc.runtime``, which a deployed model
needs) loads only the errors and the version; the compiler's layers (tensor expressions,
loop IR, graphs, ops, code generation) load when a name below is first used.
"""

import importlib
import sys
import types

__version__ = "0.1.0"

from dlc.errors import (  # noqa: E402,F401
    ArgumentError,
    ArtifactError,
    CodegenError,
    DlcError,
    DlcTypeError,
    DlcWarning,
    InternalError,
    LoweringError,
    ModelError,
    ScheduleError,
    TargetError,
    UnsupportedOpError,
)

# Public name -> (module, attribute); attribute None means the module itself.
_LAZY = {
    "te": ("dlc.te", None),
    "build": ("dlc.build", "build"),
    "compile": ("dlc.compile", "compile"),
    "Target": ("dlc.target", "Target"),
    "Loop": ("dlc.tir.schedule", "Loop"),
    "Schedule": ("dlc.tir.schedule", "Schedule"),
    "Trace": ("dlc.tir.schedule", "Trace"),
    "ForKind": ("dlc.tir.stmt", "ForKind"),
}
# Functions named like the submodule that defines them: importing the submodule must not
# rebind ``dlc.build`` / ``dlc.compile`` to the module.
_FUNCTIONS_NAMED_LIKE_MODULES = ("build", "compile")


def __getattr__(name: str):
    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        module = importlib.import_module(module_name)
        value = module if attribute is None else getattr(module, attribute)
        globals()[name] = value
        return value
    try:  # a subpackage used as an attribute (dlc.tir.stmt after import dlc)
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    def __setattr__(self, name, value):
        if name in _FUNCTIONS_NAMED_LIKE_MODULES and isinstance(value, types.ModuleType):
            return  # the import system binding the submodule: keep the function (lazily)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def lower(sch, name=None):
    """Lower a Schedule to loop IR (a PrimFunc; print it to read the loops)."""
    from dlc.tir.lower import lower as _lower

    return _lower(sch, name)
