"""What git holds stays small enough to clone quickly, whether or not a contributor runs the
pre-commit hooks (.pre-commit-config.yaml): no tracked file is over 300 KB, and the reports hold
what their pages cite, not predictions or caches (.gitignore; each report's ARTIFACTS.md)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE = 300 * 1024  # the --maxkb of check-added-large-files
MAX_REPORTS = 2 * 1024 * 1024  # `git ls-files reports | xargs du -ch` under 2 MB
BLOCK = 4096  # du counts whole blocks; 4 KiB on the usual file systems


def _tracked(*paths: str) -> list[Path]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "ls-files", "-z", "--", *paths], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    # A file deleted in the working tree but not yet in the index is not this test's business.
    return [ROOT / f for f in out.split("\0") if f and (ROOT / f).is_file()]


def test_no_tracked_file_is_over_300_kb():
    large = {
        str(p.relative_to(ROOT)): p.stat().st_size // 1024
        for p in _tracked()
        if p.stat().st_size > MAX_FILE
    }
    assert not large, f"tracked files over 300 KB (KB): {large}; keep them out of git"


def test_the_tracked_reports_are_under_2_mb():
    sizes = [-(-p.stat().st_size // BLOCK) * BLOCK for p in _tracked("reports")]
    assert sizes, "reports/ holds the committed reports"
    total = sum(sizes)
    assert total < MAX_REPORTS, (
        f"git tracks {total / 2**20:.2f} MB under reports/; leave regenerated files out "
        f"(.gitignore) and say how to rebuild them in the report's ARTIFACTS.md"
    )
