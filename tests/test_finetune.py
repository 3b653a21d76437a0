"""Fine-tuning pretrained backbones through CNNClassifier/CNNRegressor."""

import pickle

import numpy as np
import pytest
import torch
import torchvision
from skorch.callbacks import Callback

from skcnn import CNNClassifier, CNNRegressor
from skcnn.exceptions import UnknownBackboneError


@pytest.fixture
def images():
    rng = np.random.RandomState(0)
    X = rng.rand(40, 3, 32, 32).astype(np.float32)
    y = np.repeat([0, 1], 20)
    X[y == 1, :, :16] += 0.5  # a learnable difference
    return X, y


def _snapshot(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def _changed(before, module, prefix):
    return {n: not torch.equal(before[n], p)
            for n, p in module.named_parameters() if n.startswith(prefix)}


FT = dict(max_epochs=2, batch_size=20, lr=1e-2, lr_schedule=None, random_state=0)


def _fitted_resnet(images, **params):
    """Fit and return the estimator and its parameters at initialisation."""
    X, y = images
    clf = CNNClassifier("resnet18", **{**FT, **params})
    init = {}

    class Snapshot(Callback):
        def on_train_begin(self, net, **kwargs):
            init.update(_snapshot(net.module_))

    clf.set_params(callbacks=[("snap", Snapshot())])
    clf.fit(X, y)
    return clf, init


def test_freeze_backbone_trains_only_the_new_head(images):
    clf, init = _fitted_resnet(images, freeze="backbone")
    module = clf.module_
    assert module.backbone.fc.out_features == 2
    head = _changed(init, module, "backbone.fc")
    body = _changed(init, module, "backbone.layer")
    assert all(head.values()) and not any(body.values())
    # Frozen batch norm keeps its pretrained running statistics.
    assert torch.equal(module.backbone.bn1.running_mean, torch.zeros(64))


def test_freeze_k_trains_the_last_k_groups(images):
    clf, init = _fitted_resnet(images, freeze=1)
    module = clf.module_
    assert all(_changed(init, module, "backbone.layer4").values())
    assert not any(_changed(init, module, "backbone.layer3").values())
    assert not any(_changed(init, module, "backbone.conv1").values())


def test_freeze_none_trains_everything(images):
    clf, init = _fitted_resnet(images, freeze="none")
    assert all(_changed(init, clf.module_, "backbone.conv1").values())


def test_unfreeze_at_epoch_runs_the_two_phase_recipe(images):
    clf, init = _fitted_resnet(images, freeze="backbone", unfreeze_at_epoch=1)
    assert all(_changed(init, clf.module_, "backbone.layer1").values())
    assert all(p.requires_grad for p in clf.module_.parameters())
    # Batch norm kept its pretrained (here initial) statistics after unfreezing.
    assert torch.equal(clf.module_.backbone.bn1.running_mean, torch.zeros(64))
    with pytest.raises(ValueError, match="unfreeze_at_epoch unfreezes layers"):
        CNNClassifier("resnet18", unfreeze_at_epoch=1, **FT).fit(*images)


def test_layer_wise_learning_rates(images):
    X, y = images
    clf = CNNClassifier("resnet18", lr_decay=0.5, **FT).fit(X, y)
    lrs = [g["lr"] for g in clf.net_.optimizer_.param_groups]
    # stem, layer1..layer4, fc: the head at lr, each earlier group halved
    np.testing.assert_allclose(lrs, [1e-2 * 0.5 ** k for k in range(5, -1, -1)])
    onecycle = CNNClassifier("resnet18", lr_decay=0.5,
                             **{**FT, "lr_schedule": "onecycle"}).fit(X, y)
    groups = onecycle.net_.optimizer_.param_groups
    np.testing.assert_allclose([g["max_lr"] for g in groups],
                               [1e-2 * 0.5 ** k for k in range(5, -1, -1)])


def test_grey_images_adapt_the_first_convolution(images, tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pt"
    torch.save(reference.state_dict(), path)
    X, y = images
    clf = CNNClassifier("resnet18", weights=str(path), **FT).fit(X[:, 0], y)
    conv = clf.module_.backbone.conv1
    assert conv.in_channels == 1
    np.testing.assert_allclose(
        CNNClassifier("resnet18", weights=str(path), **{**FT, "max_epochs": 1},
                      freeze="backbone").fit(X[:, 0], y).module_.backbone.conv1.weight
        .detach().numpy(),
        reference.conv1.weight.sum(dim=1, keepdim=True).detach().numpy(), rtol=1e-6)
    # Normalisation from the weights' metadata, averaged for one channel.
    assert clf.module_.normalize.mean.shape == (1, 1, 1, 1)


def test_default_weights_from_the_torch_home_cache(images, tmp_path, monkeypatch):
    weights = torchvision.models.ResNet18_Weights.DEFAULT
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.manual_seed(1)
    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), checkpoints / weights.url.split("/")[-1])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    clf = CNNClassifier("resnet18", weights="DEFAULT", freeze="backbone",
                        **{**FT, "max_epochs": 1}).fit(*images)
    assert torch.equal(clf.module_.backbone.layer1[0].conv1.weight,
                       reference.layer1[0].conv1.weight)
    mean = torch.tensor(weights.transforms().mean).reshape(1, 3, 1, 1)
    assert torch.allclose(clf.module_.normalize.mean, mean)


