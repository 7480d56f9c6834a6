"""Check the layers of pyproject.toml's import-linter contract on the installed layout.

import-linter finds a package's modules by walking its folder, and the editable install maps
folders outside ``nonrecours/`` (``data/``, ``features/``, ...) into it with an import hook that
a folder walk does not see. So this builds the installed layout as a tree of links in a
temporary folder, from ``[tool.setuptools.package-dir]``, and runs ``lint-imports`` on it.
Extra files given as ``--add PACKAGE_PATH=SOURCE`` are placed in the tree (the tests plant a
violation that way). Exit status: lint-imports'.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def link_tree(target: Path) -> None:
    """``target/nonrecours/...`` as setuptools installs it, each file a link to the source."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = setuptools.get("package-dir", {})
    for package in setuptools["packages"]:
        source = ROOT / mapping.get(package, package.replace(".", "/"))
        folder = target / package.replace(".", "/")
        folder.mkdir(parents=True, exist_ok=True)
        for module in source.glob("*.py"):
            (folder / module.name).symlink_to(module)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--add", action="append", default=[], help="PACKAGE_PATH=SOURCE, e.g. nonrecours/core/bad.py=/tmp/bad.py")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        link_tree(Path(tmp))
        for item in args.add:
            where, _, source = item.partition("=")
            shutil.copy(source, Path(tmp) / where)
        env = {**os.environ, "PYTHONPATH": tmp}
        lint = Path(sys.executable).parent / "lint-imports"
        return subprocess.run([str(lint), str(ROOT / "pyproject.toml"), "--no-cache"], cwd=tmp, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
