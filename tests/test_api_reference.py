"""The book's API reference (book/api.md) covers the library: every module with a public
interface is on the page, and every public function and class has the docstring that autodoc
needs to list it (autodoc silently leaves out members without one)."""
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import wslib

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "api.md"


def _public_modules() -> dict[str, object]:
    found = {}
    for info in pkgutil.walk_packages(wslib.__path__, "wslib."):
        module = importlib.import_module(info.name)
        if hasattr(module, "__all__"):
            found[info.name] = module
    return found


def test_every_public_module_is_on_the_reference_page():
    documented = set(re.findall(r"^\.\. automodule:: (\S+)$", PAGE.read_text(), re.MULTILINE))
    missing = sorted(set(_public_modules()) - documented)
    assert not missing, f"book/api.md does not document {missing}"


def test_every_public_function_and_class_has_a_docstring():
    undocumented = [f"{name}.{member}" for name, module in _public_modules().items()
                    for member in module.__all__
                    if (inspect.isfunction(getattr(module, member))
                        or inspect.isclass(getattr(module, member)))
                    and not inspect.getdoc(getattr(module, member))]
    assert not undocumented, f"no docstring, so missing from the API reference: {undocumented}"


def test_the_reference_is_in_the_table_of_contents():
    assert "file: book/api" in (ROOT / "_toc.yml").read_text()
