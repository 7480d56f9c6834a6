"""Rules the code keeps: nothing happens at import, and the project stands alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = [
    ".".join(p.relative_to(ROOT).with_suffix("").parts)
    for pkg in ("nonrecours", "data", "features", "training", "serving", "monitoring")
    for p in (ROOT / pkg).rglob("*.py")
]


def test_importing_every_module_creates_no_file_and_loads_no_law_engine(tmp_path):
    code = (
        "import sys, importlib\n"
        f"for m in {[m.removesuffix('.__init__') for m in MODULES]!r}: importlib.import_module(m)\n"
        "assert 'openfisca_france' not in sys.modules, 'OpenFisca loaded at import'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_nothing_reads_the_shared_folder_beside_the_project():
    needle = "../" + "shared"  # spelled in two pieces so that this file does not match itself
    offenders = [
        str(p)
        for p in ROOT.rglob("*")
        if p.suffix in {".py", ".sh", ".toml", ".yaml", ".cfg"} and ".venv" not in p.parts and needle in p.read_text(errors="ignore")
    ]
    assert offenders == []
