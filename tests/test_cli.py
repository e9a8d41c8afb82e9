"""The ``dlc`` command line: every command and option, exit codes (0 success, 2 bad input
or usage, 1 internal error), one-line error messages without tracebacks (unless
--verbose), and output files that are never left half-written.

Most cases call ``dlc.cli.main([...])`` in this process; a few run ``python -m dlc`` and
the ``dlc`` console script as subprocesses."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys

import numpy as np
import pytest
from tiny_models import (
    AWKWARD_NAMES,
    chain_model,
    chain_reference,
    constant_value,
    constants_model,
    small_model,
    small_reference,
)

import dlc
from dlc import cli
from dlc.runtime import artifact

COMMANDS = ["compile", "run", "inspect", "bench"]


def run_cli(*args) -> tuple[int, str, str]:
    """main(args) in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def run_process(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlc", *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def assert_error(result, *fragments, code=2) -> str:
    """A failed command: exit ``code`` and one line on stderr naming the problem."""
    got, out, err = result
    assert got == code, (got, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    paths = {"dir": d, "chain": chain_model(d / "chain.onnx", n=4),
             "small": small_model(d / "small.onnx"),
             "sym": chain_model(d / "sym.onnx", n=2, symbolic=True)}
    code, out, err = run_cli("compile", paths["chain"], "-o", d / "chain.dlc")
    assert code == 0, err
    paths["dlc"] = str(d / "chain.dlc")
    np.save(d / "x.npy", np.linspace(-1, 1, 16, dtype=np.float32))
    np.save(d / "x_f64.npy", np.linspace(-1, 1, 16))
    np.save(d / "x_short.npy", np.zeros(3, np.float32))
    np.savez(d / "inputs.npz", x=np.linspace(-1, 1, 16, dtype=np.float32))
    (d / "text.txt").write_text("not a model\n")
    return paths


# -- help, usage, exit codes --------------------------------------------------------------
@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS]])
def test_help(command):
    code, out, err = run_cli(*command, "--help")
    assert code == 0 and err == ""
    assert out.startswith("usage: dlc" + "".join(" " + c for c in command))
    for c in (COMMANDS if not command else []):
        assert c in out


def test_help_of_subcommands_lists_options():
    options = {"compile": ["--output", "--target", "--opt-level", "--input-shape",
                           "--tuning-log", "--progress"],
               "run": ["--input", "--output", "--seed"],
               "inspect": ["--stage", "graph", "fused", "loops", "llvm"],
               "bench": ["--compare-onnxruntime", "--threads", "--repeat", "--profile"]}
    for command, names in options.items():
        out = run_cli(command, "--help")[1]
        for name in names:
            assert name in out, (command, name)


def test_version():
    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"dlc {dlc.__version__}"


def test_no_command_is_a_usage_error():
    code, out, err = run_cli()
    assert code == 2 and "usage: dlc" in err


@pytest.mark.parametrize("args, fragment", [
    (["frobnicate"], "invalid choice"),
    (["compile"], "required: model"),
    (["compile", "m.onnx", "--opt-level", "7"], "--opt-level"),
    (["bench", "m.dlc", "--threads", "0"], "--threads"),
    (["bench", "m.dlc", "--repeat", "x"], "--repeat"),
    (["compile", "m.onnx", "--progress", "--quiet"], "not allowed with"),
])
def test_usage_errors_are_one_line(args, fragment):
    line = assert_error(run_cli(*args), fragment)
    assert "--help" in line


def test_python_dash_m_exit_codes(files):
    ok = run_process("inspect", files["dlc"])
    assert ok.returncode == 0, ok.stderr
    bad = run_process("run", files["dir"] / "absent.dlc")
    assert bad.returncode == 2
    assert bad.stderr.strip() == f"dlc run: error: {files['dir'] / 'absent.dlc'}: no such file"
    verbose = run_process("run", files["dir"] / "absent.dlc", "--verbose")
    assert verbose.returncode == 2
    assert "Traceback" in verbose.stderr
    assert verbose.stderr.strip().splitlines()[-1].endswith("no such file")


