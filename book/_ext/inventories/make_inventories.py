"""Write the intersphinx inventories that link the API reference to Python's, PyTorch's, NumPy's
and SciPy's documentation.

The book is built offline, so Sphinx cannot fetch each project's ``objects.inv``. Instead every
project gets a small inventory of its own here, listing only the names that the API reference
mentions (in signatures, docstrings and type hints), each with the page and anchor where that
project documents it. ``_config.yml`` maps each project's base URL to its file
(``sphinx: config: intersphinx_mapping``); Sphinx joins the base URL and an entry's URI.

The files use Sphinx's inventory format, version 2: four header lines, then zlib-compressed
lines ``name domain:role priority uri dispname`` (a ``dispname`` of ``-`` means "the name
itself"). Every anchor below is the one Sphinx writes for a documented Python object: its full
dotted name, on the page that documents it.

Regenerate the files after editing the tables (run from anywhere):

    python book/_ext/inventories/make_inventories.py

A name the reference starts to use that is not listed makes `jupyter-book build -n` warn
"reference target not found"; add it to its project's table, with the page that documents it.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Project:
    name: str        # the project, as written in the inventory header
    version: str
    base_url: str    # what _config.yml maps to the file; entries' URIs are relative to it
    filename: str    # next to this script
    entries: tuple   # (name, "domain:role", page); the URI is page#name


PYTHON = Project("Python", "3", "https://docs.python.org/3/", "python.inv", (
    # library/constants.html (Doc/library/constants.rst: ".. data:: None").
    ("None", "py:data", "library/constants.html"),
    # library/functions.html documents these built-in types as classes
    # (Doc/library/functions.rst: ".. class:: bool(object=False, /)", "float", "int", "object").
    ("bool", "py:class", "library/functions.html"),
    ("float", "py:class", "library/functions.html"),
    ("int", "py:class", "library/functions.html"),
    ("object", "py:class", "library/functions.html"),
    # library/stdtypes.html: the built-in sequence and mapping types
    # (Doc/library/stdtypes.rst: ".. class:: str(object='')", "bytes", "list", "tuple", "dict").
    ("bytes", "py:class", "library/stdtypes.html"),
    ("dict", "py:class", "library/stdtypes.html"),
    ("list", "py:class", "library/stdtypes.html"),
    ("str", "py:class", "library/stdtypes.html"),
    ("tuple", "py:class", "library/stdtypes.html"),
    # library/exceptions.html (Doc/library/exceptions.rst: ".. exception:: ValueError").
    ("FileNotFoundError", "py:exception", "library/exceptions.html"),
    ("ValueError", "py:exception", "library/exceptions.html"),
    # library/pathlib.html (Doc/library/pathlib.rst: ".. class:: Path(*pathsegments)").
    ("pathlib.Path", "py:class", "library/pathlib.html"),
    # library/typing.html (Doc/library/typing.rst: ".. data:: Any", ".. data:: Callable",
    # ".. class:: Iterator(Iterable[T_co])", ".. class:: Sequence(...)").
    ("typing.Any", "py:data", "library/typing.html"),
    ("typing.Callable", "py:data", "library/typing.html"),
    ("typing.Iterator", "py:class", "library/typing.html"),
    ("typing.Sequence", "py:class", "library/typing.html"),
))

TORCH = Project("PyTorch", "stable", "https://docs.pytorch.org/docs/stable/", "torch.inv", (
    # tensors.html (docs/source/tensors.rst: ".. currentmodule:: torch", ".. class:: Tensor()").
    ("torch.Tensor", "py:class", "tensors.html"),
    # tensor_attributes.html (docs/source/tensor_attributes.rst: ".. class:: dtype",
    # ".. class:: device").
    ("torch.device", "py:class", "tensor_attributes.html"),
    ("torch.dtype", "py:class", "tensor_attributes.html"),
    # generated/torch.Generator.html, the autosummary page of torch.Generator (torch.rst).
    ("torch.Generator", "py:class", "generated/torch.Generator.html"),
    # generated/torch.nn.Module.html, the autosummary page of torch.nn.Module (nn.rst).
    ("torch.nn.Module", "py:class", "generated/torch.nn.Module.html"),
    # data.html (docs/source/data.rst: ".. autoclass:: torch.utils.data.TensorDataset").
    ("torch.utils.data.TensorDataset", "py:class", "data.html"),
))

NUMPY = Project("NumPy", "stable", "https://numpy.org/doc/stable/", "numpy.inv", (
    # reference/generated/numpy.ndarray.html, the autosummary page of numpy.ndarray
    # (doc/source/reference/arrays.ndarray.rst). The library's analysis functions take a
    # tensor or an ndarray.
    ("numpy.ndarray", "py:class", "reference/generated/numpy.ndarray.html"),
))

SCIPY = Project("SciPy", "stable", "https://docs.scipy.org/doc/scipy/", "scipy.inv", (
    # reference/generated/scipy.optimize.linear_sum_assignment.html, its autosummary page
    # (scipy/optimize/__init__.py lists it under "Assignment problems").
    ("scipy.optimize.linear_sum_assignment", "py:function",
     "reference/generated/scipy.optimize.linear_sum_assignment.html"),
))

PROJECTS = (PYTHON, TORCH, NUMPY, SCIPY)


def inventory_bytes(project: Project) -> bytes:
    """The inventory file of ``project``, in Sphinx's format version 2."""
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project.name}\n"
        f"# Version: {project.version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    lines = "".join(f"{name} {role} 1 {page}#{name} -\n"
                    for name, role, page in sorted(project.entries))
    return header.encode() + zlib.compress(lines.encode(), 9)


def main() -> None:
    for project in PROJECTS:
        path = HERE / project.filename
        path.write_bytes(inventory_bytes(project))
        print(f"{path.name}: {len(project.entries)} names under {project.base_url}")


if __name__ == "__main__":
    main()
