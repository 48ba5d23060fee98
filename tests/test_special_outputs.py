"""Outputs that are not regular files (issue 18): devices, FIFOs and stdout are written through, never
renamed over; folders and block devices are refused in one line. `-o /dev/null` run as root once replaced
the system's null device with a regular file: these tests make their own null device in a temp folder."""
from __future__ import annotations

import io
import json
import os
import stat
import threading
from pathlib import Path

import pytest
from PIL import Image as PILImage
from typer.testing import CliRunner

from lipcli import artifact, files, resume
from lipcli.cli import app
from lipcli.errors import LipError
from conftest import RGB64
from prune_helpers import NARROW_YAML

TINY = ("--simulate", "--iters", "2", "--threads", "1", "--device", "cpu", "--precision", "fp32")


def lip(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def nulldev(tmp_path: Path) -> Path:
    """A character device with the null device's numbers (1, 3), made where the test may make it."""
    node = tmp_path / "nulldev"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")
    return node


class FifoReader:
    """A named pipe in a temp folder and a thread that reads everything written into it."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "pipe"
        os.mkfifo(self.path)
        self.data = b""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with open(self.path, "rb") as f:  # blocks until the writer opens it
            self.data = f.read()

    def received(self) -> bytes:
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "nothing was written into the FIFO"
        return self.data


@pytest.fixture
def work(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "narrow.yaml").write_text(NARROW_YAML)
    return tmp_path


def test_restore_to_a_null_device_keeps_it_a_device(work, nulldev):
    result = lip("restore", RGB64, *TINY, "-o", nulldev)
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(os.stat(nulldev).st_mode)
    assert sorted(p.name for p in work.iterdir()) == ["narrow.yaml", "nulldev"]  # no temp file left


def test_prune_to_a_null_device_keeps_it_a_device(work, nulldev):
    result = lip("prune", RGB64, *TINY, "--config", "narrow.yaml", "--rounds", "2", "-o", nulldev)
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(os.stat(nulldev).st_mode)


def test_restore_into_a_fifo_sends_one_png(work):
    reader = FifoReader(work)
    result = lip("restore", RGB64, *TINY, "-o", reader.path)
    assert result.exit_code == 0, result.output
    png = PILImage.open(io.BytesIO(reader.received()))
    assert png.format == "PNG" and png.size == (64, 64)
    assert stat.S_ISFIFO(os.stat(reader.path).st_mode)


def test_prune_into_a_fifo_sends_one_artifact(work):
    reader = FifoReader(work)
    result = lip("prune", RGB64, *TINY, "--config", "narrow.yaml", "--rounds", "2", "-o", reader.path)
    assert result.exit_code == 0, result.output
    (work / "got.safetensors").write_bytes(reader.received())  # one whole file, not one per round
    assert artifact.load(work / "got.safetensors").rounds == 2
    assert stat.S_ISFIFO(os.stat(reader.path).st_mode)


def test_restore_to_stdout_writes_only_the_png(work):
    result = lip("restore", RGB64, *TINY, "-o", "-")
    assert result.exit_code == 0, result.output
    png = PILImage.open(io.BytesIO(result.stdout_bytes))
    assert png.format == "PNG" and png.size == (64, 64)
    assert result.stdout_bytes.endswith(b"IEND\xaeB`\x82")  # nothing but the PNG on stdout


def test_stdout_output_refuses_json(work):
    result = lip("restore", RGB64, *TINY, "-o", "-", "--json")
    assert result.exit_code == 2 and "--json" in result.output and "--log" in result.output
    assert result.stdout_bytes.count(b"\n") <= 1  # one error line, no image


def test_log_to_a_null_device(work, nulldev):
    log = lip("restore", RGB64, *TINY, "-o", "out.png", "--log", nulldev)
    assert log.exit_code == 0, log.output
    assert stat.S_ISCHR(os.stat(nulldev).st_mode) and (work / "out.png").is_file()


@pytest.mark.parametrize("where", ["folder", "block"])
def test_refused_targets(work, where):
    if where == "folder":
        target = work / "dir"
        target.mkdir()
    else:
        target = work / "blockdev"
        try:
            os.mknod(target, stat.S_IFBLK | 0o600, os.makedev(7, 200))
        except PermissionError:
            pytest.skip("making a device node needs root")
    commands = [["prune", RGB64, *TINY, "--config", "narrow.yaml"]]
    if where == "block":  # restore takes an existing folder as its output folder
        commands.append(["restore", RGB64, *TINY])
    for command in commands:
        result = lip(*command, "-o", target)
        assert result.exit_code == 2, result.output
        assert "lip: error: cannot write" in result.output and "Traceback" not in result.output
    assert (target.is_dir() if where == "folder" else stat.S_ISBLK(os.stat(target).st_mode))


def test_atomic_path_writes_through_a_symlink_to_a_device(tmp_path, nulldev):
    link = tmp_path / "link"
    link.symlink_to(nulldev)
    with files.atomic_path(link) as tmp:
        tmp.write_bytes(b"x" * 100)
    assert link.is_symlink() and stat.S_ISCHR(os.stat(nulldev).st_mode)


def test_regular_files_are_still_replaced_atomically(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with files.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    with files.atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new"


def test_no_new_files_under_dev():
    with pytest.raises(LipError, match="no such device"):
        files.check_writable(Path("/dev/lip-test-output.png"))


def test_log_lines_are_json(work):
    result = lip("restore", RGB64, *TINY, "-o", "-", "--log", "run.jsonl")
    assert result.exit_code == 0, result.output
    events = [json.loads(line)["event"] for line in (work / "run.jsonl").read_text().splitlines()]
    assert events[-1] == "result"


@pytest.mark.parametrize("target", ["-", "/dev/stdout"])
def test_a_real_pipe_receives_only_the_png(work, target):
    """As a shell pipeline would run it (`lip restore x.png -o - | convert - ...`): a separate process."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    done = subprocess.run([sys.executable, "-m", "lipcli", "restore", str(RGB64), *TINY, "-o", target],
                          capture_output=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.startswith(b"\x89PNG") and done.stdout.endswith(b"IEND\xaeB`\x82")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_long_file_names_that_the_file_system_takes_work(work):
    """A 246-byte output name is legal; lip's temporary file and state folder beside it must fit too (78 CJK
    characters once ended with 'internal error: File name too long'). A name longer than any is one line, exit 2."""
    name = "写" * 78  # 234 bytes
    PILImage.open(RGB64).save(work / f"{name}.png")
    result = lip("restore", f"{name}.png", "--config", "narrow.yaml", *TINY[1:])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in work.iterdir()) == sorted([f"{name}.png", f"{name}_restored.png", "narrow.yaml"])
    folder = resume.state_folder(work / f"{name}_restored.png")
    assert len(os.fsencode(folder.name)) <= 255 and folder == resume.state_folder(work / f"{name}_restored.png")
    result = lip("restore", f"{name}.png", "--config", "narrow.yaml", *TINY[1:], "-o", "a" * 260 + ".png")
    assert result.exit_code == 2 and "longer than the file system allows" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_a_failed_command_leaves_no_empty_folder_it_made(tmp_path):
    """`--save-kspace ks/` or `--snapshots 10 snaps/` on a full disk left the empty folder behind."""
    (tmp_path / "old").mkdir()
    with pytest.raises(OSError), files.tidy():
        files.make_folder(tmp_path / "a", "x")
        files.make_folder(tmp_path / "a" / "b", "x")
        files.make_folder(tmp_path / "full", "x")
        (tmp_path / "full" / "part").write_text("")
        files.make_folder(tmp_path / "old", "x")
        raise OSError(28, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "old"]  # a folder holding a file is kept
    with files.tidy():  # a clean exit keeps them
        files.make_folder(tmp_path / "c", "x")
    assert (tmp_path / "c").is_dir()


