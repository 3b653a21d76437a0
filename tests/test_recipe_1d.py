"""The 1-D estimators' defaults: ``max_epochs='auto'``, ``n_ensemble``, real data.

The defaults were chosen on every UCR/UEA set shipped in the sktime and
aeon wheels (``benchmarks/ucr.py``, figures in ``benchmarks/RESULTS.md``);
these tests pin the rule, the ensemble's training and one unequal-length
set with the defaults as a new user calls them.
"""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from skcnn import CNNClassifier, Conv1DClassifier, Conv1DRegressor
from skcnn._net import _Net
from skcnn._signal import AUTO_EPOCHS, _padded_length, auto_max_epochs
from skcnn.models import Ensemble
from skcnn.models._scale import KeepScale

TINY = dict(channels=(4, 4), kernel_size=3)


@pytest.fixture
def series():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 2, 20)).astype(np.float32)
    y = (X[:, 0, :5].mean(axis=1) > 0).astype(int)
    return X, y


# -- max_epochs='auto' ------------------------------------------------------------
def test_auto_epochs_aims_at_a_step_budget_for_small_sets():
    # 50 series in batches of 8: 7 steps an epoch, 4000 steps -> 572 epochs.
    assert auto_max_epochs(50, 8, 150) == 572
    # 36 series: 5 steps -> 800 epochs; the regressor's 2000 steps: 400.
    assert auto_max_epochs(36, 8, 251) == 800
    assert auto_max_epochs(36, 8, 251, steps=AUTO_EPOCHS["regressor_steps"]) == 400


def test_auto_epochs_caps_the_time_steps_processed_for_long_series():
    # 100 series of 1460 steps: 4000 steps would be 308 epochs, but 25
    # million time steps allow 171.
    assert auto_max_epochs(100, 8, 1460) == 171
    # A set 100x larger does not train 100x longer: it gets the minimum.
    assert auto_max_epochs(10_000, 8, 1460) == AUTO_EPOCHS["min_epochs"] == 20
    assert auto_max_epochs(10_000, 8, 1460, min_epochs=5) == 5


def test_padded_length_is_the_mean_longest_series_of_a_batch():
    assert _padded_length(np.zeros((10, 1, 30)), None, 4) == 30
    lengths = np.array([10] * 15 + [100])
    # Batches of 4 from 16 series: the batch holding the long series is
    # trimmed to 100, the three others to 10.
    assert _padded_length(None, lengths, 4) == pytest.approx((100 + 3 * 10) / 4)
    assert _padded_length(None, lengths, 16) == 100


def test_auto_is_the_default_and_sets_max_epochs_(series):
    X, y = series
    assert Conv1DClassifier().max_epochs == "auto"
    assert Conv1DRegressor().max_epochs == "auto"
    clf = Conv1DClassifier(**TINY, batch_size=16, random_state=0).fit(X, y)
    # 48 series in batches of 16: 3 steps an epoch -> 1334 epochs; 48 x 20
    # time steps an epoch allow 26041.
    assert clf.max_epochs_ == 1334 == len(clf.history_)
    fixed = clone(clf).set_params(max_epochs=3).fit(X, y)
    assert fixed.max_epochs_ == 3 == len(fixed.history_)
    # The regressor aims at 2000 steps: 667 epochs.
    reg = Conv1DRegressor(**TINY, batch_size=16, random_state=0).fit(X, y.astype(float))
    assert reg.max_epochs_ == 667 == len(reg.history_)


def test_auto_counts_only_the_series_trained_on(series):
    X, y = series
    clf = Conv1DClassifier(**TINY, batch_size=16, early_stopping=True,
                           validation_fraction=0.25, patience=1,
                           random_state=0).fit(X, y)
    # 36 series trained on: 3 steps an epoch, as for 48.
    assert clf.max_epochs_ == auto_max_epochs(36, 16, 20)


