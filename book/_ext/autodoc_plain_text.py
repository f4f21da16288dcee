"""Sphinx extension for the book's API reference: wslib's docstrings write set sizes as |H| and
|G| (readable in ``help()``), which reStructuredText would take for substitutions. This escapes
every ``|`` outside inline literals before autodoc's docstrings are parsed."""
import re

_LITERAL = re.compile(r"(``.+?``)")


def _escape_bars(line: str) -> str:
    parts = _LITERAL.split(line)
    # Even indices are plain text, odd ones the ``literal`` spans (shown as they are).
    return "".join(p if i % 2 else re.sub(r"(?<!\\)\|", r"\\|", p) for i, p in enumerate(parts))


def _process(app, what, name, obj, options, lines: list) -> None:
    lines[:] = [_escape_bars(line) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _process)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
