"""Synchronised masked batch norm of the 1-D networks: 2 gloo ranks on loopback."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from skcnn import Conv1DClassifier
from skcnn._distributed import convert_sync_batchnorm, restore_batchnorm
from skcnn.models._masking import MaskedBatchNorm1d
from tests import ddp_masked_script
from tests.test_distributed import ROOT, _free_port


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """What each of the 2 ranks of a torchrun launch found and fitted."""
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available")
    out = tmp_path_factory.mktemp("ddp_masked")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
           str(ROOT / "tests" / "ddp_masked_script.py"), str(out)]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


@pytest.mark.slow
@pytest.mark.parametrize("case", ["masked", "unmasked"])
@pytest.mark.parametrize("rank", [0, 1])
def test_synced_masked_batch_norm_is_the_batch_norm_of_the_union(ranks, case, rank):
    # Rank 0 holds 4 full series, rank 1 four padded ones: outputs, input
    # gradients, parameter gradients (summed over the ranks) and running
    # statistics are those of one layer on all 8 series.
    diffs = ranks[rank][case]
    assert max(diffs.values()) < 1e-5, diffs


@pytest.mark.slow
def test_unsynced_masked_batch_norm_differs(ranks):
    # The check above can fail: each rank's own statistics are far off.
    assert ranks[1]["masked_unsynced"]["output"] > 0.1


@pytest.mark.slow
def test_fcn_with_sync_batch_norm_ends_identical_on_both_ranks(ranks):
    a, b = ranks
    assert a["state"].keys() == b["state"].keys()
    assert any("running_var" in key for key in a["state"])
    for key in a["state"]:
        assert torch.equal(a["state"][key], b["state"][key]), key
    assert a["history"] == b["history"]
    # The layers were switched to sync for the fit and back after it.
    assert a["sync_flags"] == [False, False, False]


@pytest.mark.slow
def test_fcn_with_sync_batch_norm_trains_as_one_process_on_the_global_batch(ranks):
    # Rank r's batch is rows r, r + 2, ... of the single process's batch of
    # 32, so with synchronised statistics the two ranks take the steps of
    # one process, up to float rounding.
    X, y = ddp_masked_script.series()
    params = {**ddp_masked_script.FCN, "sync_batch_norm": False}
    single = Conv1DClassifier("fcn", **params).fit(X, y)
    for key, value in single.module_.state_dict().items():
        if value.is_floating_point():
            np.testing.assert_allclose(ranks[0]["state"][key], value, atol=1e-5,
                                       err_msg=key)


def test_convert_switches_masked_batch_norm_in_place_and_back():
    net = torch.nn.Sequential(MaskedBatchNorm1d(3), torch.nn.BatchNorm1d(3))
    layer = net[0]
    swaps = convert_sync_batchnorm(net)
    assert net[0] is layer and layer.sync
    assert type(net[1]).__name__ == "SyncBatchNorm"
    restore_batchnorm(swaps)
    assert net[0] is layer and not layer.sync
    assert type(net[1]) is torch.nn.BatchNorm1d


def test_sync_flag_without_process_group_is_a_plain_masked_batch_norm():
    x, _, mask = ddp_masked_script._batch(with_mask=True)
    plain, synced = ddp_masked_script._layer(), ddp_masked_script._layer()
    synced.sync = True
    torch.testing.assert_close(synced(x, mask), plain(x, mask))
    torch.testing.assert_close(synced.running_var, plain.running_var)
