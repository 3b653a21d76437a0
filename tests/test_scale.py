"""Hyperparameter searches on a Dask cluster and on Ray give the results of n_jobs=1.

The clusters run on loopback (127.0.0.1) and are stopped by their fixtures.
"""

import os
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import (
    GridSearchCV,
    HalvingGridSearchCV,
    RandomizedSearchCV,
)

from skcnn import CNNClassifier

distributed = pytest.importorskip("distributed")

ROOT = str(Path(__file__).resolve().parents[1])  # this checkout's skcnn

TINY = dict(architecture="convnet", channels=(4,), hidden_units=(8,), max_epochs=2, batch_size=32,
            random_state=0)
GRID = {"lr": [3e-3, 1e-2], "channels": [(4,), (6,)]}


def _searches():
    est = CNNClassifier(**TINY)
    return {
        "grid": GridSearchCV(est, GRID, cv=2),
        "random": RandomizedSearchCV(est, {"lr": [1e-3, 3e-3, 1e-2, 3e-2]},
                                     n_iter=3, cv=2, random_state=0),
        "halving": HalvingGridSearchCV(est, GRID, cv=2, factor=2,
                                       random_state=0),
    }


@pytest.fixture(scope="module")
def data():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return (X[:160] / 16.0).astype(np.float32), y[:160]


@pytest.fixture(scope="module")
def reference(data):
    """The three searches run with n_jobs=1."""
    X, y = data
    return {name: search.fit(X, y) for name, search in _searches().items()}


def _assert_same_results(search, ref):
    assert search.best_params_ == ref.best_params_
    for key in ref.cv_results_:
        if key.startswith(("split", "mean_test", "std_test", "rank_test")):
            np.testing.assert_allclose(search.cv_results_[key], ref.cv_results_[key],
                                       err_msg=key)
    assert [str(p) for p in search.cv_results_["params"]] == [
        str(p) for p in ref.cv_results_["params"]]


@pytest.fixture(scope="module")
def dask_client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, worker_dashboard_address=None)
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.mark.parametrize("name", ["grid", "random", "halving"])
def test_search_on_a_dask_cluster_matches_n_jobs_1(name, data, reference,
                                                   dask_client):
    X, y = data
    search = _searches()[name]
    with joblib.parallel_config(backend="dask", n_jobs=2):
        search.fit(X, y)
        pids = set(joblib.Parallel()(joblib.delayed(os.getpid)() for _ in range(8)))
    _assert_same_results(search, reference[name])
    # This joblib configuration runs the work in the cluster's processes.
    assert os.getpid() not in pids
    assert len(dask_client.scheduler_info()["workers"]) == 2


def _fit_on_worker(X, y):
    torch.set_num_threads(2)  # the worker's torch setting before the fit
    est = CNNClassifier(**TINY).fit(X, y)
    return est.n_threads_, est.history_[:, "n_threads"], torch.get_num_threads()


def test_num_threads_none_takes_the_dask_worker_budget(data, dask_client):
    X, y = data
    out = dask_client.submit(_fit_on_worker, X, y, pure=False).result()
    assert out == (1, [1, 1], 2)  # threads_per_worker=1; setting restored


@pytest.fixture(scope="module")
def ray_backend():
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1",
             runtime_env={"env_vars": {"PYTHONPATH": ROOT,
                                       "OMP_NUM_THREADS": "1"}})
    register_ray()
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["grid", "random", "halving"])
def test_search_on_ray_matches_n_jobs_1(name, data, reference, ray_backend):
    X, y = data
    search = _searches()[name]
    with joblib.parallel_config(backend="ray", n_jobs=2):
        search.fit(X, y)
        pids = set(joblib.Parallel()(joblib.delayed(os.getpid)() for _ in range(8)))
    _assert_same_results(search, reference[name])
    assert os.getpid() not in pids  # the work ran in Ray's worker processes


def test_the_tests_import_this_checkout():
    import skcnn

    assert os.path.dirname(skcnn.__file__).startswith(ROOT)


@pytest.mark.slow
def test_num_threads_none_takes_the_ray_task_cpus(data, ray_backend):
    X, y = data
    remote = ray_backend.remote(num_cpus=1)(_fit_on_worker)
    assert ray_backend.get(remote.remote(X, y)) == (1, [1, 1], 2)
