"""
=========================================
Classifying handwritten digits with a CNN
=========================================

A default :class:`skcnn.CNNClassifier` trained on scikit-learn's 8x8 digits,
with the learning curve it records. This is the script that
``python3 dev.py demo`` runs::

    python examples/plot_digits_classification.py [PNG path]

It prints the test accuracy and the fit time and writes
``digits_learning_curve.png`` (or the path given).
"""

# %%
# The data
# --------
# 1797 grey-level images of 8x8 pixels with values 0..16. We scale them to
# [0, 1] and give them their image shape ``(n, 8, 8)``: one channel.
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch.callbacks import Callback

from skcnn import CNNClassifier

digits = load_digits()
X = (digits.images / 16.0).astype(np.float32)  # (1797, 8, 8)
y = digits.target
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0)
print(f"train {X_train.shape}, test {X_test.shape}")


# %%
# Watching the held-out set during training
# -----------------------------------------
# The estimator records the training loss of every epoch in ``history_``.
# To draw a held-out curve without training a second model, this small skorch
# callback also records the test accuracy after each epoch. It only observes:
# nothing is selected or stopped on the test set.
class TestAccuracy(Callback):
    def __init__(self, X, y):
        self.X = X
        self.y = y

    def on_epoch_end(self, net, **kwargs):
        module = net.module_
        module.eval()
        with torch.no_grad():
            # The network sees (n, channels, height, width).
            logits = module(torch.as_tensor(self.X[:, None], device=net.device))
        module.train()
        pred = logits.argmax(1).cpu().numpy()  # labels 0..9 are their own codes
        net.history.record("test_acc", float(np.mean(pred == self.y)))


# %%
# Training
# --------
# All defaults: the ``'convnet'`` architecture (two conv-BN-ReLU-pool blocks
# and a dense head), Adam with a one-cycle learning-rate schedule, 30 epochs.
#
# One torch thread: a network this small gains little from several threads,
# and on a busy machine (CI, a shared server) torch's default of one thread per
# core can make it ten times slower or worse. Results do not depend on it.
torch.set_num_threads(1)
clf = CNNClassifier(random_state=0,
                    callbacks=[("test_acc", TestAccuracy(X_test, y_test))])
start = time.perf_counter()
clf.fit(X_train, y_train)
fit_time = time.perf_counter() - start

accuracy = clf.score(X_test, y_test)
print(f"test accuracy: {accuracy:.4f}")
print(f"fit time: {fit_time:.1f} s ({len(clf.history_)} epochs, "
      f"{torch.get_num_threads()} torch threads)")

# %%
# The learning curve
# ------------------
epochs = clf.history_[:, "epoch"]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(epochs, clf.history_[:, "train_loss"], "o-", ms=3, label="train loss")
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("cross-entropy (log scale)")
ax2 = ax.twinx()
ax2.plot(epochs, clf.history_[:, "test_acc"], "s-", ms=3, color="tab:orange",
         label="test accuracy")
ax2.set_ylabel("test accuracy")
ax2.set_ylim(0.8, 1.0)
lines = ax.get_lines() + ax2.get_lines()
ax.legend(lines, [line.get_label() for line in lines], loc="center right")
ax.set_title(f"CNNClassifier on digits: test accuracy {accuracy:.3f}")
fig.tight_layout()

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("digits_learning_curve.png")
fig.savefig(out, dpi=120)
print(f"wrote {out}")
