"""The book's API reference (book/api.md): every module with a public interface is on the page,
and every public function and class has the docstring that autodoc needs to list it (autodoc
silently leaves out members without one)."""
import importlib
import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import autodoc_plain_text as ext  # noqa: E402  (the book's own Sphinx extension)


def test_every_public_module_is_on_the_reference_page():
    page = ext.with_every_module((ROOT / "book" / "api.md").read_text())
    for name in ext.public_modules():
        assert f".. automodule:: {name}\n" in page, name
    assert "wslib.nn" in ext.public_modules() and "wslib.train" in ext.public_modules()


def test_a_module_missing_from_the_page_gets_a_section():
    page = ext.with_every_module("# API reference\n")
    assert page.count(".. automodule::") == len(ext.public_modules())
    assert "## `wslib.sinkhorn`" in page


def test_set_sizes_in_docstrings_are_not_read_as_substitutions():
    assert ext._escape_bars("a (|H|, d, d) stack, ``x |y|``") == r"a (\|H\|, d, d) stack, ``x |y|``"


def test_every_public_function_and_class_has_a_docstring():
    undocumented = []
    for name in ext.public_modules():
        module = importlib.import_module(name)
        for member in module.__all__:
            obj = getattr(module, member)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and not inspect.getdoc(obj):
                undocumented.append(f"{name}.{member}")
    assert not undocumented, f"no docstring, so missing from the API reference: {undocumented}"


def test_the_reference_is_in_the_table_of_contents():
    assert "file: book/api" in (ROOT / "_toc.yml").read_text()
