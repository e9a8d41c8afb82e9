"""dlc.target: targets that parse but cannot be compiled for yet are refused, everywhere
a compile starts (no host code labelled "cuda")."""

import pytest
from tiny_models import chain_model

import dlc
from dlc import te
from dlc.compile import inspect_stage
from dlc.errors import TargetError
from dlc.target import Target


@pytest.mark.parametrize("text", ["cuda", "cuda -arch=sm_90"])
def test_cuda_parses_but_is_not_available(text):
    target = Target.parse(text)
    assert target.kind == "cuda"
    with pytest.raises(TargetError, match=r"target 'cuda' is not available in this build of "
                                          r"dlc \(it compiles for 'llvm'\); use 'llvm'"):
        target.check_available()


def test_llvm_is_available():
    target = Target.parse("llvm -num-threads=2")
    assert target.check_available() is target


@pytest.mark.parametrize("text", ["cuda", "cuda -arch=sm_90"])
def test_compile_inspect_and_build_refuse_cuda(tmp_path, text):
    path = chain_model(tmp_path / "chain.onnx", n=2)
    with pytest.raises(TargetError, match="'cuda' is not available"):
        dlc.compile(path, target=text)
    with pytest.raises(TargetError, match="'cuda' is not available"):
        inspect_stage(path, "loops", target=text)
    a = te.placeholder((4,), "float32", name="a")
    b = te.compute((4,), lambda i: a[i] + 1.0, name="b")
    with pytest.raises(TargetError, match="'cuda' is not available"):
        dlc.build(dlc.Schedule([a, b]), target=text)
