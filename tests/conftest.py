import pytest
import torch

# Exactness tests compare float32 results to 1e-5; TF32 convolutions and matmuls on recent
# NVIDIA GPUs round to ~1e-3 and would hide real errors behind rounding.
torch.backends.cudnn.allow_tf32 = False
torch.backends.cuda.matmul.allow_tf32 = False

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Run a test on the CPU and, where present, on the GPU."""
    return torch.device(request.param)
