"""The layer cake holds: drawn from the imports (AST, every import, module level or inside a
function), genrec has no import circle and no import that runs back up a floor.

Floors, lowest first (a module may import from its own floor or below):

1. errors, columns, config, paths, registry, _version, nn/, decoding/
2. data/
3. the Recommender contract: core/ (recommender, topk) and io.py (artifacts);
   models/__init__.py (lazy declarations) and models/base.py (re-exports for model files)
4. evaluation/ (metrics, evaluator, stats, diagnostics), training/
5. tokenizers/, text/, ann (approximate top-k)
6. models/ (one file per model)
7. ranking/ (the cascade)
8. bench/ (benchmark, suites, tuning, reproduction), report/, testing.py
9. serve/, chat.py, distributed.py
10. cli.py, __main__.py
11. the package root genrec/__init__.py (the public API)

Importing ``a.b.c`` also runs the packages ``a.b`` and ``a``, so a package ``__init__`` counts
as imported too (the root ``genrec/__init__`` excepted: everything runs it first; and a module
inside a package is not said to import its own package).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "genrec"

FLOORS: list[tuple[int, tuple[str, ...]]] = [
    (1, ("_version", "errors", "columns", "config", "paths", "registry", "console", "nn")),
    (1, ("decoding",)),
    (2, ("data",)),
    (3, ("core", "io", "models.__init__", "models.base")),
    (4, ("evaluation", "training")),
    (5, ("tokenizers", "text", "ann")),
    (6, ("models",)),
    (7, ("ranking",)),
    (8, ("bench", "report", "testing")),
    (9, ("serve", "chat", "distributed")),
    (10, ("cli", "__main__")),
    (11, ("__init__",)),
]


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def floor_of(module: str) -> int | None:
    """The floor of a module name relative to ``genrec`` (longest matching prefix)."""
    best, best_len = None, -1
    for floor, prefixes in FLOORS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = floor, len(prefix)
    return best


def _resolve(name: str) -> str | None:
    """``genrec.x.y`` -> the module key of its file (a module or a package ``__init__``)."""
    if not name.startswith("genrec"):
        return None
    rel = name[len("genrec") :].lstrip(".")
    if not rel:
        return "__init__"
    if rel in MODULES:
        return rel
    if f"{rel}.__init__" in MODULES:
        return f"{rel}.__init__"
    return None


def _packages_of(module: str, importer: str) -> list[str]:
    """The package ``__init__`` modules that importing ``module`` runs (root excluded, and
    the packages the importer itself lives in: a package's modules run inside it)."""
    parts = module.split(".")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    inside = importer.split(".")[:-1]
    return [
        ".".join([*parts[:i], "__init__"])
        for i in range(1, len(parts))
        if parts[:i] != inside[:i] or len(inside) < i
    ]


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in ast.walk(node):
                if hasattr(sub, "lineno"):
                    lines.add(sub.lineno)
    return lines


def import_edges() -> list[tuple[str, str, int]]:
    """``(importer, imported, line)`` for every genrec import (TYPE_CHECKING blocks aside)."""
    edges = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        pkg = module.split(".")[:-1]  # the package a relative import starts from
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ["genrec", *pkg[: len(pkg) - node.level + 1]]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:  # `from pkg import submodule` imports the submodule
                    sub = _resolve(f"{target}.{alias.name}")
                    names.append(f"{target}.{alias.name}" if sub else target)
            for name in names:
                resolved = _resolve(name)
                if resolved is None:
                    continue
                for target in [*_packages_of(resolved, module), resolved]:
                    if target != module:
                        edges.append((module, target, node.lineno))
    return edges


EDGES = import_edges()


def test_every_module_has_a_floor():
    assert [m for m in MODULES if floor_of(m) is None] == []


def test_no_import_runs_back_up():
    upward = sorted(
        f"{a}:{line} (floor {floor_of(a)}) imports {b} (floor {floor_of(b)})"
        for a, b, line in EDGES
        if floor_of(b) > floor_of(a)  # type: ignore[operator]
    )
    assert upward == []


def test_no_import_circle():
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b, _ in EDGES:
        graph[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in MODULES:
        if module not in index:
            visit(module)
    assert circles == []


def test_the_registry_imports_no_model():
    assert not [b for a, b, _ in EDGES if a == "registry" and b.startswith("models")]


# private attributes read on another object, and why that is fine
PRIVATE_OK = {
    ("errors", "sys._getframe"),  # the standard library's frame access (caller_stacklevel)
    ("data.dataset", "other._index"),  # IdMap.__eq__ compares two IdMaps
    ("ranking.interest", "predictor._check_fitted"),  # the same module's InterestPredictor
    ("ranking.interest", "predictor._matrix"),
    # optuna has no public call to fail a trial a killed process left RUNNING (its own
    # RetryFailedTrialCallback goes through the study's storage the same way)
    ("bench.tuning", "study._storage"),
    ("bench.tuning", "trial._trial_id"),
    ("cli", "p._actions"),  # argparse cannot reword an added argument's help
    ("nn.losses", "torch.ops.aten._softmax"),  # the out= softmax kernel (no public out=)
}


def test_no_private_access_outside_the_contract():
    """Nothing outside the contract (core/, io) reads a private attribute or calls a private
    method of another object (a model's or anything else's); models reach their bases'
    private hooks only through ``super()``."""
    found = []
    for module, path in MODULES.items():
        if module.startswith(("core.", "io")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and ast.unparse(owner.func) == "super":
                continue
            text = ast.unparse(node)
            if (module, text) not in PRIVATE_OK:
                found.append(f"{module}:{node.lineno} {text}")
    assert found == []


def test_no_model_specific_code_in_the_cli_serving_or_evaluation():
    """DESIGN.md: no model-specific code in evaluation, serving, decoding or the CLI."""
    names = {"als", "ease", "sasrec", "tiger", "textknn", "itemknn", "bert4rec"}
    found = []
    for module, path in MODULES.items():
        if floor_of(module) is None or not module.startswith(
            ("cli", "serve", "evaluation", "decoding")
        ):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare):  # == "als", in ("tiger", ...), ...
                for c in node.comparators:
                    for sub in ast.walk(c):
                        if isinstance(sub, ast.Constant) and sub.value in names:
                            found.append(f"{module}:{node.lineno} compares with {sub.value!r}")
            if (
                isinstance(node, ast.ImportFrom)
                and (node.module or "").startswith(("genrec.models.", "genrec.ranking.cascade"))
                and node.module != "genrec.models.base"
            ):
                found.append(f"{module}:{node.lineno} imports {node.module}")
    assert found == []
