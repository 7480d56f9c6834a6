"""Rules the code keeps, checked on the code itself: one namespace, enforced layers, nothing at
import, the environment read only at the edge, no magic number, docstrings that name modules
that exist, a thin command line, and a project that stands alone."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("core", "law", "data", "features", "training", "serving", "monitoring", "app")
ENTRY_POINT = "nonrecours.app.bento"
"""The one module that builds something at import: ``bentoml serve`` imports it to start a server."""


def modules() -> list[str]:
    """Every module of the installed package, by its ``nonrecours.`` name."""
    names = []
    for layer in LAYERS:
        package = importlib.import_module(f"nonrecours.{layer}")
        names += [package.__name__] + [f"{package.__name__}.{m.name}" for m in pkgutil.iter_modules(package.__path__)]
    return names


def source(module: str) -> Path:
    return Path(importlib.util.find_spec(module).origin)


def test_every_folder_is_installed_under_the_nonrecours_namespace_and_nowhere_else(tmp_path):
    code = (
        "import importlib\n"
        f"for layer in {LAYERS!r}: importlib.import_module('nonrecours.' + layer)\n"
        "import nonrecours.features.profiles, nonrecours.law.openfisca, nonrecours.serving.scoring\n"
        "bare = []\n"
        "for name in ('data', 'features', 'training', 'serving', 'monitoring', 'law', 'core', 'app'):\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "        bare.append(name)\n"
        "    except ModuleNotFoundError:\n"
        "        pass\n"
        "assert not bare, f'importable without the nonrecours. prefix: {bare}'\n"
    )
    # From a folder outside the checkout: what an installed project offers, not the source tree.
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert len(modules()) > 40


def test_a_built_wheel_installs_one_top_level_package_with_its_data_files(tmp_path):
    import zipfile

    had_build = (ROOT / "build").exists()
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(tmp_path / "wheel")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    if not had_build:  # setuptools builds in the source tree's build/; leave the checkout as it was
        shutil.rmtree(ROOT / "build", ignore_errors=True)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "wheel").glob("nonrecours-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"nonrecours", wheel.name.split("-py3")[0] + ".dist-info"}
    for data in (
        "nonrecours/data/calibration.yaml",
        "nonrecours/data/population.yaml",
        "nonrecours/law/parameters.yaml",
        "nonrecours/serving/examples/households.json",
    ):
        assert data in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "from nonrecours.data.calibration import load_calibration\n"
        "from nonrecours.law.parameters import load_law_parameters\n"
        "from nonrecours.serving.request import example_households\n"
        "import nonrecours.data.calibration as c\n"
        f"assert c.__file__.startswith({str(site)!r}), c.__file__\n"
        "assert load_calibration().shapes.pay.smic_gross_monthly > 0 and load_law_parameters().css and "
        "example_households()\n"
    )
    # PYTHONPATH comes before site-packages: the wheel's files, not the editable install's
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(site)}
    )
    assert result.returncode == 0, result.stderr


def _lint_imports(*, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).parent / "lint-imports"
    return subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
    )


def test_the_layers_hold_as_a_static_reader_sees_them():
    result = _lint_imports(cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout
    analysed = int(re.search(r"Analyzed (\d+) files", result.stdout).group(1))
    assert analysed >= len(modules()), result.stdout  # every module was seen, so the contract is not vacuous


def test_an_import_against_the_layers_breaks_the_contract(tmp_path):
    for layer in LAYERS:  # a copy of the package's portions, one of them with a module that breaks the layers
        shutil.copytree(
            ROOT / layer / "nonrecours", tmp_path / layer / "nonrecours", ignore=shutil.ignore_patterns("__pycache__")
        )
    (tmp_path / "law" / "nonrecours" / "law" / "bad.py").write_text("from nonrecours.serving.scoring import worklist\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(tmp_path / layer) for layer in LAYERS)}
    result = _lint_imports(cwd=tmp_path, env=env)
    assert result.returncode != 0 and "nonrecours.law.bad -> nonrecours.serving.scoring" in result.stdout, result.stdout


def test_importing_every_module_creates_no_file_and_loads_no_law_engine(tmp_path):
    code = (
        "import sys, importlib\n"
        f"for m in {[m for m in modules() if m != ENTRY_POINT]!r}: importlib.import_module(m)\n"
        "assert 'openfisca_france' not in sys.modules, 'OpenFisca loaded at import'\n"
        "assert 'nonrecours.app.bento' not in sys.modules, 'the server entry point was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env={"PATH": ""}
    )
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []


def _reads_environment(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in {"environ", "getenv", "environb"}
        ):
            lines.append(node.lineno)
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(a.name in {"environ", "getenv"} for a in node.names)
        ):
            lines.append(node.lineno)
    return lines


def test_no_module_below_the_application_layer_reads_the_environment():
    offenders = {
        m: _reads_environment(ast.parse(source(m).read_text())) for m in modules() if not m.startswith("nonrecours.app")
    }
    assert {m: lines for m, lines in offenders.items() if lines} == {}
    # and the check sees a read where there is one
    assert _reads_environment(ast.parse((ROOT / "app" / "nonrecours" / "app" / "environment.py").read_text()))


ALLOWED_NUMBERS = {0, 1, 2, -1, 12, 100}
"""Not magic: zero, one, a pair or a square, a sign, months in a year, a percentage."""
NUMBERS_LIVE_HERE = {
    "nonrecours.core.config": "the typed configuration: every default is a number declared with its description",
    "nonrecours.training.plots": "figure geometry (inches, font sizes, bins of a picture), not figures of the domain",
    "nonrecours.monitoring.plots": "figure geometry, as above",
}
"""Modules whose numbers are their subject; kept short."""


def magic_numbers(tree: ast.Module) -> list[tuple[int, object]]:
    """Numeric literals outside module-level named constants and ``Field(...)`` declarations."""
    declared = set()
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            declared |= {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Field":
            declared |= {id(n) for kw in node.keywords for n in ast.walk(kw.value)}
    return [
        (n.lineno, n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant)
        and type(n.value) in (int, float)
        and id(n) not in declared
        and n.value not in ALLOWED_NUMBERS
    ]


def test_no_magic_number_outside_named_constants_settings_and_data_files():
    found = {
        m: magic_numbers(ast.parse(source(m).read_text()))
        for m in modules()
        if m not in NUMBERS_LIVE_HERE and not m.startswith("nonrecours.app")
    }
    assert {m: v for m, v in found.items() if v} == {}
    assert magic_numbers(ast.parse("def f(x):\n    return x * 0.57\n")) == [(2, 0.57)]
    assert magic_numbers(ast.parse("RATE = 0.57\n")) == []


MODULE_NAME = re.compile(
    r"\b((?:nonrecours\.)?(?:core|app|law|data|features|training|serving|monitoring)(?:\.[a-z_][a-z0-9_]*)+)"
)


def _names_resolve(name: str) -> bool:
    """``name`` is a module, or an attribute of one (``nonrecours.serving.scoring.score_tables``)."""
    name = name if name.startswith("nonrecours.") else f"nonrecours.{name}"
    parts = name.split(".")
    for cut in range(len(parts), 1, -1):
        module = ".".join(parts[:cut])
        try:
            found = importlib.util.find_spec(module)
        except ModuleNotFoundError:
            found = None
        if found is not None:
            obj = importlib.import_module(module)
            for attr in parts[cut:]:
                if not hasattr(obj, attr):
                    return False
                obj = getattr(obj, attr)
            return True
    return False


def _docstrings(tree: ast.Module) -> list[str]:
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))]
    return [d for d in (ast.get_docstring(n) for n in nodes) if d]


def _is_setting(name: str) -> bool:
    """``serving.workers`` names a setting (section and field), not a module."""
    from nonrecours.core.config import Settings

    section, _, rest = name.partition(".")
    fields = getattr(Settings.model_fields.get(section), "annotation", None)
    return fields is not None and rest.split(".")[0] in fields.model_fields


def stale_names(doc: str) -> list[str]:
    """Dotted names in ``doc`` that look like project modules (or their attributes) and are not."""
    return [name for name in MODULE_NAME.findall(doc) if not _is_setting(name) and not _names_resolve(name)]


def test_docstrings_name_only_modules_that_exist():
    stale = {
        m: names
        for m in modules()
        for doc in _docstrings(ast.parse(source(m).read_text()))
        if (names := stale_names(doc))
    }
    assert stale == {}
    assert stale_names("see :mod:`features.situation_gone` and serving.workers") == ["features.situation_gone"]


ROOF_MAX_LINES = 1_500
"""Lines of code in the application layer: it parses, loads, opens, calls one lower function, prints."""
FUNCTION_MAX_LINES = 40
MAX_PROJECT_IMPORTS = 12
"""Project modules one module may import from: more says it does several layers' work."""


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and ast.get_docstring(node, clean=False) is not None
        ):
            lines |= set(range(node.body[0].lineno, node.body[0].end_lineno + 1))
    return lines