def test_auto_is_refused_by_the_image_estimators():
    X = np.zeros((4, 1, 8, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="max_epochs='auto'.*CNNClassifier takes an int"):
        CNNClassifier(max_epochs="auto").fit(X, [0, 1, 0, 1])


# -- n_ensemble ---------------------------------------------------------------------
def test_ensemble_builds_distinct_members_and_predicts_their_mean(series):
    X, y = series
    clf = Conv1DClassifier(**TINY, n_ensemble=3, max_epochs=3,
                           random_state=0).fit(X, y)
    module = clf.module_
    assert isinstance(module, Ensemble) and len(module.networks) == 3
    first = [m.weight for m in module.networks[0].modules()
             if isinstance(m, torch.nn.Conv1d)][0]
    second = [m.weight for m in module.networks[1].modules()
              if isinstance(m, torch.nn.Conv1d)][0]
    assert not torch.equal(first, second)
    with torch.no_grad():
        logits = torch.stack([net(torch.as_tensor(X)) for net in module.networks])
    expected = torch.softmax(logits.mean(0), dim=1).numpy()
    np.testing.assert_allclose(clf.predict_proba(X), expected, atol=1e-5)


def test_ensemble_members_learn_from_their_own_loss_only():
    # Each member's gradient is that of its own loss: changing another
    # member leaves it unchanged. (A loss on the mean logits would couple
    # them.)
    torch.manual_seed(0)
    members = [torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 3))
               for _ in range(2)]
    net = _Net(module=Ensemble(members), criterion=torch.nn.CrossEntropyLoss,
               criterion__reduction="none", optimizer=torch.optim.SGD, lr=0.1,
               train_split=None, max_epochs=1, batch_size=4)
    net.initialize()
    x, y = torch.randn(4, 1, 6), torch.tensor([0, 1, 2, 0])

    def grad_of_member_1():
        net.module_.zero_grad()
        net.module_.train()
        net.get_loss(net.module_(x), y, training=True).backward()
        return net.module_.networks[1][1].weight.grad.clone()

    before = grad_of_member_1()
    with torch.no_grad():
        net.module_.networks[0][1].weight.mul_(5.0)
    np.testing.assert_allclose(grad_of_member_1(), before, atol=1e-7)
    # Half (one member of two) of what the member alone would get.
    alone = members[1]
    alone.zero_grad()
    torch.nn.functional.cross_entropy(alone(x), y).backward()
    np.testing.assert_allclose(before, alone[1].weight.grad / 2, atol=1e-6)


def test_one_member_ensemble_is_the_plain_network(series):
    X, y = series
    plain = Conv1DClassifier(**TINY, max_epochs=3, random_state=0).fit(X, y)
    one = Conv1DClassifier(**TINY, max_epochs=3, n_ensemble=1, random_state=0).fit(X, y)
    assert not isinstance(one.module_, Ensemble)
    np.testing.assert_array_equal(plain.predict_proba(X), one.predict_proba(X))


def test_ensemble_regressor_and_unequal_lengths():
    rng = np.random.default_rng(1)
    series = [rng.normal(size=(1, n)).astype(np.float32)
              for n in rng.integers(8, 30, 40)]
    y = np.array([s.mean() for s in series])
    reg = Conv1DRegressor("fcn", **TINY, n_ensemble=2, max_epochs=2,
                          random_state=0).fit(series, y)
    assert reg.predict(series).shape == (40,)


def test_ensemble_refuses_weights(tmp_path, series):
    X, y = series
    path = tmp_path / "w.pt"
    torch.save({}, path)
    with pytest.raises(ValueError, match="n_ensemble=2 trains networks from their own"):
        Conv1DClassifier(**TINY, n_ensemble=2, weights=str(path)).fit(X, y)


def test_n_ensemble_is_validated(series):
    X, y = series
    with pytest.raises(ValueError, match="n_ensemble"):
        Conv1DClassifier(n_ensemble=0).fit(X, y)


# -- real data, defaults as a new user calls them -----------------------------------
@pytest.fixture(scope="module")
def japanese_vowels():
    """UEA JapaneseVowels: 12 channels, unequal lengths 7-29 (from sktime)."""
    datasets = pytest.importorskip("sktime.datasets")
    return (*datasets.load_japanese_vowels(split="train", return_X_y=True),
            *datasets.load_japanese_vowels(split="test", return_X_y=True))


def test_defaults_learn_an_unequal_length_multivariate_set(japanese_vowels):
    # Issue 12: the former default (architecture='convnet') refused this
    # set with a ValueError. The published FCN reaches 0.993, ResNet 0.992.
    X, y, Xt, yt = japanese_vowels
    clf = Conv1DClassifier(random_state=0).fit(X, y)
    assert clf.score(Xt, yt) >= 0.97


def test_the_docstrings_state_the_rule_in_force():
    for est, key in ((Conv1DClassifier, "steps"), (Conv1DRegressor, "regressor_steps")):
        doc = " ".join(est.__doc__.split())
        assert f"about {AUTO_EPOCHS[key]} optimizer steps" in doc
        assert f"{AUTO_EPOCHS['budget'] // 1_000_000} million time steps" in doc
        assert f"at least {AUTO_EPOCHS['min_epochs']}" in doc


