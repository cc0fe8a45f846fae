"""Security: no pickle in file handling; torch.load only with weights_only=True; weights are
safetensors checked against their sha256 (tests/test_train.py checks a tampered file is refused)."""

import ast
from pathlib import Path

import pytest

from aecodec import registry

PACKAGE = Path(__file__).resolve().parents[1] / "aecodec"
SOURCES = sorted(PACKAGE.rglob("*.py"))
UNSAFE_MODULES = {"pickle", "cPickle", "dill", "joblib", "shelve", "marshal", "cloudpickle"}


def calls(tree, dotted: str):
    owner, name = dotted.split(".")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name
                and isinstance(node.func.value, ast.Name) and node.func.value.id == owner):
            yield node


def keyword(node: ast.Call, name: str):
    for kw in node.keywords:
        if kw.arg == name:
            return kw.value
    return None


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_unsafe_deserialisation(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {a.name.split(".")[0] for a in node.names} & UNSAFE_MODULES, f"{path}: imports a pickle-like module"
        if isinstance(node, ast.ImportFrom) and node.module:
            assert node.module.split(".")[0] not in UNSAFE_MODULES, f"{path}: imports from a pickle-like module"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in ("eval", "exec"), f"{path}: calls {node.func.id}"
    for call in calls(tree, "torch.load"):
        value = keyword(call, "weights_only")
        assert isinstance(value, ast.Constant) and value.value is True, f"{path}:{call.lineno}: torch.load without weights_only=True"
    for call in calls(tree, "np.load"):
        value = keyword(call, "allow_pickle")
        assert value is None or (isinstance(value, ast.Constant) and value.value is False), f"{path}:{call.lineno}"


@pytest.mark.parametrize("v", registry.VARIANTS, ids=lambda v: v.name)
def test_shipped_weights_are_safetensors(v):
    head = registry.weights_path(v).read_bytes()[:9]
    # safetensors: u64 little-endian header size, then a JSON object
    assert head[8:9] == b"{"
    assert not head.startswith(b"\x80") and not head.startswith(b"PK")  # not a pickle, not a zip (torch.save)
