"""The layout's promises, read from the import statements of every module (issue #25):

- no import cycles (function-level imports count too; a module's own parent packages do not, as
  Python initializes them first);
- the engine side (engine, runtime, kernels, errors, the reference model) imports no application;
- an application (corpus, evaluation, serve, distributed, the CLI, warmup) imports of e5np only its own subpackage,
  and the public faces of the others: ``e5np``, ``e5np.errors``, ``e5np.engine``, ``e5np.runtime``
  and other applications' packages, never their modules;
- ``import e5np`` loads no application and no Numba.
"""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APPLICATIONS = ("e5np.corpus", "e5np.evaluation", "e5np.serve", "e5np.distributed", "e5np.cli", "e5np.warmup")
ENGINE_SIDE = ("e5np.engine", "e5np.runtime", "e5np.kernels", "e5np.errors", "e5np.reference_model")
PUBLIC_FACES = {"e5np", "e5np.errors", "e5np.engine", "e5np.runtime", *APPLICATIONS}


def module_files() -> dict[str, Path]:
    files = {}
    for root, package in ((REPO / "e5np", "e5np"), (REPO / "kernels", "e5np.kernels")):
        for path in root.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join((package, *parts))
            files[name.removesuffix(".__init__")] = path
    return files


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The e5np modules ``name`` imports, anywhere in its body; ``from P import x`` counts as P.x
    where that is a module."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
    return {m for m in found if m in modules and m != name}


def graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def within(module: str, packages) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_modules_are_read():
    g = graph()
    assert {"e5np.engine.model", "e5np.runtime.precision", "e5np.kernels.gemm", "e5np.serve.app"} <= set(g)
    assert "e5np.runtime" in g["e5np.engine.model"] and "e5np.kernels" in g["e5np.engine.linear"]


def test_no_import_cycles():
    g = graph()
    edges = {m: {t for t in targets if not m.startswith(t + ".")} for m, targets in g.items()}
    state, cycles = {}, []

    def visit(m, path):
        state[m] = "open"
        for t in sorted(edges[m]):
            if state.get(t) == "open":
                cycles.append(path[path.index(t):] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = "done"

    for m in sorted(edges):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_engine_imports_no_application():
    wrong = [(m, t) for m, targets in graph().items() if within(m, ENGINE_SIDE)
             for t in targets if within(t, APPLICATIONS)]
    assert not wrong, f"engine-side modules importing an application: {wrong}"


def test_applications_use_public_faces_only():
    wrong = []
    for m, targets in graph().items():
        app = next((a for a in APPLICATIONS if within(m, [a])), None)
        if app is None:
            continue
        wrong += [(m, t) for t in targets if not within(t, [app]) and t not in PUBLIC_FACES]
    assert not wrong, f"applications importing another part's modules, not its public face: {wrong}"


def test_import_e5np_loads_no_application_and_no_numba():
    code = "import sys, e5np; print(' '.join(sorted(m for m in sys.modules if m.startswith(('e5np', 'numba')))))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == ["e5np", "e5np.errors"], loaded


def test_the_wheel_ships_every_package():
    """pyproject.toml lists the packages a wheel holds: a subpackage left out works in an editable
    install and is missing from ``pip install .`` (it happened once)."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "e5np").rglob("__init__.py")}
    assert found | {"e5np.kernels"} == listed, (sorted(found - listed), sorted(listed - found - {"e5np.kernels"}))
