"""The entry point's start-up: what it loads and how it leaves the garbage collector (lipcli/launch.py)."""
from __future__ import annotations

import os
import subprocess
import sys

from lipcli import VERSION_LINE


def test_a_restore_runs_with_the_collector_on_its_imports_frozen_and_no_tiff_support_loaded(tmp_path):
    """The imports (~190k objects, mostly torch's) are frozen so that no full collection walks them again, but
    the collector itself is on for the command; tifffile loads only for a TIFF."""
    out = tmp_path / "out.png"
    code = ("import gc, sys\n"
            f"sys.argv = ['lip', 'restore', 'sample:house-noisy', '--iters', '2', '-o', {str(out)!r}]\n"
            "from lipcli import launch\n"
            "try:\n    launch.main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print(gc.isenabled(), gc.get_freeze_count() > 50_000, 'tifffile' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["True", "True", "False"] and out.is_file()


def test_a_deleted_working_folder_is_one_line_before_torch_aborts_the_process(tmp_path):
    """torch's import aborted there with "oneMKL FATAL ERROR: Cannot load libtorch_cpu.so"."""
    gone = tmp_path / "gone"
    gone.mkdir()
    run = subprocess.run([sys.executable, "-c", "from lipcli.launch import main; main()", "restore", "x.png"],
                         cwd=gone, preexec_fn=lambda: os.rmdir(gone), capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr == ("lip: error: the working folder no longer exists (it was "
                                                  "deleted): cd to another one\n")


def test_version_is_answered_without_loading_torch():
    code = ("import sys\nsys.argv = ['lip', '--version']\nfrom lipcli import launch\nlaunch.main()\n"
            "print('torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.split("\n")[:2] == [VERSION_LINE, "False"], run.stderr


def test_version_with_stdout_closed_or_full_is_no_traceback():
    code = "from lipcli import launch\nimport sys\nsys.argv = ['lip', '--version']\nlaunch.main()\n"
    closed = subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL, capture_output=False,
                            stderr=subprocess.PIPE, text=True, timeout=60, preexec_fn=lambda: os.close(1))
    assert closed.returncode == 0 and closed.stderr == ""
    with open("/dev/full", "w") as full:
        run = subprocess.run([sys.executable, "-c", code], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert run.returncode == 2 and run.stderr == "lip: error: cannot write to stdout: No space left on device\n"
