import os

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits


@pytest.fixture(autouse=True, scope="session")
def _one_thread_per_worker():
    """Under pytest-xdist each worker gets one torch thread: the machine's
    cores are shared by the workers, and oversubscribing them makes small
    networks many times slower."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def digits():
    """The 1797 sklearn digits as (n, 8, 8) float images in [0, 1] and labels."""
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).reshape(-1, 8, 8), y


@pytest.fixture
def small_digits(digits):
    """300 digits: enough to learn, fast to train."""
    X, y = digits
    return X[:300].copy(), y[:300].copy()


@pytest.fixture
def signals():
    """Seeded 1-D signals: class = whether a bump sits in the first half."""
    rng = np.random.RandomState(0)
    n, length = 120, 40
    X = rng.normal(scale=0.3, size=(n, length))
    y = rng.randint(0, 2, size=n)
    pos = np.where(y == 1, 8, 28)
    for i in range(n):
        X[i, pos[i]:pos[i] + 5] += 2.0
    return X.astype(np.float32), y


# Small, fast settings used across tests.
FAST = dict(architecture="convnet", channels=(8, 16), hidden_units=(32,), max_epochs=3, random_state=0)


@pytest.fixture(scope="session")
def rgb():
    """60 coloured 8x8 digits as uint8 (n, H, W, 3) and labels."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:60], y[:60] % 3
    rng = np.random.RandomState(0)
    colour = rng.uniform(0.3, 1.0, size=(60, 1, 1, 3))
    images = np.round(X.reshape(-1, 8, 8, 1) / 16 * colour * 255).astype(np.uint8)
    return images, y