def test_output_folders_that_cannot_be_written_are_refused_up_front(tmp_path, monkeypatch):
    """An existing read-only --snapshots folder was found out at the first snapshot, after the fit's start;
    a link to nothing was called "exists and is not a folder"."""
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(LipError, match=r"dangling: it is a link to .*nowhere, which does not exist"):
        files.make_folder(tmp_path / "dangling", "snapshot folder")
    (tmp_path / "ro").mkdir()
    monkeypatch.setattr(files.os, "access", lambda path, mode: Path(path) != tmp_path / "ro")  # root writes anywhere
    with pytest.raises(LipError, match=r"cannot write into snapshot folder .*ro: the folder is not writable"):
        files.make_folder(tmp_path / "ro", "snapshot folder")


def test_errors_stay_one_line_and_name_what_writes_to_a_closed_stdout(work, monkeypatch):
    result = lip("restore", "no\nsuch.png", *TINY)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and "no\\nsuch.png" in result.stderr
    from lipcli.cli import render
    monkeypatch.setattr(render.sys, "stdout", None)
    with pytest.raises(LipError, match="stdout is closed: give -o a file name$"):
        render.check_stdout_free(Path("-"), False)
    with pytest.raises(LipError, match="stdout is closed: drop --json$"):
        render.check_stdout_free(Path("o.png"), True)


