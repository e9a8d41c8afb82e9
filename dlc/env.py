"""The one place that reads DLC_* environment variables (docs/reference/environment.md)."""

from __future__ import annotations

import os
import tempfile

from dlc.errors import DlcError


def num_threads() -> int | None:
    """DLC_NUM_THREADS: threads for parallel loops; None means one per core."""
    raw = os.environ.get("DLC_NUM_THREADS")
    if raw is None or raw.strip() == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise DlcError(f"DLC_NUM_THREADS={raw!r} is not an integer") from None
    if value < 1:
        raise DlcError(f"DLC_NUM_THREADS={raw!r} must be at least 1")
    return value


def dump_ir_dir() -> str | None:
    """DLC_DUMP_IR: a directory that receives the IR after every pass."""
    return os.environ.get("DLC_DUMP_IR") or None


def write_dump(filename: str, text: str) -> None:
    """Write ``text`` as ``filename`` in the DLC_DUMP_IR directory (if set). The file is
    written aside and renamed over the old one, so a reader never sees half of it and
    threads compiling functions of the same name at once leave one whole dump each time
    (the last one), never a mix of two."""
    directory = dump_ir_dir()
    if not directory:
        return
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{filename}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes files only their owner can read
        os.replace(tmp, os.path.join(directory, filename))
    except BaseException:
        os.unlink(tmp)
        raise


def linker() -> str | None:
    """DLC_LINKER: the program that links object code into shared libraries."""
    return os.environ.get("DLC_LINKER") or None


def conformance_traceback() -> bool:
    """DLC_CONFORMANCE_TRACEBACK: the conformance sweep prints each failure's traceback."""
    return os.environ.get("DLC_CONFORMANCE_TRACEBACK", "").strip() not in ("", "0")


#: Every variable read above, in the order docs/reference/environment.md lists them.
VARIABLES = ("DLC_NUM_THREADS", "DLC_DUMP_IR", "DLC_LINKER", "DLC_CONFORMANCE_TRACEBACK")