def code_lines(text: str) -> set[int]:
    """The numbers of a module's lines of code: lines that hold a token, not docstrings, comments or blank lines
    (what `cloc` counts as code)."""
    import io
    import tokenize

    skipped = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}
    code: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type not in skipped:
            code |= set(range(token.start[0], token.end[0] + 1))
    return code - _docstring_lines(ast.parse(text))


def roof() -> dict[str, str]:
    return {m: source(m).read_text() for m in modules() if m.startswith("nonrecours.app")}


def test_the_roof_holds_wiring_only():
    sizes = {m: len(code_lines(text)) for m, text in roof().items()}
    assert sum(sizes.values()) <= ROOF_MAX_LINES, sorted(sizes.items(), key=lambda kv: -kv[1])
    long = {}
    for m, text in roof().items():
        code = code_lines(text)
        for f in ast.walk(ast.parse(text)):
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = len(code & set(range(f.lineno, f.end_lineno + 1)))
                if n > FUNCTION_MAX_LINES:
                    long[f"{m}.{f.name}"] = n
    assert long == {}
    # and the counts see what is there: a docstring and a comment are not code, a statement is
    assert code_lines('"""doc\nmore"""\n\n# why\nx = 1\n') == {5}


def project_imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nonrecours"):
            found |= {node.module} if node.module.count(".") > 1 else {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("nonrecours")}
    return found