def test_fine_tuned_regressor_and_pickle(images):
    X, y = images
    reg = CNNRegressor("resnet18", freeze="backbone", **FT).fit(X, y * 1e3)
    assert reg.module_.backbone.fc.out_features == 1
    pred = reg.predict(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(reg)).predict(X), pred)
    clf = CNNClassifier("resnet18", freeze=2, **FT).fit(X, y)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X),
                                  clf.predict_proba(X))


def test_weights_file_for_a_registry_architecture(images, tmp_path):
    X, y = images
    first = CNNClassifier(channels=(8,), **FT).fit(X, y)
    path = tmp_path / "convnet.pt"
    torch.save(first.module_.state_dict(), path)
    again = CNNClassifier(channels=(8,), weights=str(path), freeze="backbone",
                          **{**FT, "max_epochs": 1}).fit(X, y)
    w0 = first.module_.features[0][0].weight
    assert torch.equal(again.module_.features[0][0].weight, w0)
    with pytest.raises(ValueError, match="only torchvision/timm backbones have"):
        CNNClassifier(weights="DEFAULT", **FT).fit(X, y)


def test_unknown_backbone_and_knobs_on_a_backbone(images):
    X, y = images
    # a typed error (a ValueError) that callers can catch by type
    with pytest.raises(UnknownBackboneError,
                       match="Unknown image \\(2-D\\) architecture 'resnet181'"):
        CNNClassifier("resnet181", **FT).fit(X, y)
    with pytest.raises(ValueError, match="is a pretrained backbone; the knobs"):
        CNNClassifier("resnet18", dropout=0.3, **FT).fit(X, y)


# -- layer groups of networks the torchvision families do not cover ----------
# (mutants of _finetune.py that survived the sampled run of 2026-12-02)
def test_a_network_of_single_layers_has_one_group_per_layer():
    from skcnn._finetune import freeze_groups, layer_groups

    module = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                 torch.nn.Linear(4, 8), torch.nn.Linear(8, 3))
    groups = layer_groups(module)
    assert [name for name, _ in groups] == ["0", "3", "4"]  # the head ("4") last
    assert [len(params) for _, params in groups] == [2, 2, 2]
    # freeze's default, 'backbone': only the head trains; 0 means the same.
    assert freeze_groups(module) == ["0", "3"]
    assert [p.requires_grad for p in module.parameters()] == [False] * 4 + [True] * 2
    assert freeze_groups(module, groups, freeze="none") == []
    assert freeze_groups(module, groups, freeze=0) == ["0", "3"]
    assert [p.requires_grad for p in module.parameters()] == [False] * 4 + [True] * 2
    assert freeze_groups(module, groups, freeze=1) == ["0"]


def test_a_tied_parameter_is_in_one_group_only():
    from skcnn._finetune import layer_groups

    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = torch.nn.Sequential(
                torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU()),
                torch.nn.Sequential(torch.nn.Linear(4, 4)))
            self.fc = torch.nn.Linear(4, 4)
            self.fc.weight = self.features[0][0].weight  # tied to the first layer

    module = Tied()
    groups = layer_groups(module)
    # The first group that holds it keeps it (an optimizer refuses a
    # parameter in two groups, and freeze would set it twice).
    assert [(name, len(params)) for name, params in groups] == [
        ("features.0", 2), ("features.1", 2), ("fc", 1)]
    ids = [id(p) for _, params in groups for p in params]
    assert len(ids) == len(set(ids)) == len(list(module.parameters()))


def test_only_frozen_batch_norm_layers_are_put_in_eval_mode():
    from skcnn._finetune import set_frozen_bn_eval

    frozen, trained, plain = (torch.nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4),
                              torch.nn.BatchNorm2d(4, affine=False))
    for p in frozen.parameters():
        p.requires_grad_(False)
    module = torch.nn.Sequential(frozen, trained, plain).train()
    assert set_frozen_bn_eval(module) is module
    # frozen: eval (keeps its running statistics); trained and without
    # affine parameters: left in training mode.
    assert [m.training for m in module] == [False, True, True]


def test_unfreeze_at_epoch_with_nothing_frozen_says_what_to_set():
    from skcnn._finetune import configure, layer_groups

    module = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 3))
    with pytest.raises(ValueError, match=r"unfreeze_at_epoch unfreezes layers frozen by "
                       r"`freeze`; set freeze='backbone' or an int, or unfreeze_at_epoch=None\.$"):
        configure(module, layer_groups(module), freeze="none", unfreeze_at_epoch=2,
                  lr=0.1, lr_decay=1.0)
