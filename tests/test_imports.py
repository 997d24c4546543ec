"""The package's import graph has no cycle, and an installed package needs nothing outside it."""

import ast
import os

from ganjax import config as config_lib
from util import ROOT

PACKAGE = os.path.join(ROOT, 'ganjax')


def _modules() -> dict[str, str]:
    """Dotted module name -> file, for every module of the package."""
    out = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path, ROOT)[:-3].replace(os.sep, '.')
                out[dotted.removesuffix('.__init__')] = path
    return out


def _imported(module: str, node: ast.AST, modules: dict[str, str]) -> set[str]:
    """The package modules an import statement loads (the deepest existing name of each)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ''
        if node.level:
            parts = module.split('.')
            if not modules[module].endswith('__init__.py'):
                parts = parts[:-1]
            parts = parts[:len(parts) - node.level + 1]
            base = '.'.join(parts + ([base] if base else []))
        names = [f'{base}.{a.name}' for a in node.names] + [base]
    found = set()
    for name in names:
        while name and name not in modules:
            name = name.rpartition('.')[0]
        if name:
            found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its file (inside functions too).

    A package's edge to its own parent package (a submodule importing `ganjax`) is left out:
    Python has already started importing the parent by then.
    """
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read())
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= _imported(module, node, modules)
        graph[module] = {d for d in deps if d != module and not module.startswith(d + '.')}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of a directed graph as [a, b, ..., a], or None (iterative depth-first search)."""
    state = {}  # 1: on the current path, 2: finished
    for root in sorted(graph):
        if root in state:
            continue
        path, stack = [root], [iter(sorted(graph[root]))]
        state[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_find_cycle_finds_one():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': set()}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b', 'c'}, 'b': {'c'}, 'c': set()}) is None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, 'import cycle: ' + ' -> '.join(cycle)


def test_evaluation_and_metrics_import_nothing_from_training():
    graph = import_graph()
    assert not graph['ganjax.evaluate'] & {'ganjax.train'}
    assert not graph['ganjax.run_dir'] & {'ganjax.train', 'ganjax.evaluate'}
    assert not graph['ganjax.config'] & {'ganjax.evaluate', 'ganjax.train'}


def test_the_defaults_live_inside_the_package():
    # An installed (non-editable) ganjax has no configs/ folder beside it.
    for module, path in _modules().items():
        with open(path, encoding='utf-8') as f:
            assert "'configs'" not in f.read(), f'{module} reads the repository configs/ folder'
    repo_default = config_lib.load_config_file(os.path.join(ROOT, 'configs', 'default.py'))
    assert repo_default.to_dict() == config_lib.default_config().to_dict()
