"""The house's shape, read from the import graph (every import, module level or inside a function):
three layers that import only downwards, no circles, ops/ grouped by command family."""
import ast
import os

from conftest import REPO

LAYERS = ("components", "pipelines", "ops")  # each may import only the ones before it


def modules() -> dict[str, str]:
    """Dotted module name -> file, for our three packages."""
    found = {}
    for layer in LAYERS:
        for folder, _, files in os.walk(os.path.join(REPO, layer)):
            for name in files:
                if name.endswith(".py"):
                    rel = os.path.relpath(os.path.join(folder, name), REPO)[:-3].replace(os.sep, ".")
                    found[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = os.path.join(folder, name)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    graph = {}
    for mod, path in mods.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        package = mod if path.endswith("__init__.py") else mod.rpartition(".")[0]
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets.add(base)
                targets |= {f"{base}.{a.name}" for a in node.names}
        graph[mod] = {t for t in targets if t in mods and t != mod}
    return graph


def test_layers_import_only_downwards():
    back_up = [(m, t) for m, targets in import_graph().items() for t in targets
               if LAYERS.index(t.split(".")[0]) > LAYERS.index(m.split(".")[0])]
    assert back_up == []


def test_no_import_circles():
    graph, state, cycles = import_graph(), {}, []

    def visit(node, stack):
        state[node] = "open"
        for t in sorted(graph[node]):
            if state.get(t) == "open":
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t, stack + [t])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    # A package's __init__ importing its own modules is not a circle of ours to worry about; none exist.
    assert cycles == []


def test_ops_is_grouped_by_command_family():
    entries = sorted(e for e in os.listdir(os.path.join(REPO, "ops")) if e != "__pycache__")
    assert len(entries) <= 10, entries
    assert [e for e in entries if e.endswith(".py")] == ["__init__.py", "args.py", "cli.py"]


def test_the_layout_names_match_the_docs():
    """components/names.py no longer builds work-dir paths: pipelines/work_dir.py does."""
    with open(os.path.join(REPO, "components", "names.py"), encoding="utf-8") as f:
        text = f.read()
    assert "work_dir" not in text.replace("pipelines/work_dir.py", "")
