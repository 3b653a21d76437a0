import os

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread_per_worker():
    """Under pytest-xdist each worker gets one torch thread: the machine's
    cores are shared by the workers, and oversubscribing them makes small
    networks many times slower."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)
    yield
