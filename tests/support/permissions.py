"""What "private" means for the files Lepton Lab keeps: folders 0700, files 0600."""

from __future__ import annotations

import stat
from pathlib import Path


def not_private(root: Path) -> list[str]:
    """Every folder under (and including) ``root`` that is not 0700 and every file not 0600,
    with its mode; empty when all is private."""
    found = []
    for path in [root, *sorted(root.rglob("*"))]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        want = 0o700 if path.is_dir() else 0o600
        if mode != want:
            found.append(f"{path} {mode:o}")
    return found
