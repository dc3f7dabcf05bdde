import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def smoke_params():
    """The real config shrunk by the smoke profile (not a fake one)."""
    from reasonlab.params import parse_params
    from reasonlab.profiles import compose

    return parse_params(compose("smoke", ROOT / "conf"), "smoke")


@pytest.fixture(scope="session")
def smoke_world(tmp_path_factory, smoke_params):
    from reasonlab.world.build import build_world

    out = tmp_path_factory.mktemp("world")
    build_world(smoke_params.world, smoke_params.seed, out)
    return out


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a module: 2 shared cores, and OpenMP with 2 threads stalls badly under contention."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