def test_no_module_imports_from_more_than_twelve_project_modules():
    counts = {m: len(project_imports(ast.parse(source(m).read_text()))) for m in modules()}
    assert {m: n for m, n in counts.items() if n > MAX_PROJECT_IMPORTS} == {}
    assert project_imports(ast.parse("from nonrecours.app import cli, web\nfrom nonrecours.core.io import a, b\n")) == {
        "nonrecours.app.cli",
        "nonrecours.app.web",
        "nonrecours.core.io",
    }


def test_the_committed_mlproject_is_the_one_the_settings_write():
    from nonrecours.app.mlproject import render

    assert (ROOT / "MLproject").read_text() == render(), "run `nonrecours mlproject > MLproject`"


def test_nothing_reads_the_shared_folder_beside_the_project():
    needle = "../" + "shared"  # spelled in two pieces so that this file does not match itself
    offenders = [
        str(p)
        for p in ROOT.rglob("*")
        if p.suffix in {".py", ".sh", ".toml", ".yaml", ".cfg"}
        and ".venv" not in p.parts
        and p.is_file()
        and needle in p.read_text(errors="ignore")
    ]
    assert offenders == []


def test_every_layer_has_a_docstring_saying_what_it_holds():
    assert all(importlib.import_module(f"nonrecours.{layer}").__doc__ for layer in LAYERS)


def _locked(lock: Path) -> set[str]:
    return {
        re.split(r"[=\[ ]", line, maxsplit=1)[0].lower().replace("_", "-")
        for line in lock.read_text().splitlines()
        if re.match(r"^[A-Za-z0-9]", line)
    }


def test_the_shipped_package_imports_only_what_the_runtime_lock_installs():
    """No test helper ships (the server launcher lives in tests/), and no shipped module imports a
    package that only the development lock carries (schemathesis, hypothesis, import-linter...)."""
    import ast

    dev_only = _locked(ROOT / "requirements-dev.lock") - _locked(ROOT / "requirements.lock")
    assert {"schemathesis", "hypothesis", "import-linter"} <= dev_only
    imported_by = {}
    for module in modules():
        tree = ast.parse(source(module).read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.module and not node.level
                else []
            )
            for name in names:
                imported_by.setdefault(name.split(".")[0].lower().replace("_", "-"), module)
    assert not {
        name: imported_by[name]
        for name in dev_only.intersection(imported_by) | {"importlinter", "grimp"}.intersection(imported_by)
    }
    assert "nonrecours.app.process" not in modules()


def test_every_locked_file_is_pinned_with_its_hash_and_setup_requires_them():
    for lock in ("requirements.lock", "requirements-dev.lock"):
        text = (ROOT / lock).read_text()
        pins = re.findall(r"^[A-Za-z0-9][^\s]*==[^\s]+ \\$", text, flags=re.M)
        assert len(pins) == len(_locked(ROOT / lock)) > 100, lock
        assert text.count("--hash=sha256:") >= len(pins), lock
    assert "--require-hashes" in (ROOT / "scripts" / "setup.sh").read_text()


def test_every_module_is_found_by_its_name_alone_with_no_import_hook():
    """A static reader (mypy, import-linter, an editor) resolves ``nonrecours.<layer>.<module>`` to
    ``<layer>/nonrecours/<layer>/<module>.py``: the file is where its name says, and the editable
    install only puts the eight folders on the path (a plain .pth, no import hook to follow)."""
    import site

    for m in modules():
        parts = m.split(".")
        where = ROOT / parts[1] / Path(*parts) if len(parts) > 2 else ROOT / parts[1] / "nonrecours" / parts[1]
        expected = where.with_suffix(".py") if len(parts) > 2 else where / "__init__.py"
        assert source(m) == expected, m
    pth = [p for d in site.getsitepackages() for p in Path(d).glob("*nonrecours*.pth")]
    assert pth, "no .pth of the editable install"
    entries = [line for p in pth for line in p.read_text().splitlines() if line.strip()]
    assert not any(line.startswith("import") for line in entries), entries  # no finder, no hook
    assert {Path(line) for line in entries} == {ROOT / layer for layer in LAYERS}
