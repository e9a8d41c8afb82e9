"""Converters from ONNX nodes to dlc graph nodes, registered per op and opset.

``@converter("Softmax", since=13)`` registers a function used for models whose opset is
13 or newer (until a converter with a higher ``since``). ``passthrough("Relu", since=6)``
registers the common case: the dlc op of the same name implements the ONNX op as
specified from that opset on, with the spec's attribute defaults applied.
"""

from __future__ import annotations

CONVERTERS: dict = {}  # (domain, op_type) -> list of (since, fn), sorted by since


def converter(op_type: str, since: int = 1, domain: str = ""):
    def wrap(fn):
        entries = CONVERTERS.setdefault((domain, op_type), [])
        if any(s == since for s, _ in entries):
            raise TypeError(f"converter {op_type} since {since} is registered twice")
        entries.append((since, fn))
        entries.sort(key=lambda e: e[0])
        return fn

    return wrap


def passthrough(op_type: str, since: int = 1, dlc_op: str | None = None, domain: str = ""):
    """Register a direct mapping to the dlc op ``dlc_op`` (same name by default)."""
    target = dlc_op or op_type

    def convert(cx, node):
        cx.emit(target, node.input, node.output, cx.attributes(node, target))

    convert.__name__ = f"convert_{op_type}_{since}"
    converter(op_type, since, domain)(convert)


def find(op_type: str, opset: int, domain: str = ""):
    """The converter for ``op_type`` at ``opset``, or None."""
    _load_all()
    entries = CONVERTERS.get((domain, op_type))
    if not entries:
        return None
    chosen = None
    for since, fn in entries:
        if since <= opset:
            chosen = fn
    return chosen


_loaded = False


def _load_all():
    """Import (and so register) every converter before the first lookup. The flag is set
    only once the import is complete: a thread that comes meanwhile imports too, which
    waits for the import under way instead of reading a half-filled table."""
    global _loaded
    if not _loaded:
        import dlc.frontends.onnx.converters  # noqa: F401
        _loaded = True
