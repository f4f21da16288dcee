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


HTML = b"<!DOCTYPE html><html><body>Sign in to the network</body></html>"


@pytest.mark.parametrize("path, good", [
    ("results/ch6/o.json", json.dumps({"runs": [1]}).encode()),
    ("checkpoints/m.pt", None),
])
def test_a_failed_download_is_never_cached(path, good, tmp_path, monkeypatch):
    # A captive portal or an error page answers with HTML instead of the file: it must not be
    # cached, and the next correct download must be used.
    monkeypatch.setattr(recorded, "repository_root", lambda: tmp_path / "no-clone")
    if good is None:
        torch.save({"epoch": 3}, tmp_path / "src.pt")
        good = (tmp_path / "src.pt").read_bytes()
    load = load_result if path.endswith(".json") else load_checkpoint_file
    cache = tmp_path / "cache"
    with pytest.raises(RecordedUnavailable, match=r"not the file .*<!DOCTYPE html"):
        load(path, fetch=lambda url: HTML, cache=cache)
    assert not (cache / path).exists()
    loaded = load(path, fetch=lambda url: good, cache=cache)
    assert loaded == ({"runs": [1]} if path.endswith(".json") else {"epoch": 3})
    # A bad copy already in the cache is downloaded again, not trusted.
    (cache / path).write_bytes(HTML)
    assert load(path, fetch=lambda url: good, cache=cache) == loaded
    assert (cache / path).read_bytes() == good


def test_a_results_file_that_is_not_utf8_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(recorded, "repository_root", lambda: tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "latin1.json").write_bytes('{"note": "café"}'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"results/latin1.json .* not UTF-8"):
        load_result("results/latin1.json", fetch=lambda url: b"")


def test_the_repository_files_are_found_in_this_clone():
    p = recorded_path("results/ch6/orderings_batch.json", fetch=lambda url: b"")
    assert p == ROOT / "results" / "ch6" / "orderings_batch.json"


def test_orderings_rows_flatten_runs_and_filter_settings():
    doc = {"runs": [
        {"setting": "rotated 0-360", "model": "gcnn", "seed": 1, "hidden": 8, "steps": 2814,
         "wall_s": 600.0, "test_acc": 0.9712, "data": {"train": 60000}},
        {"setting": "scaled 0.3-1.0", "model": "wscnn+ent", "test_acc": 0.5, "epochs": 15,
         "data": {"train": 4000}},
    ]}
    rows = recorded.orderings_rows(doc, ["rotated 0-360"])
    assert rows == [{"setting": "rotated 0-360", "model": "G-CNN", "width h": 8, "seed": 1,
                     "train digits": 60000, "steps": 2814, "wall (min)": 10.0,
                     "test acc. (%)": 97.12}]
    assert recorded.orderings_rows(doc)[1]["model"] == "WSCNN + ent"
    assert recorded.orderings_rows(doc)[1]["wall (min)"] is None
    assert recorded.orderings_rows(doc)[1]["steps"] == 15 * 63  # 4,000 digits in batches of 64


# The figures of recorded runs (wslib.viz): legible on the page, and bad input is refused.

def _trace(n):
    return {"title": "seed 0", "step": [235 * (i + 1) for i in range(n)],
            "weight": [[0.3, 0.5, 0.8]] * n, "element": [["r90", "r²", "r270"]] * n}


def test_emergence_and_goal_figures_stay_legible():
    import matplotlib.pyplot as plt
    from wslib import viz

    for fig in (viz.plot_emergence([_trace(1), _trace(5), _trace(3), _trace(2)]),
                viz.plot_goal_progress({"a": {"x": [1, 2], "weight": [[0.2] * 3, [0.8] * 3],
                                              "element": [["e"] * 3, ["r", "r²", "r³"]]}}),
                viz.plot_coefficient_grid(torch.full((7, 3, 4), 0.25),
                                          [f"run {i}" for i in range(7)])):
        assert viz.smallest_font_on_page(fig) >= 9.0
        assert fig.get_figwidth() <= viz.PAGE_WIDTH_IN + 1e-9
        plt.close(fig)


def test_recorded_figures_refuse_bad_input():
    from wslib import viz

    with pytest.raises(ValueError, match="at least one run"):
        viz.plot_emergence([])
    with pytest.raises(ValueError, match="runs=2"):
        viz.plot_coefficient_grid(torch.full((3, 3, 4), 0.25), ["a", "b"])
