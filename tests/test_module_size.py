"""Modules stay small and single-purpose (style: "Keep modules small"): none of bfxd's is over 400 lines."""

from __future__ import annotations

from pathlib import Path

import bfxd

MAX_LINES = 400


def test_no_module_is_over_400_lines() -> None:
    root = Path(bfxd.__file__).parent
    sizes = {str(path.relative_to(root)): len(path.read_text().splitlines()) for path in root.rglob("*.py")}
    assert len(sizes) > 50  # the walk found the package
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
