"""What `pip install` puts into a student's environment, and how the modules depend on each other.

The wheel holds one top-level package, `nnrun` (the repository's dsl/ and engine/
folders become nnrun.dsl and nnrun.engine), with the grammar as package data; the
modules' imports form no circle, and only `nnrun.__main__` imports the command line.
"""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

# repository folder → installed package
PACKAGES = {"nnrun": "nnrun", "dsl": "nnrun.dsl", "engine": "nnrun.engine"}
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                    ".hypothesis", "runs", "*.nbi", "*.nbc")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project built as a wheel, from a copy of the tree (the checkout stays untouched), offline."""
    pytest.importorskip("setuptools", minversion="68")
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=NOT_COPIED)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(work / "dist"), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (built,) = (work / "dist").glob("nnrun-*.whl")
    return built


def test_the_wheel_holds_one_top_level_package_and_the_grammar(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert {name for name in top if not name.endswith(".dist-info")} == {"nnrun"}
    assert "nnrun/dsl/grammar.lark" in names and "nnrun/locale/fr/LC_MESSAGES/nnrun.mo" in names
    assert {"nnrun/engine/network.py", "nnrun/engine/layers/conv.py", "nnrun/engine/cuda/backend.py",
            "nnrun/data/lookup.py", "nnrun/cli.py"} <= set(names)


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed (not editable); its dependencies
    are read from this environment's site-packages, so nothing is downloaded."""
    home = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False).create(home)
    python = home / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # one line of a .pth adds a folder; the editable install's own .pth files there are not run
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def in_fresh_environment(python: Path, code: str, cwd: Path) -> str:
    """The output of ``code`` run by the fresh environment's Python in ``cwd`` (it must succeed)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([str(python), "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_only_nnrun_is_importable_after_installing_the_wheel(installed, tmp_path):
    code = (
        "import importlib.util, nnrun, nnrun.engine, nnrun.dsl\n"
        "print(nnrun.__file__)\n"
        "print(importlib.util.find_spec('engine'), importlib.util.find_spec('dsl'))\n"
        "print(nnrun.dsl.resolve(nnrun.dsl.parse('input 4; dense 3 relu; dense 2 softmax')).total_params)\n"
    )
    where, missing, params = in_fresh_environment(installed, code, tmp_path).splitlines()
    assert not Path(where).is_relative_to(ROOT)  # the installed copy, not the checkout
    assert missing == "None None"
    assert params == str((4 + 1) * 3 + (3 + 1) * 2)


def test_the_installed_program_answers_and_never_imports_numba_for_the_calculator(installed, tmp_path):
    code = (
        "import sys\n"
        "from nnrun.cli import main\n"
        "status = main(['summary', 'conv 32 3x3 relu; pool max 2; dense 10 softmax', '--input', '28x28x1'])\n"
        "print('numba' in sys.modules, status)\n"
    )
    out = in_fresh_environment(installed, code, tmp_path)
    assert "54,410" in out and out.splitlines()[-1] == "False 0"


def test_python_started_in_the_checkout_uses_the_checkout_and_still_finds_dsl_and_engine(installed):
    """In the repository's root the folder nnrun/ hides the installed package; the language and
    the engine are then its sibling folders (as `python -m nnrun` and bench/ expect)."""
    code = "import nnrun.dsl, nnrun.engine.backend; print(nnrun.dsl.__file__); print(nnrun.engine.backend.__file__)"
    assert in_fresh_environment(installed, code, ROOT).split() == [str(ROOT / "dsl" / "__init__.py"),
                                                                   str(ROOT / "engine" / "backend.py")]
    result = subprocess.run([str(installed), "-m", "nnrun", "check", "specs/xor.net"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0 and "9 parameters" in result.stdout, result.stderr[-2000:]


# ------------------------------------------------------------------ the import graph


def module_files() -> dict[str, Path]:
    """Installed module name → source file, for every module of the three folders."""
    modules = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that ``name`` imports anywhere in its file, inside functions too."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found |= {target for target in targets if target in modules and target != name}
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def test_the_graph_sees_the_imports_it_must():
    graph = import_graph()
    assert "nnrun.commands" in graph["nnrun.cli"]  # a lazy import inside a function
    assert "nnrun.engine.backend" in graph["nnrun.engine.cuda"]  # `from nnrun.engine.backend import …`
    assert "nnrun.engine.initializers" in graph["nnrun.engine.layers.dense"]  # `from .. import initializers`
    assert "nnrun.specfile" in graph["nnrun.cli"] and "nnrun.specfile" in graph["nnrun.commands"]


def test_no_module_imports_itself_back_through_others():
    graph = import_graph()
    circles = []

    def visit(name: str, path: list[str], done: set[str]) -> None:
        for target in sorted(graph[name]):
            if target in path:
                circles.append(" → ".join(path[path.index(target):] + [target]))
            elif target not in done:
                visit(target, path + [target], done)
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name], done)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_only_the_program_entry_imports_the_command_line():
    graph = import_graph()
    assert {name for name, targets in graph.items() if "nnrun.cli" in targets} == {"nnrun.__main__"}


def test_the_language_and_the_engine_stay_below_the_program():
    graph = import_graph()
    program = {name for name in graph if not name.startswith(("nnrun.dsl", "nnrun.engine")) and name != "nnrun.spin"}
    for name, targets in graph.items():
        if name.startswith("nnrun.dsl"):
            assert not {t for t in targets if not t.startswith("nnrun.dsl")}, name
        if name.startswith("nnrun.engine"):
            assert not targets & program, name
