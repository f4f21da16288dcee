"""The Colab path, without Colab: every chapter's first cell installs ``wslib[book]`` from the
repository when it is missing. In a runtime that already has its own torch (Colab's differs from
the version pinned in requirements.txt), that install must keep the preinstalled torch and
install nothing heavy, and the chapter must then run.

The stand-in for a Colab runtime is a fresh virtual environment that sees this environment's
packages (symbolic links to each of them, so nothing is downloaded or copied) except wslib, and
whose torch and torchvision *metadata* say 2.5.1 / 0.20.1 -- what pip reads to decide whether an
installed torch satisfies ``torch>=2.3``. Everything runs offline (``--no-index``): a plan that
needed any download would fail instead of fetching it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COLAB_TORCH, COLAB_TORCHVISION = "2.5.1+cu121", "0.20.1+cu121"
FIRST_CELLS = 3  # the install cell and the two after it
CHAPTER = ROOT / "book" / "01_permutations.ipynb"


def _site_packages() -> Path:
    path = Path(sysconfig.get_paths()["purelib"])
    if not any(path.glob("torch-*.dist-info")):
        pytest.skip(f"torch is not installed in {path}, so there is no environment to imitate")
    return path


def _fake_metadata(source: Path, target_dir: Path, name: str, version: str,
                   requires: list[str]) -> None:
    """Copy ``source`` (a .dist-info folder) as ``name-version.dist-info`` whose METADATA says
    ``version`` and requires exactly ``requires``."""
    dist = target_dir / f"{name}-{version}.dist-info"
    shutil.copytree(source, dist)
    lines = [line for line in (dist / "METADATA").read_text().splitlines()
             if not line.startswith(("Version:", "Requires-Dist:"))]
    head = lines.index(next(line for line in lines if line.startswith("Name:")))
    lines[head + 1:head + 1] = [f"Version: {version}"] + [f"Requires-Dist: {r}" for r in requires]
    (dist / "METADATA").write_text("\n".join(lines) + "\n")


def _colab_like_env(tmp: Path, torch_version: str) -> Path:
    """A venv whose packages are this environment's, minus wslib, with torch ``torch_version``."""
    source = _site_packages()
    env = tmp / f"colab-{torch_version}"
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True,
                       capture_output=True, timeout=120)
    except (subprocess.CalledProcessError, FileNotFoundError) as err:
        pytest.skip(f"cannot create a virtual environment here: {err}")
    python = env / "bin" / "python"
    target = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                                  "['purelib'])"], check=True, capture_output=True,
                                 text=True).stdout.strip())
    skip = ("wslib", "__editable__", "torch-", "torchvision-")
    for entry in source.iterdir():
        if entry.name.startswith(skip) or entry.name == "__pycache__":
            continue
        if entry.suffix == ".pth" and entry.name != "distutils-precedence.pth":
            continue  # e.g. the editable wslib's import hook: the clone must not leak in
        (target / entry.name).symlink_to(entry)
    _fake_metadata(next(source.glob("torch-*.dist-info")), target, "torch", torch_version,
                   ["filelock", "typing-extensions>=4.8.0", "sympy", "networkx", "jinja2",
                    "fsspec"])
    _fake_metadata(next(source.glob("torchvision-*.dist-info")), target, "torchvision",
                   COLAB_TORCHVISION, ["numpy", f"torch=={torch_version.split('+')[0]}", "pillow"])
    return python


def _clone(tmp: Path) -> Path:
    """The project as a clone has it: its package files, without build leftovers."""
    clone = tmp / "clone"
    clone.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, clone / name)
    shutil.copytree(ROOT / "wslib", clone / "wslib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return clone


def _offline_env() -> dict[str, str]:
    # No index (nothing may be downloaded) and no build isolation (which would fetch
    # setuptools); the build uses the setuptools that the environment already has.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    # (pip reads PIP_NO_BUILD_ISOLATION=0 as --no-build-isolation, a quirk of its flag names.)
    return {**env, "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0",
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONNOUSERSITE": "1",
            "MPLBACKEND": "Agg", "WSLIB_PROFILE": "quick", "OMP_NUM_THREADS": "1"}


def _dry_run(python: Path, requirement: str, report: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "pip", "install", "--dry-run", "--no-build-isolation",
                           "--report", str(report), "--quiet", requirement],
                          env=_offline_env(), capture_output=True, text=True, timeout=300)


def _install_cell() -> str:
    code = [c for c in json.loads(CHAPTER.read_text())["cells"] if c["cell_type"] == "code"]
    return "".join(code[0]["source"])


def test_the_install_cell_keeps_a_preinstalled_torch_and_the_chapter_runs(tmp_path):
    clone = _clone(tmp_path)
    requirement = f"wslib[book] @ {clone.as_uri()}"
    python = _colab_like_env(tmp_path, COLAB_TORCH)

    # 1. What pip would do: install wslib itself and nothing else.
    report = tmp_path / "report.json"
    result = _dry_run(python, requirement, report)
    assert result.returncode == 0, result.stderr
    planned = {item["metadata"]["name"].lower(): item["metadata"]["version"]
               for item in json.loads(report.read_text())["install"]}
    assert planned == {"wslib": "0.1.0"}, f"pip would also install {planned}"

    # 2. The chapter's first cells in that runtime: the install cell exactly as written, with the
    #    repository address pointing at the local clone, so its `%pip install` really runs.
    cell = _install_cell()
    url = next(word.strip('"') for word in cell.split() if "git+" in word).split(" @ ")[-1]
    assert url.startswith("git+https://") and "wslib[book] @ git+" in cell
    code = [c for c in json.loads(CHAPTER.read_text())["cells"] if c["cell_type"] == "code"]
    cells = [cell.replace(url, clone.as_uri())]
    cells += ["".join(c["source"]) for c in code[1:FIRST_CELLS]]
    driver = tmp_path / "run_cells.py"
    driver.write_text(
        "import json, sys, importlib.metadata as md\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        "for i, source in enumerate(json.load(open(sys.argv[1]))):\n"
        "    if not shell.run_cell(source).success:\n"
        "        sys.exit(f'cell {i + 1} failed')\n"
        "import wslib\n"
        "print(json.dumps({'wslib': wslib.__file__, 'torch': md.version('torch'),\n"
        "                  'torchvision': md.version('torchvision')}))\n"
    )
    (tmp_path / "cells.json").write_text(json.dumps(cells))
    run = subprocess.run([str(python), str(driver), str(tmp_path / "cells.json")], cwd=tmp_path,
                         env=_offline_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    facts = json.loads(run.stdout.strip().splitlines()[-1])
    # wslib came from the install (not the clone or this checkout); torch was kept.
    assert Path(facts["wslib"]).is_relative_to(python.parent.parent), facts
    assert (facts["torch"], facts["torchvision"]) == (COLAB_TORCH, COLAB_TORCHVISION)


def test_a_torch_below_the_floor_would_be_replaced(tmp_path):
    # The check above means something only if pip reads the installed torch's version: with a
    # torch older than pyproject's floor (torch>=2.3) it must plan a new torch, which offline
    # it cannot fetch.
    python = _colab_like_env(tmp_path, "2.2.0")
    result = _dry_run(python, f"wslib[book] @ {_clone(tmp_path).as_uri()}", tmp_path / "r.json")
    assert result.returncode != 0
    assert "torch" in result.stderr and "2.3" in result.stderr, result.stderr
