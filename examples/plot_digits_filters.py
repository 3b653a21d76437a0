"""
==============================================
What the first layer of a digits CNN learned
==============================================

The first convolution of a network trained on images learns small local
detectors: edges, bars and blobs. This example trains a
:class:`skcnn.CNNClassifier` on scikit-learn's 8x8 digits, prints its
:func:`skcnn.summary`, and shows the 3 x 3 filters of its first layer
(:class:`~skcnn.plotting.FiltersDisplay`), the feature maps they produce on
one digit (:func:`skcnn.inspection.activations`), and the training history
(:class:`~skcnn.plotting.HistoryDisplay`). Run it with::

    python examples/plot_digits_filters.py [PNG path]

It writes ``digits_filters.png`` (or the path given).
"""

# %%
# Training, and the summary of the network
# ----------------------------------------
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skcnn import CNNClassifier, summary
from skcnn.inspection import activations
from skcnn.plotting import FiltersDisplay, HistoryDisplay

start = time.perf_counter()
digits = load_digits()
X = (digits.images / 16.0).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(
    X, digits.target, test_size=0.25, stratify=digits.target, random_state=0)
clf = CNNClassifier(channels=(16, 32), max_epochs=15, early_stopping=True,
                    patience=20, random_state=0).fit(X_train, y_train)
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")
print(summary(clf))

# %%
# Filters, feature maps, history
# ------------------------------
# Top: the 16 filters of the first convolution (red positive, blue
# negative). Middle: a test digit and what eight of those filters make of
# it (after batch norm and ReLU). Bottom: loss, validation accuracy and the
# one-cycle learning rate per epoch.
fig = plt.figure(figsize=(10, 9))
grid = fig.add_gridspec(3, 1, height_ratios=[1.1, 1, 1.2])
top = grid[0].subgridspec(2, 8)
FiltersDisplay.from_estimator(
    clf, ax=[fig.add_subplot(top[r, c]) for r in range(2) for c in range(8)])

digit = X_test[:1]
maps = activations(clf, digit, "features.0")[0]  # (16, 8, 8): the first block
middle = grid[1].subgridspec(1, 9)
ax = fig.add_subplot(middle[0])
ax.imshow(digit[0], cmap="gray_r")
ax.set_title(f"digit {y_test[0]}", fontsize=9)
for i in range(8):
    ax = fig.add_subplot(middle[i + 1])
    ax.imshow(maps[i], cmap="viridis")
    ax.set_title(f"map {i}", fontsize=9)
for ax in fig.axes:
    ax.set_xticks([])
    ax.set_yticks([])

bottom = grid[2].subgridspec(1, 3)
HistoryDisplay.from_estimator(clf, ax=[fig.add_subplot(bottom[i]) for i in range(3)])
fig.tight_layout()
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("digits_filters.png")
fig.savefig(out, dpi=100)
print(f"wrote {out} in {time.perf_counter() - start:.0f} s")
