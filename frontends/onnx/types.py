"""ONNX element types <-> dlc dtypes."""

from __future__ import annotations

from dlc.errors import UnsupportedOpError

# TensorProto.DataType values
_ONNX_TO_DLC = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16",
    17: "float8_e4m3fn", 18: "float8_e4m3fnuz", 19: "float8_e5m2", 20: "float8_e5m2fnuz",
    21: "uint4", 22: "int4", 23: "float4_e2m1fn", 24: "float8_e8m0fnu", 25: "uint2",
    26: "int2", 27: "float6_e2m3fn", 28: "float6_e3m2fn",
}
_NAMES = {0: "UNDEFINED", 8: "STRING", 14: "COMPLEX64", 15: "COMPLEX128",
          17: "FLOAT8E4M3FN", 18: "FLOAT8E4M3FNUZ", 19: "FLOAT8E5M2", 20: "FLOAT8E5M2FNUZ",
          21: "UINT4", 22: "INT4", 23: "FLOAT4E2M1"}


def dlc_dtype(elem_type: int, where: str = "") -> str:
    try:
        return _ONNX_TO_DLC[elem_type]
    except KeyError:
        name = _NAMES.get(elem_type, str(elem_type))
        raise UnsupportedOpError(f"element type {name}{' of ' + where if where else ''} is not "
                                 "supported") from None


def onnx_elem_type(dtype: str) -> int:
    for k, v in _ONNX_TO_DLC.items():
        if v == dtype:
            return k
    raise UnsupportedOpError(f"dtype {dtype} has no ONNX element type")