@pytest.mark.skipif(shutil.which("dlc") is None, reason="the dlc console script is not on PATH")
def test_console_script():
    proc = subprocess.run(["dlc", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == f"dlc {dlc.__version__}"


def test_internal_error_exit_code(files, monkeypatch):
    def broken(args):
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr(cli, "cmd_inspect", broken)
    line = assert_error(run_cli("inspect", files["dlc"]), "internal error", "RuntimeError",
                        "a bug; over two lines", "--verbose", code=1)
    assert line.startswith("dlc inspect: internal error")
    code, _, err = run_cli("inspect", files["dlc"], "--verbose")
    assert code == 1 and "Traceback" in err and "RuntimeError" in err


def test_verbose_before_the_command(files):
    code, _, err = run_cli("--verbose", "run", files["dir"] / "absent.dlc")
    assert code == 2 and "Traceback" in err


# -- compile ------------------------------------------------------------------------------
def test_compile_summary(files, tmp_path):
    code, out, err = run_cli("compile", files["small"], "-o", tmp_path / "s.dlc")
    assert code == 0, err
    assert out.splitlines()[0] == f"compiled {files['small']} -> {tmp_path / 's.dlc'}"
    for label in ("ops:", "fused kernels:", "compile time:", "artifact size:",
                  "planned memory:"):
        assert label in out
    assert "ops:            5 (" in out and "MatMul 1" in out  # the Constant is folded
    model = dlc.runtime.load(tmp_path / "s.dlc")
    assert model.output_names == ["y", "x_copy", "k"]


def test_compile_default_output_path(files, tmp_path):
    src = shutil.copy(files["chain"], tmp_path / "model.onnx")
    code, out, _ = run_cli("compile", src)
    assert code == 0 and (tmp_path / "model.dlc").exists()


def test_compile_opt_level(files, tmp_path):
    counts = {}
    for level in (0, 3):
        code, out, _ = run_cli("compile", files["chain"], "-o", tmp_path / f"{level}.dlc",
                               "--opt-level", level)
        assert code == 0
        counts[level] = int(out.split("fused kernels:")[1].split()[0])
    assert counts[0] == 4 and counts[3] < 4


def test_compile_target(files, tmp_path):
    code, _, err = run_cli("compile", files["chain"], "-o", tmp_path / "v2.dlc", "--target",
                           "llvm -mcpu=x86-64-v2")
    assert code == 0, err
    manifest, _ = artifact.read_artifact(tmp_path / "v2.dlc")
    assert manifest["target"]["string"] == "llvm -mcpu=x86-64-v2"
    assert "avx2" not in manifest["target"]["required_features"]
    assert_error(run_cli("compile", files["chain"], "-o", tmp_path / "t.dlc", "--target",
                         "tpu"), "unknown target kind")


@pytest.mark.parametrize("target", ["cuda", "cuda -arch=sm_90"])
def test_compile_for_a_target_not_built_yet_is_an_error(files, tmp_path, target):
    """No host code labelled "cuda": until the CUDA target exists it is refused."""
    line = assert_error(run_cli("compile", files["chain"], "-o", tmp_path / "c.dlc",
                                "--target", target), "target 'cuda'", "llvm")
    assert "not available" in line
    assert not (tmp_path / "c.dlc").exists()
    assert_error(run_cli("inspect", files["chain"], "--stage", "loops", "--target", target),
                 "target 'cuda'")


def _dynamic_model(path, kind: str):
    """A model whose shapes depend on input values: NonZero, a Reshape to a shape given as
    an input (through Concat), or an If on an input condition."""
    from onnx import TensorProto as T
    from onnx import helper

    x = helper.make_tensor_value_info("x", T.FLOAT, [2, 3])
    if kind == "nonzero":
        nodes = [helper.make_node("NonZero", ["x"], ["y"], name="nz")]
        inputs, y = [x], helper.make_tensor_value_info("y", T.INT64, None)
    elif kind == "reshape":
        nodes = [helper.make_node("Concat", ["a", "b"], ["shape"], name="cat", axis=0),
                 helper.make_node("Reshape", ["x", "shape"], ["y"], name="r")]
        inputs = [x, helper.make_tensor_value_info("a", T.INT64, [1]),
                  helper.make_tensor_value_info("b", T.INT64, [1])]
        y = helper.make_tensor_value_info("y", T.FLOAT, None)
    else:
        def branch(name, shape):
            out = helper.make_tensor_value_info(name, T.FLOAT, None)
            c = helper.make_node("Constant", [], [name], value=helper.make_tensor(
                "v", T.FLOAT, shape, [1.0] * int(np.prod(shape))))
            return helper.make_graph([c], name, [], [out])
        nodes = [helper.make_node("If", ["c"], ["y"], name="choose",
                                  then_branch=branch("t", [2]), else_branch=branch("e", [3]))]
        inputs = [helper.make_tensor_value_info("c", T.BOOL, [])]
        y = helper.make_tensor_value_info("y", T.FLOAT, None)
    graph = helper.make_graph(nodes, "dyn", inputs, [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    import onnx

    onnx.save(model, path)
    return str(path)


@pytest.mark.parametrize("kind, fragments", [
    ("nonzero", ["NonZero node 'nz'", "depend on its input values", "model input 'x'"]),
    ("reshape", ["Reshape node 'r'", "value of 'shape'", "model inputs 'a', 'b'"]),
    ("if", ["If node 'choose'", "model input 'c'"]),
])
def test_compile_dynamic_model_names_the_nodes(tmp_path, kind, fragments):
    path = _dynamic_model(tmp_path / f"{kind}.onnx", kind)
    line = assert_error(run_cli("compile", path, "-o", tmp_path / "d.dlc"),
                        "cannot be saved as an artifact", *fragments)
    assert "initializers" in line and "from Python" in line
    assert "give the shape-like inputs" not in line
    assert not (tmp_path / "d.dlc").exists()


def test_compile_symbolic_input(files, tmp_path):
    assert_error(run_cli("compile", files["sym"], "-o", tmp_path / "s.dlc"), "symbolic",
                 "--input-shape")
    assert not (tmp_path / "s.dlc").exists()
    code, _, err = run_cli("compile", files["sym"], "-o", tmp_path / "s.dlc", "--input-shape",
                           "x=5")
    assert code == 0, err
    assert dlc.runtime.load(tmp_path / "s.dlc").inputs[0]["shape"] == [5]


@pytest.mark.parametrize("model, spec, fragment", [
    ("sym", "x", "expected NAME="), ("sym", "x=2xq", "integers"),
    ("sym", "x=-1", "non-negative"), ("chain", "nope=5", "nope"),
    ("chain", "x=3", "broadcast")])
def test_compile_bad_input_shape(files, tmp_path, model, spec, fragment):
    assert_error(run_cli("compile", files[model], "-o", tmp_path / "s.dlc", "--input-shape",
                         spec), fragment)
    assert not (tmp_path / "s.dlc").exists()


def test_compile_bad_model_files(files, tmp_path):
    d = files["dir"]
    assert_error(run_cli("compile", d / "absent.onnx"), "no such file")
    assert_error(run_cli("compile", d / "x.npy", "-o", tmp_path / "o.dlc"),
                 "not a valid ONNX model")
    assert_error(run_cli("compile", d / "text.txt", "-o", tmp_path / "o.dlc"), "text.txt")
    assert_error(run_cli("compile", files["dlc"], "-o", tmp_path / "o.dlc"),
                 "already a compiled .dlc artifact", "dlc run")
    assert_error(run_cli("compile", tmp_path, "-o", tmp_path / "o.dlc"), "is a directory")
    assert not (tmp_path / "o.dlc").exists()


def test_compile_unwritable_output(files, tmp_path):
    assert_error(run_cli("compile", files["chain"], "-o", tmp_path / "absent" / "o.dlc"),
                 "cannot write", "does not exist")
    (tmp_path / "taken").mkdir()
    assert_error(run_cli("compile", files["chain"], "-o", tmp_path / "taken"),
                 "is a directory")
    src = shutil.copy(files["chain"], tmp_path / "m.onnx")
    assert_error(run_cli("compile", src, "-o", src), "overwrite the model")


def test_compile_failure_leaves_existing_output_untouched(files, tmp_path, monkeypatch):
    out = tmp_path / "model.dlc"
    out.write_bytes(b"previous artifact")
    assert_error(run_cli("compile", files["dir"] / "x.npy", "-o", out), "ONNX")
    assert out.read_bytes() == b"previous artifact"

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(artifact.os, "replace", full_disk)
    assert_error(run_cli("compile", files["chain"], "-o", out), "No space left on device")
    assert out.read_bytes() == b"previous artifact"
    assert [p.name for p in tmp_path.iterdir()] == ["model.dlc"]


# -- progress -----------------------------------------------------------------------------
def test_progress_forced_on(files, tmp_path):
    code, out, err = run_cli("compile", files["chain"], "-o", tmp_path / "c.dlc",
                             "--opt-level", "0", "--progress")
    assert code == 0
    lines = err.splitlines()
    assert lines[0].startswith("  lowering kernels 4/4: done in ")
    assert lines[1].startswith("  compiling native code (4 kernels, LLVM): done in ")
    assert "\r" not in err  # not a terminal: one line per finished step
    assert "lowering" not in out


def test_progress_off_by_default_when_not_a_terminal(files, tmp_path):
    code, _, err = run_cli("compile", files["chain"], "-o", tmp_path / "c.dlc")
    assert code == 0 and err == ""


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_on_a_terminal(files, tmp_path, monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["compile", files["chain"], "-o", str(tmp_path / "c.dlc"),
                         "--opt-level", "0"]) == 0
    text = terminal.getvalue()
    assert "\r\x1b[K  lowering kernels 0/4 ..." in text
    assert "\r\x1b[K  lowering kernels 4/4: done in " in text
    assert "compiling native code (4 kernels, LLVM) ..." in text
    assert text.endswith("s\n")
    terminal.seek(0)
    terminal.truncate()
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["compile", files["chain"], "-o", str(tmp_path / "c.dlc"), "-q"]) == 0
    assert terminal.getvalue() == ""


def test_progress_rate_limit():
    stream = _Terminal()
    progress = cli.Progress(stream, True)
    for k in range(1001):
        progress(k, 1000, "working")
    assert stream.getvalue().count("\r") < 20
    assert stream.getvalue().endswith("working 1000/1000: done in 0.00 s\n")


# -- tuning logs --------------------------------------------------------------------------
def _tuned_record(onnx_path, log, target="llvm", config=None):
    """A tuning record for the small model's dense kernel: ``config`` (default: one-row
    register tiles, ``mr = 1``), measured on ``target``."""
    from dlc.autotune.log import LogWriter, make_record
    from dlc.autotune.task import extract_tasks

    task = next(t for t in extract_tasks(onnx_path) if t.template == "dense")
    config = {"mr": 1} if config is None else config
    try:
        _, trace = task.lower(config)
    except dlc.errors.ScheduleError:  # a configuration of another version of the template
        _, trace = task.lower()
    with LogWriter(log) as writer:
        writer.append(make_record(task.key, task.workload, task.template, target, 1, config,
                                  trace, [1e-6], None, 0))
    return task.workload


def test_tuning_log_changes_the_schedule(files, tmp_path):
    log = tmp_path / "log.jsonl"
    _tuned_record(files["small"], log)
    base = run_cli("inspect", files["small"], "--stage", "loops")
    tuned = run_cli("inspect", files["small"], "--stage", "loops", "--tuning-log", log)
    assert base[0] == tuned[0] == 0
    assert tuned[2].strip() == ("dlc inspect: warning: 3 of 4 kernels have no tuning record "
                                "for this target and use the default schedule (k0_add, "
                                "k2_softmax, k3_identity)"), tuned[2]
    base_kernels, tuned_kernels = base[1].split("\n\n"), tuned[1].split("\n\n")
    changed = [k for k, (a, b) in enumerate(zip(base_kernels, tuned_kernels)) if a != b]
    assert changed == [1]  # the dense kernel; the others keep their default schedules
    assert "unrolled(2)" in base_kernels[1] and "unrolled(2)" not in tuned_kernels[1]
    code, out, err = run_cli("compile", files["small"], "-o", tmp_path / "t.dlc",
                             "--tuning-log", log)
    assert code == 0, err
    assert f"tuned kernels:  1 (schedules from {log})" in out
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 12)
    np.testing.assert_allclose(dlc.runtime.load(tmp_path / "t.dlc").run(x)[0],
                               small_reference(x)[0], rtol=1e-5, atol=1e-6)


def test_a_record_that_no_longer_fits_its_template_keeps_the_default(files, tmp_path):
    log = tmp_path / "log.jsonl"
    _tuned_record(files["small"], log, config={"mr": 7})
    code, out, err = run_cli("inspect", files["small"], "--stage", "loops", "--tuning-log", log)
    assert code == 0, err
    assert "does not fit template 'dense'" in err and "'mr' = 7 is not one of" in err
    assert out == run_cli("inspect", files["small"], "--stage", "loops")[1]


def test_tuning_log_records_for_another_cpu_or_schema_are_not_applied(files, tmp_path):
    """Records of another CPU, of schema 1 (old task keys) and torn lines are named in one
    warning line each; the kernel keeps its default schedule."""
    import hashlib
    import json

    log = tmp_path / "log.jsonl"
    workload = _tuned_record(files["small"], log, target="llvm -mcpu=cascadelake")
    _tuned_record(files["small"], log, target="llvm -mcpu=znver4")
    record = json.loads(log.read_text().splitlines()[0])
    old_key = hashlib.sha1(json.dumps(workload, sort_keys=True).encode()).hexdigest()
    old = {"version": 1, "task": old_key, "workload": workload, "target": "llvm",
           "trace": record["trace"], "result": {"seconds": [1e-7], "error": None},
           "time": "2026-11-23T10:00:00"}
    with open(log, "a") as f:
        f.write(json.dumps(old) + "\n" + json.dumps(record)[:40])
    code, out, err = run_cli("inspect", files["small"], "--stage", "loops", "--target",
                             "llvm -mcpu=skylake", "--tuning-log", log)
    assert code == 0, err
    assert out == run_cli("inspect", files["small"], "--stage", "loops", "--target",
                          "llvm -mcpu=skylake")[1]
    lines = err.strip().splitlines()
    assert len(lines) == 4, err
    assert all(line.startswith("dlc inspect: warning: ") for line in lines), err
    assert "log.jsonl:4: torn last line skipped" in lines[0]
    assert "ignored 1 record of schema 1" in lines[1]
    assert ("ignored 2 records for another CPU (1 cascadelake, 1 znver4; this target is "
            "skylake)") in lines[2]
    assert "4 of 4 kernels have no tuning record" in lines[3]
    with pytest.warns(dlc.DlcWarning) as caught:
        compiled = dlc.compile(files["small"], target="llvm -mcpu=skylake", tuning_log=log)
    assert [str(w.message) for w in caught] == [line.split("warning: ", 1)[1]
                                                for line in lines]
    assert not any(k.tuned for k in compiled.kernels)


@pytest.mark.parametrize("content, fragment", [
    ('{"version": 99}\n', "unsupported tuning record version 99"),
    ('{"version": 1, "task": "t", "trace": [], "result": {}}\n', "'trace'"),
    ('{"schema": 3, "task": "t"}\n', "schema 3 is newer than this dlc reads (2)"),
])
def test_unusable_tuning_records_are_skipped(files, tmp_path, content, fragment):
    log = tmp_path / "log.jsonl"
    log.write_text(content)
    code, out, err = run_cli("compile", files["chain"], "-o", tmp_path / "t.dlc",
                             "--tuning-log", log)
    assert code == 0, err
    line, untuned = err.strip().splitlines()
    assert line.startswith("dlc compile: warning: ") and fragment in line, line
    assert f"{log}:1: " in line
    assert "have no tuning record for this target and use the default schedule" in untuned
    assert "tuned kernels:  0" in out


@pytest.mark.parametrize("content, fragment", [
    ("not json\n", "log.jsonl:1: not a JSON object"),
    ('{"name": "a package.json"}\n', "not a tuning log"),
    (b"\x93NUMPY\x01\x00", "not a tuning log"),
    (None, "is a directory, not a tuning log"),
])
def test_malformed_tuning_log(files, tmp_path, content, fragment):
    log = tmp_path / "log.jsonl"
    if content is None:
        log.mkdir()
    else:
        log.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "t.dlc"
    assert_error(run_cli("compile", files["chain"], "-o", out, "--tuning-log", log), fragment)
    assert not out.exists()
    assert_error(run_cli("inspect", files["chain"], "--stage", "loops", "--tuning-log", log),
                 fragment)


def test_missing_tuning_log(files, tmp_path):
    assert_error(run_cli("compile", files["chain"], "-o", tmp_path / "t.dlc", "--tuning-log",
                         tmp_path / "absent.jsonl"), "cannot read tuning log")


# -- run ----------------------------------------------------------------------------------
def _outputs(text: str) -> dict:
    return {line.split(":")[0]: line for line in text.splitlines() if "sha256=" in line}


def test_run_random_inputs(files):
    code, out, err = run_cli("run", files["dlc"])
    assert code == 0, err
    line = _outputs(out)["y"]
    assert line.startswith("y: float32[16]") and "sum=" in line
    assert run_cli("run", files["dlc"])[1] == out  # the same seed, the same inputs
    assert run_cli("run", files["dlc"], "--seed", "1")[1] != out


def test_run_input_and_output_files(files, tmp_path):
    x = np.load(files["dir"] / "x.npy")
    code, out, err = run_cli("run", files["dlc"], "--input", f"x={files['dir'] / 'x.npy'}",
                             "--output", tmp_path / "out.npz")
    assert code == 0, err
    assert f"wrote {tmp_path / 'out.npz'}" in out
    with np.load(tmp_path / "out.npz") as npz:
        assert npz.files == ["y"]
        np.testing.assert_allclose(npz["y"], chain_reference(x, 4), rtol=1e-6)
    code, out2, _ = run_cli("run", files["dlc"], "--input", files["dir"] / "inputs.npz",
                            "--output", tmp_path / "y.npy")
    assert code == 0 and _outputs(out2) == _outputs(out)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), chain_reference(x, 4), rtol=1e-6)