@pytest.fixture(scope="module")
def tecator():
    """Tecator: 172/43 near-infrared spectra of meat, fat content (sktime)."""
    datasets = pytest.importorskip("sktime.datasets")
    kw = dict(return_X_y=True, return_type="numpy3D")
    return (*datasets.load_tecator(split="train", **kw),
            *datasets.load_tecator(split="test", **kw))


def test_regressor_defaults_beat_the_mean_and_ridge_regression(tecator):
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, Xt, yt = tecator
    reg = Conv1DRegressor(random_state=0).fit(X, y)
    rmse = np.sqrt(np.mean((reg.predict(Xt) - yt) ** 2))
    ridge = make_pipeline(StandardScaler(), RidgeCV(np.logspace(-3, 5, 17)))
    ridge.fit(X[:, 0], y)
    ridge_rmse = np.sqrt(np.mean((ridge.predict(Xt[:, 0]) - yt) ** 2))
    assert ridge_rmse < np.std(yt) / 4  # ridge itself is a strong baseline
    # Keeping each spectrum's level beside its z-normalised shape
    # (normalize='auto' -> 'zscore+scale'): 0.72 against ridge's 2.65; the
    # raw spectra gave 1.04.
    assert rmse < 0.35 * ridge_rmse


# -- normalize='auto' -----------------------------------------------------------------
def test_auto_normalize_zscores_series_whose_scales_span_orders_of_magnitude():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(40, 1, 30))
    y = np.arange(40) % 2
    # Scales 1 to 10: left as they are.
    mild = base * np.linspace(1, 10, 40)[:, None, None]
    clf = Conv1DClassifier(**TINY, max_epochs=1, random_state=0).fit(mild, y)
    assert clf.normalize_ is None
    # Scales 1e-4 to 1e3 (as PLAID's currents): z-normalised, at predict too.
    wild = base * np.logspace(-4, 3, 40)[:, None, None]
    clf = Conv1DClassifier(**TINY, max_epochs=1, random_state=0).fit(wild, y)
    assert clf.normalize_ == "zscore+scale"
    same = Conv1DClassifier(**TINY, max_epochs=1, normalize="zscore+scale",
                            random_state=0).fit(wild, y)
    np.testing.assert_array_equal(clf.predict_proba(wild * 3), same.predict_proba(wild * 3))
    # An explicit choice is kept whatever the data.
    assert Conv1DClassifier(**TINY, max_epochs=1, normalize=None).fit(
        wild, y).normalize_ is None
    # A regressor keeps the scale whatever the spread: targets follow it.
    reg = Conv1DRegressor(**TINY, max_epochs=1, random_state=0).fit(mild, y * 1.0)
    assert reg.normalize_ == "zscore+scale" and isinstance(reg.module_, KeepScale)


def test_series_scale_matches_normalize_series_and_reads_each_scale():
    from skcnn._sequences import normalize_series
    from skcnn.models._scale import series_scale

    rng = np.random.default_rng(1)
    lengths = np.array([5, 9, 12, 3])
    X = np.zeros((4, 2, 12), dtype=np.float32)
    for i, n in enumerate(lengths):
        X[i, :, :n] = rng.normal(size=(2, n)) * [[100.0], [0.01]] + [[-7.0], [2.0]]
    X[3, 1, :3] = 4.0  # a constant channel
    mask = torch.arange(12)[None, :] < torch.as_tensor(lengths)[:, None]
    z, stats = series_scale(torch.as_tensor(X), mask)
    # float32 centring of a channel of level 2 and scale 0.01: ~3e-5 apart
    np.testing.assert_allclose(z.numpy(), normalize_series(X, lengths), atol=2e-4)
    assert stats.shape == (4, 6)
    for i, n in enumerate(lengths):
        real = X[i, :, :n].astype(np.float64)
        mean, std = real.mean(1), real.std(1)
        want = np.r_[np.sign(mean) * np.log1p(np.abs(mean)),
                     np.log(np.maximum(std, 1e-12)), np.log(np.abs(real).max(1))]
        np.testing.assert_allclose(stats[i].numpy(), want, rtol=1e-4, atol=1e-4)
    assert stats[3, 3] == pytest.approx(np.log(1e-12))  # std 0, floored


