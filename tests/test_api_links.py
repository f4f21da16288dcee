"""The API reference's links to other projects' documentation: the intersphinx inventories in
book/_ext/inventories load, point only at each project's official site over https, are what
make_inventories.py writes, and are all mapped in _config.yml; the book builds nitpicky (-n),
so a reference that does not resolve fails it."""
import importlib
import io
import posixpath
import re
import sys
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from sphinx.util.inventory import InventoryFile

ROOT = Path(__file__).resolve().parents[1]
INVENTORIES = ROOT / "book" / "_ext" / "inventories"
sys.path.insert(0, str(ROOT / "book" / "_ext"))
sys.path.insert(0, str(INVENTORIES))
import autodoc_plain_text as ext  # noqa: E402  (the book's own Sphinx extension)
import make_inventories  # noqa: E402

# Each mapping's name in _config.yml -> the only host its links may go to.
HOSTS = {"python": "docs.python.org", "torch": "docs.pytorch.org", "numpy": "numpy.org",
         "scipy": "docs.scipy.org"}


def _mapping() -> dict:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["sphinx"]["config"]["intersphinx_mapping"]


def _load(base_url: str, filename: str) -> dict:
    with open(ROOT / filename, "rb") as stream:
        return InventoryFile.load(stream, base_url, posixpath.join)


def _compressed_lines(data: bytes) -> str:
    # Four header lines, then the zlib stream.
    return zlib.decompress(data.split(b"\n", 4)[4]).decode()


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_every_inventory_loads_and_links_to_its_project_over_https(name):
    base_url, filename = _mapping()[name]
    assert urlsplit(base_url).scheme == "https" and urlsplit(base_url).hostname == HOSTS[name]
    assert (ROOT / filename).parent == INVENTORIES, "inventories live in book/_ext/inventories"
    inventory = _load(base_url, filename)
    entries = [(role, target, entry) for role, targets in inventory.items()
               for target, entry in targets.items()]
    assert entries, f"{filename} lists nothing"
    for role, target, (_project, _version, url, _dispname) in entries:
        parts = urlsplit(url)
        assert parts.scheme == "https" and parts.hostname == HOSTS[name], url
        assert url.startswith(base_url), url
        assert re.fullmatch(r"[\w./-]+\.html", parts.path), url
        # Sphinx anchors a documented Python object at its full dotted name.
        assert role.startswith("py:") and parts.fragment == target, (role, target, url)


def test_every_inventory_is_mapped_and_is_what_the_script_writes():
    mapping = _mapping()
    assert set(mapping) == set(HOSTS)
    mapped = {Path(filename).name: base_url for base_url, filename in mapping.values()}
    assert {p.filename for p in make_inventories.PROJECTS} == set(mapped)
    assert sorted(p.name for p in INVENTORIES.glob("*.inv")) == sorted(mapped)
    for project in make_inventories.PROJECTS:
        assert mapped[project.filename] == project.base_url, project.name
        committed = (INVENTORIES / project.filename).read_bytes()
        written = make_inventories.inventory_bytes(project)
        assert committed.split(b"\n", 4)[:4] == written.split(b"\n", 4)[:4], project.filename
        assert _compressed_lines(committed) == _compressed_lines(written), (
            f"{project.filename} is stale: run python book/_ext/inventories/make_inventories.py")


def test_the_inventories_are_in_sphinx_format_version_2():
    data = (INVENTORIES / "torch.inv").read_bytes()
    assert data.startswith(b"# Sphinx inventory version 2\n# Project: PyTorch\n")
    inventory = InventoryFile.load(io.BytesIO(data), "https://docs.pytorch.org/docs/stable/",
                                   posixpath.join)
    assert inventory["py:class"]["torch.Tensor"][2] == (
        "https://docs.pytorch.org/docs/stable/tensors.html#torch.Tensor")


def test_type_hints_that_name_a_defining_module_point_at_a_documented_name():
    listed = {target for base_url, filename in _mapping().values()
              for targets in _load(base_url, filename).values() for target in targets}
    for defined_as, documented_as in ext.DOCUMENTED_AS.items():
        objects = []
        for dotted in (defined_as, documented_as):
            module, _, attr = dotted.rpartition(".")
            objects.append(getattr(importlib.import_module(module), attr))
        assert objects[0] is objects[1], (defined_as, documented_as)
        assert documented_as in listed, f"{documented_as} is in no inventory"


def test_attributes_sharing_a_description_are_written_out_once_per_name():
    lines = ["Settings.", "", "Attributes:", "    a, b: shared", "        (continued).",
             "    c: own.", "", "Returns:", "    x, y: a return value, left alone."]
    assert ext.split_shared_attributes(lines) == [
        "Settings.", "", "Attributes:", "    a: shared", "        (continued).",
        "    b: shared", "        (continued).", "    c: own.", "", "Returns:",
        "    x, y: a return value, left alone."]


def test_the_book_is_built_nitpicky():
    # `make book` (and with it the book workflow) fails on a warning or an unresolved reference.
    recipe = re.search(r"^book:.*?(?=^\S|\Z)", (ROOT / "Makefile").read_text(),
                       re.MULTILINE | re.DOTALL).group(0)
    build = next(line for line in recipe.splitlines() if "jupyter-book build" in line).split()
    assert "-W" in build and "-n" in build
