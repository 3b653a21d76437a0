"""
===========================================
Time-series classification on UCR GunPoint
===========================================

A :class:`skcnn.Conv1DClassifier` with the ``'resnet'`` architecture of
Wang et al. (2017) learns GunPoint, a data set of the UCR archive that
ships inside the ``sktime`` wheel: the x-coordinate of an actor's hand
drawing a replica gun from a holster and pointing it (class 1), or only
pointing a finger (class 2). Run it with::

    python examples/plot_timeseries_classification.py [PNG path]

It prints the test accuracy and the fit time and writes
``gunpoint_classification.png`` (or the path given): a few series of each
class and the learning curve.
"""

# %%
# The data
# --------
# sktime returns the series as ``numpy3D``, shape ``(n, channels, length)``,
# which skcnn takes as it is (so are sktime's nested DataFrames, wide
# DataFrames and lists of series of unequal length). The UCR series are
# already z-normalised; for raw signals pass ``normalize='zscore'``.
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

try:
    from sktime.datasets import load_gunpoint
except ImportError:
    sys.exit("This example needs the UCR data in the sktime wheel: pip install sktime")

from skcnn import Conv1DClassifier

X_train, y_train = load_gunpoint(split="train", return_X_y=True,
                                 return_type="numpy3D")
X_test, y_test = load_gunpoint(split="test", return_X_y=True,
                               return_type="numpy3D")
print(f"train {X_train.shape}, test {X_test.shape}, classes {np.unique(y_train)}")

# %%
# Training
# --------
# The ResNet of Wang et al. (three residual blocks, global average pooling)
# with the 1-D classifier's training recipe: Adam on batches of 8 with a
# one-cycle learning-rate schedule peaking at 1e-3. The papers train it
# for 1500 epochs; 40 epochs are enough here to show the learning curve in
# well under a minute on a laptop CPU (the defaults train longer: see
# ``benchmarks/ucr.py``).
clf = Conv1DClassifier("resnet", max_epochs=40, random_state=0)
start = time.perf_counter()
clf.fit(X_train, y_train)
fit_time = time.perf_counter() - start

accuracy = clf.score(X_test, y_test)
print(f"test accuracy: {accuracy:.4f} (published ResNet: 0.991)")
print(f"fit time: {fit_time:.1f} s ({len(clf.history_)} epochs, "
      f"{torch.get_num_threads()} torch threads)")

# %%
# A few series per class, and the learning curve
# -----------------------------------------------
fig, (ax_series, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.5))
colors = dict(zip(clf.classes_, ["tab:blue", "tab:orange"]))
for label in clf.classes_:
    for i, series in enumerate(X_train[y_train == label][:4, 0]):
        ax_series.plot(series, color=colors[label], lw=1, alpha=0.8,
                       label=f"class {label}" if i == 0 else None)
ax_series.set_xlabel("time step")
ax_series.set_ylabel("hand x-coordinate (z-normalised)")
ax_series.set_title("GunPoint: four training series per class")
ax_series.legend()

ax_loss.plot(clf.history_[:, "epoch"], clf.history_[:, "train_loss"], "o-", ms=3)
ax_loss.set_yscale("log")
ax_loss.set_xlabel("epoch")
ax_loss.set_ylabel("training cross-entropy (log scale)")
ax_loss.set_title(f"Learning curve; test accuracy {accuracy:.3f}")
fig.tight_layout()

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("gunpoint_classification.png")
fig.savefig(out, dpi=120)
print(f"wrote {out}")