def test_run_several_outputs(files, tmp_path):
    code, out, err = run_cli("run", files["small"], "--output", tmp_path / "o.npz")
    assert code == 0, err
    assert set(_outputs(out)) == {"y", "x_copy", "k"}
    with np.load(tmp_path / "o.npz") as npz:
        assert sorted(npz.files) == ["k", "x_copy", "y"]
    assert_error(run_cli("run", files["small"], "--output", tmp_path / "o.npy"), ".npz")


def test_run_outputs_with_awkward_names(files, tmp_path):
    """Output names that np.savez takes as its own arguments (file, allow_pickle), paths and
    unicode are the names of the arrays in the .npz."""
    model = constants_model(tmp_path / "c.onnx", AWKWARD_NAMES)
    assert run_cli("compile", model, "-o", tmp_path / "c.dlc")[0] == 0
    np.save(tmp_path / "x.npy", np.array([-1, 0, 2], np.float32))
    code, out, err = run_cli("run", tmp_path / "c.dlc", "--input", f"x={tmp_path / 'x.npy'}",
                             "--output", tmp_path / "out.npz")
    assert code == 0, err
    with np.load(tmp_path / "out.npz", allow_pickle=False) as npz:
        assert npz.files == AWKWARD_NAMES + ["y"]
        for k, name in enumerate(AWKWARD_NAMES):
            np.testing.assert_array_equal(npz[name], constant_value(k), err_msg=name)
            assert npz[name].dtype == constant_value(k).dtype
        np.testing.assert_array_equal(npz["y"], [0, 0, 2])


