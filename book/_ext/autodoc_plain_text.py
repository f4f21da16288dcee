"""Sphinx extension for the book's API reference (book/api.md).

* wslib's docstrings write set sizes as |H| and |G| (readable in ``help()``), which
  reStructuredText would take for substitutions: every ``|`` outside inline literals is escaped
  before autodoc's docstrings are parsed.
* Every wslib module with an ``__all__`` is on the page: one that the page does not list yet
  (a module added after the page was written) gets a section of its own at the end.
"""
from __future__ import annotations

import importlib
import pkgutil
import re

API_PAGE = "book/api"
_LITERAL = re.compile(r"(``.+?``)")


def _escape_bars(line: str) -> str:
    parts = _LITERAL.split(line)
    # Even indices are plain text, odd ones the ``literal`` spans (shown as they are).
    return "".join(p if i % 2 else re.sub(r"(?<!\\)\|", r"\\|", p) for i, p in enumerate(parts))


def _process_docstring(app, what, name, obj, options, lines: list) -> None:
    lines[:] = [_escape_bars(line) for line in lines]


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
    app.connect("autodoc-process-docstring", _process_docstring)
    app.connect("source-read", _complete_page)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
