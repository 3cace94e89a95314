"""The import graph: layers only point down, no two files import each other, the client side
of the storage service imports no server module, and the trainer uses only the client side.

Lazy imports inside functions count: what a module can import is what it depends on.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: DESIGN.md's layers, lowest first.
LAYERS = {"fpga_kernels": 0, "host": 1, "storage_service": 2, "trainer": 3, "sim": 4, "bench": 4, "nessa": 5}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(f): f for top in LAYERS for f in sorted((ROOT / top).rglob("*.py"))
           if "_pb2" not in f.name and ".ci" not in f.parts}


def _resolve(target: str) -> str | None:
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _imports(name: str) -> set[str]:
    """Project modules ``name`` imports (absolute, relative, ``from pkg import module``)."""
    path = MODULES[name]
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
        for t in targets:
            dep = _resolve(t)
            if dep and dep != name and not name.startswith(dep + "."):
                out.add(dep)
    return out


GRAPH = {m: _imports(m) for m in MODULES}


def test_no_import_points_to_a_higher_layer():
    bad = [f"{m} -> {d}" for m, deps in GRAPH.items() for d in deps
           if LAYERS[d.split(".")[0]] > LAYERS[m.split(".")[0]]]
    assert not bad, "upward imports:\n" + "\n".join(sorted(bad))


def test_no_two_modules_import_each_other_through_any_path():
    # Tarjan's strongly connected components; any component of two or more is a circle.
    index, low, stack, on, circles = {}, {}, [], set(), []
    counter = 0
    for start in sorted(GRAPH):
        if start in index:
            continue
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        work = [(start, iter(sorted(GRAPH[start])))]
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(GRAPH[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        circles.append(sorted(comp))
    assert not circles, f"import circles: {circles}"


def _closure(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += GRAPH[m]
    return seen


def test_client_side_imports_no_server_module():
    from storage_service import CLIENT_MODULES

    for m in CLIENT_MODULES:
        assert m in MODULES or m.endswith("_pb2") or m.endswith("_pb2_grpc"), f"{m} listed but missing"
    reached = {m for m in _closure("storage_service.client") if m.startswith("storage_service")}
    assert reached <= set(CLIENT_MODULES), f"client reaches server modules: {sorted(reached - set(CLIENT_MODULES))}"


def test_trainer_uses_only_the_client_side():
    from storage_service import CLIENT_MODULES

    for m in (m for m in MODULES if m.split(".")[0] == "trainer"):
        used = {d for d in _closure(m) if d.startswith("storage_service")}
        assert used <= set(CLIENT_MODULES), f"{m} reaches {sorted(used - set(CLIENT_MODULES))}"


@pytest.mark.parametrize("lib", ["host", "storage_service", "trainer", "sim", "bench"])
def test_libraries_never_import_the_cli_package(lib):
    assert not [m for m in MODULES if m.split(".")[0] == lib and any(d.split(".")[0] == "nessa" for d in GRAPH[m])]


def test_kernel_sources_hold_no_python_but_the_path_constant():
    assert [m for m in MODULES if m.startswith("fpga_kernels")] == ["fpga_kernels"]