def test_zscore_plus_scale_learns_what_zscore_throws_away():
    rng = np.random.default_rng(0)
    n = 80
    y = np.arange(n) % 2
    # Same noise shapes; class 1 has 1000x the amplitude of class 0, and
    # the scales within each class spread over two orders of magnitude.
    X = [(rng.normal(size=(1, int(m))) * 10.0 ** (rng.uniform(-1, 1) + 3 * y[i]))
         .astype(np.float32) for i, m in enumerate(rng.integers(20, 40, n))]
    params = dict(**TINY, max_epochs=30, random_state=0)
    keep = Conv1DClassifier(normalize="zscore+scale", **params).fit(X[:60], y[:60])
    plain = Conv1DClassifier(normalize="zscore", **params).fit(X[:60], y[:60])
    assert keep.score(X[60:], y[60:]) >= 0.95
    assert plain.score(X[60:], y[60:]) <= 0.75  # z-normalised, the classes look alike
    # The network z-normalises: the shapes reach it as 'zscore' gives them,
    # and rescaling a series changes only what the scale layers read.
    assert isinstance(keep.module_, KeepScale)
    proba = keep.predict_proba(X[60:])
    assert not np.allclose(keep.predict_proba([x * 1e3 for x in X[60:]]), proba, atol=1e-3)
    # Padding does not leak into the statistics: alone or batched, the same output.
    alone = np.vstack([keep.predict_proba([x]) for x in X[60:64]])
    np.testing.assert_allclose(alone, proba[:4], atol=1e-5)


def test_zscore_plus_scale_regresses_a_target_proportional_to_the_amplitude():
    # The statistics reach the head as logarithms; its hidden layer lets the
    # output follow the amplitude itself (a linear head on them: R^2 0.69).
    rng = np.random.default_rng(0)
    amplitude = 10.0 ** rng.uniform(0, 2, 160)
    X = (amplitude[:, None] * rng.normal(size=(160, 32)))[:, None].astype(np.float32)
    reg = Conv1DRegressor(**TINY, max_epochs=30, normalize="zscore+scale",
                          random_state=0).fit(X[:120], amplitude[:120])
    assert reg.score(X[120:], amplitude[120:]) > 0.85


def test_zscore_plus_scale_keeps_the_networks_length_rules():
    rng = np.random.default_rng(0)
    X = [rng.normal(size=m).astype(np.float32) for m in rng.integers(10, 20, 12)]
    y = np.arange(12) % 2
    with pytest.raises(ValueError, match="forward takes no mask"):
        Conv1DClassifier("convnet", normalize="zscore+scale", max_epochs=1).fit(X, y)
    # Equal lengths: any architecture, an ensemble too.
    X3 = rng.normal(size=(12, 2, 16)).astype(np.float32)
    reg = Conv1DRegressor("convnet", normalize="zscore+scale", max_epochs=1,
                          random_state=0).fit(X3, y.astype(float))
    assert isinstance(reg.module_, KeepScale) and reg.predict(X3).shape == (12,)
    ens = Conv1DClassifier(**TINY, normalize="zscore+scale", n_ensemble=2,
                           max_epochs=1, random_state=0).fit(X3, y)
    assert all(isinstance(m, KeepScale) for m in ens.module_.networks)
    assert ens.predict_proba(X3).shape == (12, 2)


def test_weights_file_of_a_zscore_plus_scale_network_round_trips(tmp_path):
    # The user guide's round trip: save module_.state_dict(), pass the file
    # as weights=. A 'zscore+scale' network (the regressor's default) holds
    # the scale perceptron too, and loads whole.
    rng = np.random.default_rng(0)
    X = (10.0 ** rng.uniform(0, 2, (40, 1, 1)) * rng.normal(size=(40, 2, 16))).astype(np.float32)
    y = X.std(axis=(1, 2))
    first = Conv1DRegressor(**TINY, max_epochs=3, random_state=0).fit(X, y)
    assert first.normalize_ == "zscore+scale"
    path = tmp_path / "keep_scale.pt"
    torch.save(first.module_.state_dict(), path)
    again = Conv1DRegressor(**TINY, weights=str(path), freeze="backbone", lr=1e-12,
                            max_epochs=1, random_state=1).fit(X, y)
    conv = "network.features.0.0.weight"
    assert torch.equal(again.module_.state_dict()[conv], first.module_.state_dict()[conv])
    head = first.module_.scale_head.weight
    assert head.abs().sum() > 0  # trained: a fresh head starts at zero
    torch.testing.assert_close(again.module_.scale_head.weight, head)
    # A bare network's file loads into the network; the perceptron starts afresh.
    bare = Conv1DRegressor(**TINY, normalize=None, max_epochs=1, random_state=0).fit(X, y)
    torch.save(bare.module_.state_dict(), path)
    wrapped = Conv1DRegressor(**TINY, weights=str(path), freeze="backbone",
                              max_epochs=1, random_state=1).fit(X, y)
    assert torch.equal(wrapped.module_.network.features[0][0].weight,
                       bare.module_.features[0][0].weight)
    # A KeepScale file cannot load into a network without the scale path.
    torch.save(first.module_.state_dict(), path)
    with pytest.raises(ValueError, match="normalize='zscore\\+scale' \\(its scale "
                                         "perceptron included\\), but this estimator's "
                                         "normalize resolves to None"):
        Conv1DRegressor(**TINY, normalize=None, weights=str(path), max_epochs=1).fit(X, y)


