"""dlc.examples.mlp: the README's model generator writes a valid ONNX MLP that dlc and
onnxruntime agree on (fixed or symbolic batch)."""

from __future__ import annotations

import numpy as np
import pytest

import dlc
from dlc.examples import mlp


def test_writes_a_model_dlc_and_onnxruntime_agree_on(tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "mlp.onnx"
    assert mlp.main([str(path), "--sizes", "20,16,4", "--batch", "3", "--seed", "1"]) == 0
    assert "input x: float32[3, 20], output y: float32[3, 4]" in capsys.readouterr().out
    x = np.random.default_rng(0).standard_normal((3, 20)).astype(np.float32)
    (y,) = dlc.compile(str(path)).run(x)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-5)  # softmax rows


def test_symbolic_batch(tmp_path):
    path = tmp_path / "mlp.onnx"
    assert mlp.main([str(path), "--sizes", "8,4", "--batch", "N"]) == 0
    with pytest.raises(dlc.DlcError, match="symbolic"):
        dlc.compile(str(path))
    model = dlc.compile(str(path), input_shapes={"x": (5, 8)})
    assert model.run(np.ones((5, 8), np.float32))[0].shape == (5, 4)


@pytest.mark.parametrize("args", [["--sizes", "8"], ["--sizes", "8,x"], ["--sizes", "8,0"]])
def test_bad_sizes(tmp_path, args):
    with pytest.raises(SystemExit) as info:
        mlp.main([str(tmp_path / "m.onnx"), *args])
    assert info.value.code == 2


def test_unwritable_output(tmp_path, capsys):
    assert mlp.main([str(tmp_path / "absent" / "m.onnx")]) == 2
    assert "cannot write" in capsys.readouterr().err
