"""The GitHub Actions workflows: the book is built and published from main, `make test` runs on
every push and pull request, and actionlint finds nothing wrong with either."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _actionlint() -> str:
    # requirements.txt installs the binary next to the interpreter (the venv's bin folder).
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which("actionlint", path=search)
    if found is None:
        pytest.fail("actionlint is not installed: `pip install -r requirements.txt` provides it")
    return found


def _lint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_actionlint(), "-no-color", *map(str, paths)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def _load(name: str) -> dict:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    # YAML 1.1 reads the key `on` as the boolean True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def _run_steps(workflow: dict) -> list[str]:
    return [step["run"] for job in workflow["jobs"].values() for step in job["steps"]
            if "run" in step]


def _uses(workflow: dict) -> list[str]:
    return [step["uses"].split("@")[0] for job in workflow["jobs"].values()
            for step in job["steps"] if "uses" in step]


def test_the_workflows_lint_clean():
    assert WORKFLOWS, "no workflows in .github/workflows"
    result = _lint(*WORKFLOWS)
    assert result.returncode == 0, f"actionlint found problems:\n{result.stdout}{result.stderr}"


def test_actionlint_catches_a_broken_workflow(tmp_path):
    # The lint test above is only worth something if a bad workflow makes it fail.
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.evnt_name }}\n      - uses: actions/checkout@v4\n"
        "        with:\n          no-such-input: 1\n"
    )
    result = _lint(broken)
    assert result.returncode != 0
    assert "evnt_name" in result.stdout and "no-such-input" in result.stdout


def test_the_book_is_built_and_published_from_main():
    book = _load("book.yml")
    assert book["on"]["push"]["branches"] == ["main"]
    assert any("make book" in run for run in _run_steps(book))
    uses = _uses(book)
    for action in ("actions/setup-python", "actions/cache", "actions/upload-pages-artifact",
                   "actions/deploy-pages"):
        assert action in uses, f"book.yml does not use {action}"
    setup = next(step for job in book["jobs"].values() for step in job["steps"]
                 if step.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["cache"] == "pip"
    upload = next(step for job in book["jobs"].values() for step in job["steps"]
                  if step.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    assert book["permissions"]["pages"] == "write" and book["permissions"]["id-token"] == "write"


def test_make_test_runs_on_every_push_and_pull_request():
    test = _load("test.yml")
    assert "push" in test["on"] and "pull_request" in test["on"]
    assert test["on"]["push"] is None  # no branch filter: every branch
    assert any(run.strip() == "make test" for run in _run_steps(test))


def test_the_readme_gives_the_published_address():
    # GitHub Pages publishes https://github.com/OWNER/NAME at https://OWNER.github.io/NAME/.
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
    owner, name = url.split("/")[-2:]
    assert f"https://{owner}.github.io/{name}/" in (ROOT / "README.md").read_text()
