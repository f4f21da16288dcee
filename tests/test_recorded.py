"""wslib.recorded: recorded files from the clone, from a (fake) download, or a clear error."""
import json
import urllib.error
from pathlib import Path

import pytest
import torch
import yaml

from wslib import recorded
from wslib.recorded import (RecordedUnavailable, load_checkpoint_file, load_result, raw_url,
                            recorded_path)

ROOT = Path(__file__).resolve().parents[1]


def test_repository_url_matches_the_book_config():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    assert recorded.REPOSITORY_URL == cfg["url"].rstrip("/")
    assert recorded.BRANCH == cfg["branch"]


def test_raw_url_is_derived_from_the_repository_address():
    assert raw_url("results/ch6/x.json", "https://github.com/a/b") == (
        "https://raw.githubusercontent.com/a/b/main/results/ch6/x.json")
    assert raw_url("c/d.pt", "https://github.com/a/b.git/", branch="dev") == (
        "https://raw.githubusercontent.com/a/b/dev/c/d.pt")
    with pytest.raises(ValueError, match="GitHub"):
        raw_url("x.json", "https://gitlab.com/a/b")
    with pytest.raises(ValueError, match="inside the repository"):
        raw_url("../secrets.json")


def test_a_file_in_the_clone_is_read_without_fetching(tmp_path, monkeypatch):
    monkeypatch.setattr(recorded, "repository_root", lambda: tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.json").write_text(json.dumps({"acc": 0.5}))

    def no_fetch(url):
        raise AssertionError(f"fetched {url} although the file is on disk")

    assert load_result("results/r.json", fetch=no_fetch, cache=tmp_path / "cache") == {"acc": 0.5}


def test_a_missing_file_is_fetched_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(recorded, "repository_root", lambda: tmp_path / "no-clone")
    calls = []

    def fake_fetch(url):
        calls.append(url)
        return json.dumps({"runs": [1, 2]}).encode()

    cache = tmp_path / "cache"
    assert load_result("results/ch6/o.json", fetch=fake_fetch, cache=cache) == {"runs": [1, 2]}
    assert load_result("results/ch6/o.json", fetch=fake_fetch, cache=cache) == {"runs": [1, 2]}
    assert calls == [raw_url("results/ch6/o.json")]
    assert (cache / "results" / "ch6" / "o.json").is_file()


def test_a_fetched_checkpoint_loads_with_weights_only(tmp_path, monkeypatch):
    monkeypatch.setattr(recorded, "repository_root", lambda: tmp_path / "no-clone")
    src = tmp_path / "src.pt"
    torch.save({"model": {"w": torch.arange(3.0)}, "epoch": 2}, src)
    ck = load_checkpoint_file("checkpoints/m.pt", fetch=lambda url: src.read_bytes(),
                              cache=tmp_path / "cache")
    assert ck["epoch"] == 2 and torch.equal(ck["model"]["w"], torch.arange(3.0))


def test_a_checkpoint_that_needs_code_to_load_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(recorded, "repository_root", lambda: tmp_path)
    (tmp_path / "checkpoints").mkdir()
    torch.save({"obj": Path("x")}, tmp_path / "checkpoints" / "bad.pt")  # a non-tensor class
    with pytest.raises(ValueError, match="checkpoints/bad.pt"):
        load_checkpoint_file("checkpoints/bad.pt")


def test_offline_without_a_clone_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(recorded, "repository_root", lambda: tmp_path / "no-clone")

    def offline(url):
        raise urllib.error.URLError("no network")

    with pytest.raises(RecordedUnavailable, match="results/ch5/emergence/x.json"):
        load_result("results/ch5/emergence/x.json", fetch=offline, cache=tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.json"))


def test_the_repository_files_are_found_in_this_clone():
    p = recorded_path("results/ch6/orderings_batch.json", fetch=lambda url: b"")
    assert p == ROOT / "results" / "ch6" / "orderings_batch.json"
