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


def test_chapter_links_to_the_reference_resolve():
    # Chapters link a name's first mention as [`name`](#wslib.module.name); the target must be
    # a documented public member of that module, or the book build warns (and -W fails).
    import json
    import re

    for path in sorted((ROOT / "book").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            for target in re.findall(r"\]\(#(wslib\.[\w.]+)\)", "".join(cell["source"])):
                module_name, member = target.rsplit(".", 1)
                module = importlib.import_module(module_name)
                assert member in getattr(module, "__all__", ()), f"{path.name}: {target}"
                assert inspect.getdoc(getattr(module, member)), f"{path.name}: {target}"
