"""Sphinx extension for the book's API reference (book/api.md).

* wslib's docstrings write set sizes as |H| and |G| (readable in ``help()``), which
  reStructuredText would take for substitutions: every ``|`` outside inline literals is escaped
  before autodoc's docstrings are parsed.
* An ``Attributes:`` entry may name several attributes that share a description
  (``train_loss, test_loss: ...``), as ``Args:`` entries may; napoleon splits only the latter,
  so the former is written out once per name before napoleon reads the docstring.
* Type hints name a class by the module that defines it (``torch.nn.modules.module.Module``);
  PyTorch documents it, and its intersphinx inventory lists it, by its public name
  (``torch.nn.Module``): references to the first are pointed at the second
  (``DOCUMENTED_AS``). A ``forward`` without a docstring of its own shows
  ``torch.nn.Module.forward``'s, whose ``:class:`Module``` is made ``torch.nn.Module``.
* Every wslib module with an ``__all__`` is on the page: one that the page does not list yet
  (a module added after the page was written) gets a section of its own at the end.

The inventories that link to Python's, PyTorch's, NumPy's and SciPy's documentation are in
``inventories/`` (written by ``inventories/make_inventories.py``, mapped in ``_config.yml``).
"""
from __future__ import annotations

import importlib
import pkgutil
import re

from sphinx import addnodes

API_PAGE = "book/api"
_LITERAL = re.compile(r"(``.+?``)")

# Where a class is defined (what autodoc writes in a type hint) -> where its project documents it.
DOCUMENTED_AS = {
    "torch.nn.modules.module.Module": "torch.nn.Module",
    "torch._C.Generator": "torch.Generator",
    "torch.utils.data.dataset.TensorDataset": "torch.utils.data.TensorDataset",
}

_ATTRIBUTES = re.compile(r"^(\s*)Attributes:\s*$")
_SHARED_ENTRY = re.compile(r"^(\s+)([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)+)\s*:(\s.*)?$")
_TORCH_MODULE = re.compile(r":class:`Module`")


def _escape_bars(line: str) -> str:
    parts = _LITERAL.split(line)
    # Even indices are plain text, odd ones the ``literal`` spans (shown as they are).
    return "".join(p if i % 2 else re.sub(r"(?<!\\)\|", r"\\|", p) for i, p in enumerate(parts))


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def split_shared_attributes(lines: list[str]) -> list[str]:
    """``lines`` with each ``Attributes:`` entry that names several attributes written out once
    per name, each copy with the shared description (as napoleon does for ``Args:``)."""
    out: list[str] = []
    section = entry = None  # indentation of the current Attributes: header, of its entries
    i = 0
    while i < len(lines):
        line = lines[i]
        header = _ATTRIBUTES.match(line)
        if header:
            section, entry = _indent(line), None
            out.append(line)
            i += 1
            continue
        if section is not None and line.strip():
            if _indent(line) <= section:
                section = None
            elif entry is None:
                entry = _indent(line)
        shared = _SHARED_ENTRY.match(line) if section is not None else None
        if shared is None or _indent(line) != entry:
            out.append(line)
            i += 1
            continue
        end = i + 1  # the description's continuation lines are indented deeper than the entry
        while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > entry):
            end += 1
        while end > i + 1 and not lines[end - 1].strip():
            end -= 1
        for name in re.split(r"\s*,\s*", shared.group(2)):
            out.append(f"{shared.group(1)}{name}:{shared.group(3) or ''}")
            out.extend(lines[i + 1:end])
        i = end
    return out


def _split_attributes(app, what, name, obj, options, lines: list) -> None:
    lines[:] = split_shared_attributes(lines)


def _process_docstring(app, what, name, obj, options, lines: list) -> None:
    if what == "method" and getattr(obj, "__doc__", "") is None:
        # Inherited from the overridden method: torch.nn.Module's docstrings say `Module`.
        lines[:] = [_TORCH_MODULE.sub(":class:`~torch.nn.Module`", line) for line in lines]
    lines[:] = [_escape_bars(line) for line in lines]


def _point_at_documented_names(app, doctree) -> None:
    for node in doctree.findall(addnodes.pending_xref):
        if node.get("refdomain") == "py" and node.get("reftarget") in DOCUMENTED_AS:
            node["reftarget"] = DOCUMENTED_AS[node["reftarget"]]


def public_modules() -> list[str]:
    """The names of every wslib module that declares a public interface (``__all__``)."""
    import wslib

    return sorted(info.name for info in pkgutil.walk_packages(wslib.__path__, "wslib.")
                  if hasattr(importlib.import_module(info.name), "__all__"))


def with_every_module(page: str) -> str:
    """``page`` (MyST text) with a section appended for each public module it does not list."""
    listed = set(re.findall(r"^\.\. automodule:: (\S+)\s*$", page, re.MULTILINE))
    sections = [f"## `{name}`\n\n```{{eval-rst}}\n.. automodule:: {name}\n   :members:\n```\n"
                for name in public_modules() if name not in listed]
    return page if not sections else page.rstrip("\n") + "\n\n" + "\n".join(sections)


def _complete_page(app, docname: str, source: list) -> None:
    if docname == API_PAGE:
        source[0] = with_every_module(source[0])


def setup(app):
    # Before napoleon (priority 500) turns the Google-style sections into fields.
    app.connect("autodoc-process-docstring", _split_attributes, priority=400)
    app.connect("autodoc-process-docstring", _process_docstring)
    app.connect("doctree-read", _point_at_documented_names)
    app.connect("source-read", _complete_page)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