def test_scale_spread_reads_the_real_length_of_each_series():
    from skcnn._sequences import scale_spread

    X = np.zeros((10, 1, 8))
    X[:, 0, :4] = np.arange(4) * np.arange(1, 11)[:, None]  # stds 1.1 ... 11.2
    assert scale_spread(X, np.full(10, 4)) == pytest.approx(
        np.percentile(np.arange(1, 11), 90) / np.percentile(np.arange(1, 11), 10))
    assert scale_spread(np.zeros((5, 2, 3))) == 1.0


# -- group_by_length ----------------------------------------------------------------
def _skewed_lengths(n=200, seed=0, scale=1):
    # many short series and a few long ones, as PLAID's 100-1344 (mean 324)
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < 0.15, rng.integers(800, 1300, n),
                    rng.integers(100, 300, n)) // scale


def test_group_by_length_keeps_every_row_and_cuts_the_padding():
    from skcnn._data import batch_sizes, group_by_length

    lengths = torch.as_tensor(_skewed_lengths())
    sizes = batch_sizes(len(lengths), 8, balanced=True)

    def batches(seed, grouped):
        gen = torch.Generator().manual_seed(seed)
        perm = torch.randperm(len(lengths), generator=gen)
        if not grouped:
            return list(perm.split(sizes))
        return group_by_length(perm, lengths[perm], sizes, gen)

    grouped = batches(0, True)
    # every row exactly once, in batches of the pass's sizes (shuffled)
    assert sorted(torch.cat(grouped).tolist()) == list(range(len(lengths)))
    assert sorted(len(b) for b in grouped) == sorted(sizes)
    padded = np.mean([int(lengths[b].max()) for b in grouped])
    at_random = np.mean([int(lengths[b].max()) for b in batches(0, False)])
    # random batches of 8 mostly hold a long series; grouped ones rarely
    assert padded < 0.6 * at_random
    assert padded < 1.3 * float(lengths.float().mean())
    # the order is seeded: the same seed, the same batches; another, others
    assert all(torch.equal(a, b) for a, b in zip(grouped, batches(0, True)))
    assert not all(torch.equal(a, b) for a, b in zip(grouped, batches(1, True)))
    # the batches' order is shuffled, not longest first
    first = [int(lengths[b].max()) for b in grouped[:10]]
    assert first != sorted(first, reverse=True)


def test_padded_length_counts_grouped_batches():
    lengths = _skewed_lengths()
    grouped = _padded_length(None, lengths, 8, grouped=True)
    at_random = _padded_length(None, lengths, 8)
    assert grouped < 0.6 * at_random
    # more epochs for the same budget of time steps computed
    assert auto_max_epochs(200, 8, grouped) > auto_max_epochs(200, 8, at_random)


@pytest.mark.parametrize("group", [True, False])
def test_training_batches_group_series_of_similar_lengths(group, monkeypatch):
    rng = np.random.default_rng(0)
    lengths = _skewed_lengths(120, scale=10)
    X = [rng.normal(size=(1, n)).astype(np.float32) for n in lengths]
    y = np.arange(120) % 2
    seen = []
    forward = _Net.infer

    def spy(self, x, **fit_params):
        if self.module_.training:
            seen.append(x["x"].shape[-1])
        return forward(self, x, **fit_params)

    monkeypatch.setattr(_Net, "infer", spy)
    est = Conv1DClassifier(channels=(4, 4), kernel_size=3, max_epochs=3,
                           group_by_length=group,
                           random_state=0).fit(X, y)
    assert Conv1DClassifier().group_by_length is False
    assert len(seen) == 3 * 15  # 120 series in batches of 8, 3 epochs
    mean = float(np.mean(seen))
    if group:
        assert mean < 1.3 * lengths.mean()
        assert est.max_epochs_ == 3
    else:
        assert mean > 1.6 * lengths.mean()
    # validation and prediction batches are in the caller's order
    proba = est.predict_proba(X[:5])
    assert np.allclose(proba, np.vstack([est.predict_proba([x]) for x in X[:5]]),
                       atol=1e-6)
