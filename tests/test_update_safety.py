"""`image-tagger update` as a real process on hostile trees: it never writes outside PATH, never opens a
FIFO, writes all files or none (each atomically, mode kept), survives a full disk, and stays bounded
on huge files and deep trees (a note per skipped file, never a traceback)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from support.cli import explain, run_cli
from support.disk import immutable, small_disk

from image_tagger.fluxrules import files, setters
from image_tagger.fluxrules.imageref import ImageRef

APP = "flux-system:app"
ASSIGNMENT = f"{APP}=docker.io/acme/app:1.4.2"
MARKED = 'image: docker.io/acme/app:1.0.0 # {"$imagepolicy": "flux-system:app"}\n'
UPDATED = MARKED.replace("1.0.0", "1.4.2")


def update(path: Path, *extra: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return run_cli("update", str(path), "--policy", ASSIGNMENT, *extra, timeout=timeout)


def notes(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("note: ")]


def assert_clean_failure(done: subprocess.CompletedProcess[str], *parts: str) -> None:
    """The I/O-failure contract: exit 1, nothing listed as written, one stderr line naming the file."""
    assert done.returncode == 1, explain(done)
    assert done.stdout == "", explain(done)
    assert len(done.stderr.splitlines()) == 1, explain(done)
    assert "Traceback" not in done.stderr
    for part in parts:
        assert part in done.stderr, explain(done)


def leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*.image-tagger.tmp")]


def test_symlinked_file_leading_out_of_path_is_never_written(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text(MARKED)
    root = tmp_path / "repo"
    root.mkdir()
    (root / "link.yaml").symlink_to(outside)
    (root / "own.yaml").write_text(MARKED)

    done = update(root)

    assert (done.returncode, done.stdout) == (0, "own.yaml\n"), explain(done)
    assert outside.read_text() == MARKED
    assert (root / "link.yaml").is_symlink()
    assert any("link.yaml" in note and "outside PATH" in note for note in notes(done)), explain(done)


def test_symlinked_file_inside_path_updates_its_target_and_stays_a_link(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "base").mkdir(parents=True)
    (root / "base" / "real.yaml").write_text(MARKED)
    (root / "alias.yaml").symlink_to("base/real.yaml")

    done = update(root)

    assert (done.returncode, done.stdout) == (0, "alias.yaml\nbase/real.yaml\n"), explain(done)
    assert (root / "alias.yaml").is_symlink()
    assert (root / "base" / "real.yaml").read_text() == UPDATED


def test_symlinked_directory_is_not_entered(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "m.yaml").write_text(MARKED)
    root = tmp_path / "repo"
    root.mkdir()
    (root / "linked").symlink_to(elsewhere)

    done = update(root)

    assert (done.returncode, done.stdout) == (0, ""), explain(done)
    assert (elsewhere / "m.yaml").read_text() == MARKED
    assert any("linked/" in note and "symlinked directory" in note for note in notes(done)), explain(done)


def test_fifo_is_never_opened(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    os.mkfifo(root / "pipe.yaml")
    (root / "z.yaml").write_text(MARKED)

    done = update(root, timeout=30)  # opening the FIFO would block until the timeout

    assert (done.returncode, done.stdout) == (0, "z.yaml\n"), explain(done)
    assert any("pipe.yaml" in note and "FIFO" in note for note in notes(done)), explain(done)


def test_write_keeps_the_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "m.yaml").write_text(MARKED)
    os.chmod(root / "m.yaml", 0o640)

    done = update(root)

    assert (done.returncode, done.stdout) == (0, "m.yaml\n"), explain(done)
    assert (root / "m.yaml").read_text() == UPDATED
    assert stat.S_IMODE((root / "m.yaml").stat().st_mode) == 0o640
    assert leftovers(root) == []


@pytest.mark.real  # chattr +i, as root
def test_a_read_only_second_file_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "a.yaml").write_text(MARKED)
    (root / "b.yaml").write_text(MARKED)
    with immutable(root / "b.yaml"):  # read-only even for root
        done = update(root)

    assert_clean_failure(done, "b.yaml", "not writable")
    assert (root / "a.yaml").read_text() == MARKED
    assert (root / "b.yaml").read_text() == MARKED
    assert leftovers(root) == []


@pytest.mark.real  # mounts a small tmpfs, as root
def test_full_disk_leaves_every_file_intact(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    with small_disk(disk, "64k"):
        (disk / "a.yaml").write_text(MARKED)
        big = MARKED + "# padding\n" * 4000  # 40 KB + 44 KB: its copy cannot fit next to it
        (disk / "b.yaml").write_text(big)

        done = update(disk)

        assert_clean_failure(done, "b.yaml", "No space left on device")
        assert (disk / "a.yaml").read_text() == MARKED
        assert (disk / "b.yaml").read_text() == big
        assert leftovers(disk) == []


def test_a_failed_rename_puts_back_the_files_already_replaced(tmp_path: Path, monkeypatch) -> None:
    """Past the temporary files only a rename can fail; the originals of earlier files come back."""
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(MARKED)
    updates = setters.plan_updates(tmp_path, {APP: ImageRef("docker.io/acme/app", "1.4.2")})
    real_replace, calls = os.replace, []

    def failing_second(source, target):
        calls.append(target)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        real_replace(source, target)

    monkeypatch.setattr(files.os, "replace", failing_second)
    with pytest.raises(files.FileError, match=r"^b\.yaml: cannot be replaced \(Input/output error\)"):
        setters.write_updates(tmp_path, updates)
    assert [(tmp_path / n).read_text() for n in ("a.yaml", "b.yaml")] == [MARKED, MARKED]
    assert leftovers(tmp_path) == []


def test_huge_file_is_skipped_with_a_note(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "huge.yaml").write_text(MARKED + "# x\n" * (files.MAX_FILE_BYTES // 4))
    (root / "small.yaml").write_text(MARKED)

    done = update(root, timeout=30)

    assert (done.returncode, done.stdout) == (0, "small.yaml\n"), explain(done)
    assert any("huge.yaml" in note and "limit" in note for note in notes(done)), explain(done)


@pytest.mark.slow  # plans ~1 MiB of marked lines twice: seconds of CPU
def test_a_file_just_under_the_limit_is_updated_in_bounded_time(tmp_path: Path) -> None:
    """Thousands of marked lines in ~1 MiB: planning and the --dry-run diff are linear (was minutes)."""
    root = tmp_path / "repo"
    root.mkdir()
    document = "kind: A\nspec:\n  " + MARKED + "---\n"
    text = document * (files.MAX_FILE_BYTES // len(document) - 1)
    (root / "many.yaml").write_text(text)

    dry = update(root, "--dry-run", timeout=60)
    done = update(root, timeout=60)

    assert dry.returncode == 0 and dry.stdout.count("\n+  image: docker.io/acme/app:1.4.2") == text.count("image:")
    assert (done.returncode, done.stdout) == (0, "many.yaml\n"), explain(done)
    assert (root / "many.yaml").read_text() == text.replace("1.0.0", "1.4.2")


def test_very_deep_directories_are_noted_not_a_traceback(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "shallow").mkdir(parents=True)
    (root / "shallow" / "m.yaml").write_text(MARKED)
    made = [root / "deep"]
    for _ in range(1100):  # one at a time: pathlib's mkdir(parents=True) recurses per level
        made.append(made[-1] / "d")
    for folder in made:
        folder.mkdir()
    (made[-1] / "m.yaml").write_text(MARKED)
    try:
        done = update(root)
    finally:  # bottom-up, one level at a time: pytest's own clean-up (shutil.rmtree) recurses per level
        (made[-1] / "m.yaml").unlink()
        for folder in reversed(made):
            folder.rmdir()

    assert (done.returncode, done.stdout) == (0, "shallow/m.yaml\n"), explain(done)
    assert "Traceback" not in done.stderr
    assert any(f"more than {files.MAX_DIR_DEPTH} directories deep" in note for note in notes(done)), explain(done)


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 5000 + "]" * 5000 + "\n" + MARKED,
        "".join(" " * i + f"k{i}:\n" for i in range(1000)) + " " * 1000 + MARKED,
    ],
    ids=["flow", "block"],
)
def test_deeply_nested_yaml_is_noted_not_a_traceback(text: str, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "deep.yaml").write_text(text)
    (root / "m.yaml").write_text(MARKED)

    done = update(root)

    assert (done.returncode, done.stdout) == (0, "m.yaml\n"), explain(done)
    assert "Traceback" not in done.stderr
    assert any("deep.yaml" in note and "nested" in note for note in notes(done)), explain(done)
    assert (root / "deep.yaml").read_text() == text
