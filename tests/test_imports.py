"""lora_mini's import graph, read from the source (ast): no cycles, no module importing another's private names.

Every import counts, at the top of a module or inside a function: a cycle hidden in a function is still one.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "lora_mini"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    """lora_mini/bench/__init__.py -> "lora_mini.bench"; lora_mini/lora.py -> "lora_mini.lora"."""
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources(package: Path = PACKAGE) -> dict[str, tuple[Path, ast.Module]]:
    return {module_name(p, package): (p, ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(package.rglob("*.py"))}


def imports(name: str, path: Path, tree: ast.Module, modules: set[str]) -> list[tuple[str, str | None, int]]:
    """(imported lora_mini module, name taken from it or None, line) for every import in ``tree``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names if a.name in modules]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:  # "from . import checks": the module itself
                    found.append((f"{target}.{alias.name}", None, node.lineno))
                elif target in modules:
                    found.append((target, alias.name, node.lineno))
    return found


def graph(package: Path = PACKAGE) -> tuple[dict[str, set[str]], list[str]]:
    """({module: modules it imports}, ["module:line imports _name from other"])."""
    src = sources(package)
    edges: dict[str, set[str]] = {name: set() for name in src}
    private = []
    for name, (path, tree) in src.items():
        for target, taken, line in imports(name, path, tree, set(src)):
            if target != name:
                edges[name].add(target)
            if taken and taken.startswith("_") and not taken.startswith("__") and target != name:
                private.append(f"{name}:{line} imports {taken} from {target}")
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of two or more modules (Tarjan's algorithm)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return groups


def test_no_import_cycles_between_lora_mini_modules():
    edges, _ = graph()
    assert cycles(edges) == [], "import cycles (each group imports itself round): " + str(cycles(edges))


def test_no_module_imports_another_modules_private_names():
    _, private = graph()
    assert private == []


def test_the_checks_find_what_they_look_for(tmp_path):
    """The two rules above, on a small package that breaks both: a cycle through a function-level import,
    and a private name imported from a sibling."""
    pkg = tmp_path / "lora_mini"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from .a import f\n")
    (pkg / "a.py").write_text("from . import b\n\ndef f():\n    from .sub.c import g\n")
    (pkg / "b.py").write_text("import lora_mini.sub\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("from ..a import _helper\nfrom ..b import x\n\ndef g():\n    return 1\n")
    edges, private = graph(pkg)
    assert edges["lora_mini.a"] == {"lora_mini.b", "lora_mini.sub.c"}
    assert edges["lora_mini.b"] == {"lora_mini.sub"}
    assert cycles(edges) == [["lora_mini.a", "lora_mini.sub.c"]]
    assert private == ["lora_mini.sub.c:1 imports _helper from lora_mini.a"]
