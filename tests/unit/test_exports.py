"""The public API is listed once, sorted, importable; every error descends from MelticaError."""

import ast
import inspect
from pathlib import Path

import meltica_nb
from meltica_nb import errors

PACKAGE = Path(meltica_nb.__file__).parent


def test_all_is_sorted_and_importable():
    assert meltica_nb.__all__ == sorted(meltica_nb.__all__)
    for name in meltica_nb.__all__:
        assert getattr(meltica_nb, name) is not None


def test_every_exception_in_the_package_descends_from_melticaerror_and_says_when():
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                    getattr(b, "id", getattr(b, "attr", "")).endswith(("Error", "Exception"))
                    for b in node.bases):
                assert path.name == "errors.py", f"{path}: {node.name} defined outside errors.py"
    for name, obj in inspect.getmembers(errors, inspect.isclass):
        if issubclass(obj, BaseException):
            assert issubclass(obj, errors.MelticaError), name
            assert obj.__doc__ and obj.__doc__.startswith("Raised"), name


def test_error_tree_docstring_names_every_error():
    for name in errors.__all__:
        assert name in errors.__doc__, name