def test_run_onnx_model_directly(files):
    code, out, err = run_cli("run", files["chain"], "--input", f"x={files['dir'] / 'x.npy'}")
    assert code == 0, err
    assert _outputs(out) == _outputs(run_cli("run", files["dlc"], "--input",
                                             f"x={files['dir'] / 'x.npy'}")[1])


def test_run_symbolic_onnx_model(files):
    assert_error(run_cli("run", files["sym"]), "symbolic")
    code, out, _ = run_cli("run", files["sym"], "--input-shape", "x=7")
    assert code == 0 and "y: float32[7]" in out
    code, out, _ = run_cli("run", files["sym"], "--input", f"x={files['dir'] / 'x.npy'}")
    assert code == 0 and "y: float32[16]" in out  # the shape of the given input


@pytest.mark.parametrize("spec, fragment", [
    ("z={dir}/x.npy", "no input(s) 'z'"),
    ("x={dir}/x_short.npy", "shape (16,), got (3,)"),
    ("x={dir}/x_f64.npy", "dtype float32, got float64"),
    ("x={dir}/absent.npy", "no such file"),
    ("x={dir}/text.txt", "not a .npy/.npz file"),
    ("{dir}/x.npy", "expected NAME=FILE.npy"),
])
def test_run_bad_inputs(files, tmp_path, spec, fragment):
    out = tmp_path / "out.npz"
    out.write_bytes(b"previous outputs")
    spec = spec.format(dir=files["dir"])
    assert_error(run_cli("run", files["dlc"], "--input", spec, "--output", out), fragment)
    assert out.read_bytes() == b"previous outputs"


