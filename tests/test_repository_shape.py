"""The repository stays easy to carry on: no file is a byte-for-byte copy of another, and no
Python module grows past 400 lines (one job per module; split along the module's own seams).

Both read the files git tracks, as a fresh clone has them.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_PYTHON_LINES = 400


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    paths = [ROOT / name for name in listed.decode().split("\0") if name]
    # A file deleted in the working tree but not yet in git's index is not in a fresh clone.
    return [path for path in paths if path.is_file()]


def test_the_checkout_is_a_git_work_tree_with_files_to_check() -> None:
    files = tracked_files()
    assert any(path.name == "pyproject.toml" for path in files)
    assert sum(path.suffix == ".py" for path in files) > 50


def test_no_file_is_a_byte_identical_copy_of_another() -> None:
    by_digest: dict[str, list[str]] = defaultdict(list)
    for path in tracked_files():
        by_digest[hashlib.sha256(path.read_bytes()).hexdigest()].append(str(path.relative_to(ROOT)))
    copies = sorted(sorted(names) for names in by_digest.values() if len(names) > 1)
    assert copies == [], f"identical files (keep one, import or read it where needed): {copies}"


def test_no_python_file_is_over_400_lines() -> None:
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in tracked_files()
        if path.suffix == ".py"
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_PYTHON_LINES
    }
    assert too_long == {}, f"split these along their own seams: {too_long}"
