"""The one output helper: atomic outputs that never delete an input or an unrelated folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from plamo_fast.errors import UsageError
from plamo_fast.outputs import (
    MARKER,
    UnsafeOutputError,
    atomic_output,
    check_output,
    publish,
    read_marker,
)


def _write(folder: Path, text: str = "x") -> Path:
    (folder / "data.txt").write_text(text)
    return folder


def test_folder_output_appears_with_marker(tmp_path):
    out = tmp_path / "out"
    with atomic_output(out, command="pack") as partial:
        assert partial.parent == tmp_path and partial.name.startswith(".out.partial-")
        assert not out.exists()
        _write(partial)
    assert (out / "data.txt").read_text() == "x"
    assert read_marker(out)["command"] == "pack"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no partial or old copy left


def test_failure_leaves_nothing(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_output(out, command="pack") as partial:
        _write(partial)
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "out"
    with atomic_output(out, command="pack") as partial:
        _write(partial, "old")
    with pytest.raises(UsageError, match="already exists"), atomic_output(out, command="pack"):
        pass
    with atomic_output(out, command="pack", overwrite=True) as partial:
        _write(partial, "new")
    assert (out / "data.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_overwrite_refuses_a_folder_that_is_not_ours(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _write(data, "precious")
    with pytest.raises(UnsafeOutputError, match="not an output of plamo-fast"):
        check_output(data, command="pack", overwrite=True)
    assert (data / "data.txt").read_text() == "precious"


def test_overwrite_refuses_another_commands_output(tmp_path):
    out = tmp_path / "model"
    with atomic_output(out, command="merge") as partial:
        _write(partial)
    with pytest.raises(UnsafeOutputError, match="output of plamo-fast merge, not of pack"):
        check_output(out, command="pack", overwrite=True)


@pytest.mark.parametrize("which", ["cwd", "parent_of_cwd", "home", "root"])
def test_protected_places(tmp_path, monkeypatch, which):
    work = tmp_path / "work" / "project"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PWD", raising=False)
    (tmp_path / "home").mkdir()
    target = {
        "cwd": Path("."),
        "parent_of_cwd": Path(".."),
        "home": tmp_path / "home",
        "root": Path("/"),
    }[which]
    with pytest.raises(UnsafeOutputError, match="current directory|home directory"):
        check_output(target, command="pack", overwrite=True)


def test_inputs_are_never_the_output(tmp_path):
    a = tmp_path / "runs" / "a"
    a.mkdir(parents=True)
    _write(a)
    b = tmp_path / "runs" / "b"
    b.mkdir()
    runs = tmp_path / "runs"
    with pytest.raises(UnsafeOutputError, match="is the input"):
        check_output(a, command="merge", inputs=[a, b], overwrite=True)
    with pytest.raises(UnsafeOutputError, match="holds the input"):
        check_output(runs, command="merge", inputs=[a, b], overwrite=True)
    with pytest.raises(UnsafeOutputError, match="inside the input folder"):
        check_output(a / "merged", command="merge", inputs=[a, b])
    # A file input: an output beside it is fine, the file itself is not.
    f = tmp_path / "train.jsonl"
    f.write_text("{}\n")
    check_output(tmp_path / "out.jsonl", command="dedup", inputs=[f], folder=False)
    with pytest.raises(UnsafeOutputError, match="is the input"):
        check_output(f, command="dedup", inputs=[f], overwrite=True, folder=False)
    assert (a / "data.txt").exists() and f.read_text() == "{}\n"


def test_symlinked_input_is_recognised(tmp_path):
    real = tmp_path / "real.jsonl"
    real.write_text("{}\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    with pytest.raises(UnsafeOutputError):
        check_output(real, command="dedup", inputs=[link], overwrite=True, folder=False)
    with pytest.raises(UnsafeOutputError, match="symbolic link"):
        check_output(link, command="dedup", overwrite=True, folder=False)


def test_file_outputs(tmp_path):
    out = tmp_path / "kept.jsonl"
    with atomic_output(out, command="dedup", folder=False) as partial:
        partial.write_text("a\n")
    assert out.read_text() == "a\n"
    with atomic_output(out, command="dedup", folder=False, overwrite=True) as partial:
        partial.write_text("b\n")
    assert out.read_text() == "b\n"
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(UnsafeOutputError, match="is a folder"):
        check_output(folder, command="dedup", folder=False, overwrite=True)


def test_publish_rechecks_and_fsyncs(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def record(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", record)
    out = tmp_path / "out"
    staging = tmp_path / "staging"
    staging.mkdir()
    _write(staging)
    # Something unrelated appeared at OUT while the run was going on: refused, staging kept.
    out.mkdir()
    (out / "theirs.txt").write_text("keep")
    with pytest.raises(UnsafeOutputError):
        publish(staging, out, command="sft", overwrite=True, marker={"fingerprint": "f"})
    assert (out / "theirs.txt").read_text() == "keep" and staging.is_dir()
    (out / "theirs.txt").unlink()
    out.rmdir()
    publish(staging, out, command="sft", overwrite=False, marker={"fingerprint": "f"})
    marker = json.loads((out / MARKER).read_text())
    assert marker["command"] == "sft" and marker["fingerprint"] == "f"
    # The files were synced before the rename and the parent folder after it.
    assert str(staging / "data.txt") in synced
    assert synced[-1] == str(tmp_path)


def test_read_appended_keeps_whole_records_and_cuts_the_rest(tmp_path):
    from plamo_fast.outputs import read_appended

    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"k": 1}\n{"k": 2}\n{"k": 3')  # a kill tore the last line
    assert read_appended(log, ("k",)) == [{"k": 1}, {"k": 2}]
    assert log.read_bytes() == b'{"k": 1}\n{"k": 2}\n'
    log.write_bytes(b'{"k": 1}\n{"j": 2}\n[3]\n{"k": 4}\n')  # a record without k ends it
    assert read_appended(log, ("k",)) == [{"k": 1}]
    assert log.read_bytes() == b'{"k": 1}\n'
    log.write_bytes(b"")
    assert read_appended(log) == []