def test_a_log_that_cannot_be_written_ends_in_one_line_and_leaves_no_empty_file(tmp_path, monkeypatch):
    from lipcli.cli.render import RunLog
    from lipcli.errors import LipRuntimeError
    log = RunLog(tmp_path / "log.jsonl")

    def full(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(log.file, "flush", full)
    with pytest.raises(LipRuntimeError, match="log.jsonl: the disk is full"):
        log.write("start")
    log.close()  # nothing left to fail in the command's cleanup
    assert not (tmp_path / "log.jsonl").exists()


def test_a_second_restore_of_an_output_being_written_is_refused(work, monkeypatch):
    """Two ensembles writing one -o shared its state folder: one averaged the other's members (another image's
    restoration, exit 0), or crashed finding them gone."""
    monkeypatch.setenv("LIP_SHARE_DIR", str(work / "share"))
    with resume.writing(work / "out.png"):  # another restore of out.png is running
        result = lip("restore", RGB64, *TINY, "--ensemble", "2", "-o", "out.png")
        assert result.exit_code == 2, result.output
        assert "out.png is being written by another lip run right now: wait for it to end" in result.output
        assert lip("restore", RGB64, *TINY, "-o", "other.png").exit_code == 0  # another output is free
    assert lip("restore", RGB64, *TINY, "-o", "out.png").exit_code == 0
    assert not list((work / "share").glob("*.lock"))  # no lock outlives its run


def test_json_to_a_closed_stdout_is_refused_before_any_work(work):
    """masks, inspect, spectra, export-mask, import-mask and transfer crashed (spectra and export-mask after writing
    their files); restore, cs and prune said so."""
    import subprocess
    import sys
    for args in (["masks", "--json"], ["spectra", str(RGB64), "-o", "maps", "--json"]):
        run = subprocess.run([sys.executable, "-c", "from lipcli.launch import main; main()", *args], cwd=work,
                             preexec_fn=lambda: os.close(1), capture_output=False, stderr=subprocess.PIPE, text=True,
                             timeout=120)
        assert run.returncode == 2 and run.stderr == "lip: error: stdout is closed: drop --json\n", run.stderr
    assert not (work / "maps").exists()


def _lip_process(*args: str, stdout: object = None, env: dict[str, str] | None = None):
    """lip as a separate process, whose stdout and environment are its own."""
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent), **(env or {})}
    return subprocess.run([sys.executable, "-m", "lipcli", *map(str, args)], stdout=stdout or subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env, timeout=300)


def test_a_zero_terminal_size_still_shows_the_error_line(tmp_path):
    """COLUMNS=0 made rich print nothing: exit 2 with no message, a restore with no result line."""
    done = _lip_process("restore", tmp_path / "nope.png", env={"COLUMNS": "0", "LINES": "0"})
    assert done.returncode == 2
    assert b"lip: error: cannot read " in done.stderr and b"nope.png: no such file" in done.stderr


def test_json_to_a_full_disk_is_one_line(tmp_path):
    """stdout on a full disk is an output that cannot be written, as a full disk under -o is: no 'internal error'."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        done = _lip_process("masks", "--json", stdout=full)
    assert done.returncode == 1
    assert done.stderr.decode().strip() == "lip: error: cannot write stdout: the disk is full (free space, or write " \
                                           "elsewhere)"


def test_inspect_json_refuses_a_csv_that_is_stdout_by_another_name(work):
    art = work / "m.safetensors"
    assert lip("prune", RGB64, *TINY, "--rounds", "1", "-o", art).exit_code == 0
    for target in ("/dev/stdout", "/proc/self/fd/1"):
        done = _lip_process("inspect", art, "--json", "--csv", target)
        assert done.returncode == 2 and done.stdout == b""
        assert f"--json and --csv {target} both write to stdout".encode() in done.stderr
