"""Data-parallel training: 2 gloo processes on loopback, launched by torchrun."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from skcnn import CNNClassifier
from skcnn._data import ArrayDataset, BatchIterator
from tests import ddp_script

ROOT = Path(__file__).resolve().parents[1]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """What each of the 2 ranks of a torchrun launch fitted."""
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
           str(ROOT / "tests" / "ddp_script.py"), str(out)]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["plain", "sync_bn", "early"])
def test_every_rank_ends_with_the_same_network(ranks, name):
    a, b = ranks[0][name], ranks[1][name]
    assert a["state"].keys() == b["state"].keys()
    for key in a["state"]:
        assert torch.equal(a["state"][key], b["state"][key]), key
    assert a["history"] == b["history"]  # losses, schedules, stopping: the same
    assert a["accuracy"] == b["accuracy"]


@pytest.mark.slow
def test_sync_batch_norm_uses_the_global_batch(ranks):
    # Each rank normalised its half with the statistics of the whole batch:
    # outputs, input gradients and running statistics as one BatchNorm2d
    # on the whole batch.
    assert ranks[0]["sync_bn_check"] < 1e-5
    assert ranks[1]["sync_bn_check"] < 1e-5


@pytest.mark.slow
def test_each_rank_trains_on_its_half(ranks):
    # 1200 digits, global batches of 64: 600 per rank in 19 batches of <= 32.
    assert ranks[0]["plain"]["batches"] == 19


@pytest.mark.slow
def test_early_stopping_and_plateau_schedule_agree(ranks):
    history = ranks[0]["early"]["history"]
    assert len(history) < ddp_script.EARLY["max_epochs"]  # it stopped
    assert "valid_loss" in history[0]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["plain", "sync_bn"])
def test_accuracy_matches_a_single_process(ranks, name):
    X, y, X_test, y_test = ddp_script.data()
    single = CNNClassifier(**ddp_script.PARAMS).fit(X, y).score(X_test, y_test)
    assert abs(ranks[0][name]["accuracy"] - single) <= 0.01, (
        ranks[0][name]["accuracy"], single)


def test_shards_partition_each_epoch():
    data = ArrayDataset(torch.arange(10.0)[:, None])
    gen = torch.Generator().manual_seed(0)
    rows = []
    for rank in (0, 1, 2):
        gen.manual_seed(0)
        it = BatchIterator(data, 2, shuffle=True, generator=gen, shard=(rank, 3))
        assert len(it) == 2  # ceil(10 / 3) = 4 rows, 2 batches on every rank
        rows.append(torch.cat([xb[:, 0] for xb, _ in it]))
    every = torch.cat(rows)
    assert len(every) == 12 and set(every.tolist()) == set(range(10))


def test_no_distributed_training_without_torchrun(small_digits, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    X, y = small_digits
    clf = CNNClassifier(channels=(4,), hidden_units=(8,), max_epochs=1,
                        random_state=0, sync_batch_norm=True).fit(X[:60], y[:60])
    assert clf.net_.dist_info is None
    np.testing.assert_array_equal(clf.predict(X[:5]).shape, (5,))