def test_run_unwritable_output(files, tmp_path):
    assert_error(run_cli("run", files["dlc"], "--output", tmp_path / "absent" / "o.npz"),
                 "does not exist")
    assert_error(run_cli("run", files["dlc"], "--output", tmp_path / "o.txt"), ".npz")
    (tmp_path / "d.npz").mkdir()
    assert_error(run_cli("run", files["dlc"], "--output", tmp_path / "d.npz"), "directory")


def test_run_output_failure_leaves_existing_file(files, tmp_path, monkeypatch):
    out = tmp_path / "out.npz"
    out.write_bytes(b"previous outputs")
    monkeypatch.setattr(artifact.os, "replace", lambda a, b: (_ for _ in ()).throw(
        OSError(28, "No space left on device")))
    assert_error(run_cli("run", files["dlc"], "--output", out), "No space left")
    assert out.read_bytes() == b"previous outputs"
    assert [p.name for p in tmp_path.iterdir()] == ["out.npz"]


def test_run_bad_model_files(files, tmp_path):
    d = files["dir"]
    assert_error(run_cli("run", d / "absent.dlc"), "no such file")
    assert_error(run_cli("run", d / "x.npy"), "not a valid ONNX model")
    assert_error(run_cli("run", d), "is a directory")
    data = bytearray(open(files["dlc"], "rb").read())
    (tmp_path / "trunc.dlc").write_bytes(bytes(data[: len(data) // 2]))
    assert_error(run_cli("run", tmp_path / "trunc.dlc"), "truncated")
    data[-100] ^= 1
    (tmp_path / "bad.dlc").write_bytes(bytes(data))
    assert_error(run_cli("run", tmp_path / "bad.dlc"), "corrupted", "checksum")
    assert_error(run_cli("run", files["dlc"], "--input-shape", "x=3"), "ONNX models")


# -- inspect ------------------------------------------------------------------------------
def test_inspect_stages(files):
    texts = {}
    for stage in ("graph", "fused", "loops", "llvm"):
        code, out, err = run_cli("inspect", files["chain"], "--stage", stage)
        assert code == 0, err
        texts[stage] = out
    assert "Add" in texts["graph"] and "Mul" in texts["graph"]
    assert texts["fused"] != texts["graph"]  # the chain fused into one kernel
    assert "func k0_" in texts["loops"] and "for " in texts["loops"]
    assert "define" in texts["llvm"]
    assert run_cli("inspect", files["chain"])[1] == texts["graph"]


def test_inspect_artifact(files):
    code, out, err = run_cli("inspect", files["dlc"])
    assert code == 0, err
    assert out.startswith(f"artifact format {artifact.FORMAT_VERSION}, written by dlc ")
    for fragment in ("target: llvm", "input: x: float32[16]", "output: y: float32[16]",
                     "kernels (1):", "section library:", "section weights:"):
        assert fragment in out
    assert_error(run_cli("inspect", files["dlc"], "--stage", "loops"), "manifest")


def test_inspect_errors(files, tmp_path):
    assert_error(run_cli("inspect", files["dir"] / "absent.onnx"), "no such file")
    assert_error(run_cli("inspect", files["dir"] / "x.npy"), "not a valid ONNX model")
    assert_error(run_cli("inspect", files["sym"], "--stage", "loops"), "symbolic")
    code, out, _ = run_cli("inspect", files["sym"], "--stage", "loops", "--input-shape", "x=8")
    assert code == 0 and "float32[8]" in out
    data = bytearray(open(files["dlc"], "rb").read())
    data[60] ^= 1
    (tmp_path / "bad.dlc").write_bytes(bytes(data))
    assert_error(run_cli("inspect", tmp_path / "bad.dlc"), "manifest checksum")


# -- bench --------------------------------------------------------------------------------
def test_bench(files):
    code, out, err = run_cli("bench", files["dlc"], "--repeat", "5", "--warmup", "1",
                             "--threads", "1")
    assert code == 0, err
    line = [x for x in out.splitlines() if x.strip().startswith("dlc ")][0]
    assert "median" in line and "p90" in line and "throughput" in line
    assert "onnxruntime" not in out


def _spy_on_onnxruntime(monkeypatch) -> list:
    """The intra-op thread count of every onnxruntime session dlc bench makes."""
    made, real = [], cli._ort_session

    def spy(path, threads, specs):
        session = real(path, threads, specs)
        made.append(session.get_session_options().intra_op_num_threads)
        return session

    monkeypatch.setattr(cli, "_ort_session", spy)
    return made


def test_bench_compare_onnxruntime(files, monkeypatch):
    """Without --threads both libraries run on dlc's default thread count (not dlc on every
    core and onnxruntime on its own default), and the outputs are compared first."""
    from dlc.runtime.module import default_num_threads

    made = _spy_on_onnxruntime(monkeypatch)
    code, out, err = run_cli("bench", files["dlc"], "--repeat", "5", "--warmup", "1",
                             "--compare-onnxruntime", files["chain"])
    assert code == 0, err
    assert "onnxruntime  median" in out
    assert made == [default_num_threads()]
    assert f", {default_num_threads()} thread(s)" in out
    assert "outputs match onnxruntime's (max abs difference" in out
    ratio = [x for x in out.splitlines() if "dlc / onnxruntime latency:" in x]
    assert ratio and float(ratio[0].split(":")[1].split("x")[0]) > 0


def test_bench_compare_onnxruntime_same_threads(files, monkeypatch):
    made = _spy_on_onnxruntime(monkeypatch)
    code, out, err = run_cli("bench", files["chain"], "--repeat", "2", "--warmup", "0",
                             "--threads", "2", "--compare-onnxruntime", files["chain"])
    assert code == 0, err
    assert made == [2] and ", 2 thread(s)" in out


def test_bench_outputs_that_differ_stop_the_comparison(files, tmp_path):
    """Another model with the same inputs: no timings, one line, a non-zero exit."""
    other = chain_model(tmp_path / "other.onnx", n=3)
    code, out, err = run_cli("bench", files["dlc"], "--repeat", "2",
                             "--compare-onnxruntime", other)
    assert code == 1 and "median" not in out
    assert err.strip().splitlines() == [err.strip()]
    assert "disagree on output 'y' (max abs difference" in err and "dlc bug" in err


def test_bench_errors(files):
    d = files["dir"]
    assert_error(run_cli("bench", files["dlc"], "--compare-onnxruntime", d / "x.npy"),
                 "onnxruntime cannot load it")
    assert_error(run_cli("bench", files["dlc"], "--compare-onnxruntime", files["dlc"]),
                 "not a .dlc")
    assert_error(run_cli("bench", files["dlc"], "--compare-onnxruntime", files["small"]),
                 "inputs")
    assert_error(run_cli("bench", d / "absent.dlc"), "no such file")


def _profile_rows(out: str) -> list:
    """The kernel rows of bench --profile's table: [name, calls, median, share %, GFLOP/s]."""
    lines = out.splitlines()
    start = [k for k, line in enumerate(lines) if line.startswith("kernel ")][0]
    end = [k for k, line in enumerate(lines) if line.startswith("sum of kernels")][0]
    return [line.split() for line in lines[start + 1:end]]


@pytest.mark.parametrize("model", ["dlc", "small"])
def test_bench_profile(files, model):
    """Every kernel once (or with its count of calls), the slowest first, shares summing
    to 100%, then the sum and the entry function's time."""
    code, out, err = run_cli("bench", files[model], "--repeat", "3", "--warmup", "1",
                             "--profile", "-q")
    assert code == 0, err
    assert "dlc          median" in out and "kernels, each called on its own" in out
    rows = _profile_rows(out)
    kernels = (dlc.runtime.load(files[model]).manifest["kernels"] if model == "dlc"
               else ["k0_add", "k1_fused_dense_relu_1", "k2_softmax", "k3_identity"])
    assert sorted(row[0] for row in rows) == sorted(kernels)
    times = [float(row[2]) for row in rows]
    assert times == sorted(times, reverse=True)
    assert sum(float(row[3].rstrip("%")) for row in rows) == pytest.approx(100, abs=0.3)
    gflops = {row[0]: row[4] for row in rows}
    if model == "small":
        assert gflops["k3_identity"] == "-" and float(gflops["k1_fused_dense_relu_1"]) > 0
    assert out.splitlines()[-1].startswith("entry function, one call")


def test_bench_profile_errors(files, tmp_path):
    """An artifact from before plans listed their kernel calls still benches, but asks to be
    compiled again for --profile; a model compiled per run-time shape cannot be profiled.
    Both fail before any timing."""
    import onnx
    from onnx import TensorProto, helper

    old = tmp_path / "old.dlc"
    manifest, sections = artifact.read_artifact(files["dlc"])
    del manifest["plan"]["calls"]
    artifact.write_artifact(old, {k: v for k, v in manifest.items() if k != "sections"},
                            sections)
    assert run_cli("bench", old, "--repeat", "2")[0] == 0
    result = run_cli("bench", old, "--repeat", "2", "--profile")
    assert_error(result, "compile it again ('dlc compile')")
    assert result[1] == ""
    nodes = [helper.make_node("Reshape", ["x", "s"], ["y"], name="reshape")]
    graph = helper.make_graph(nodes, "dyn", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [12]),
        helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp_path / "dyn.onnx"))
    result = run_cli("bench", tmp_path / "dyn.onnx", "--profile", "-q")
    assert_error(result, "--profile times the kernels of a model compiled for fixed shapes")
    assert result[1] == ""


def test_bench_progress(files):
    code, _, err = run_cli("bench", files["dlc"], "--repeat", "3", "--warmup", "0",
                           "--progress")
    assert code == 0 and "timing dlc 3/3: done" in err

