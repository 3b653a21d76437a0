"""
=============================================
Class activation maps of an FCN on GunPoint
=============================================

Wang et al. (2017) end their fully convolutional network (FCN) with global
average pooling and one linear layer, and show which parts of a GunPoint
series decided its class with class activation maps (CAM, Zhou et al.
2016): the last feature maps weighted by the linear layer's weights for
the class. :func:`skcnn.inspection.grad_cam` computes them for any network;
for this architecture Grad-CAM *is* the CAM, up to a positive factor. The
example also compares them with occlusion and integrated gradients. Run
it with::

    pip install sktime captum
    python examples/plot_fcn_cam.py [PNG path]

It prints the test accuracy and writes ``fcn_cam.png`` (or the path given).
"""

# %%
# Training the FCN
# ----------------
# GunPoint ships in the sktime wheel: the x-coordinate of a hand drawing a
# replica gun from a holster and pointing it (class 1), or pointing a
# finger (class 2), 150 time steps. A narrower FCN than the paper's
# (32, 64 and 32 filters instead of 128, 256 and 128) and 30 epochs keep
# the example short.
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np

try:
    import captum  # noqa: F401
    from sktime.datasets import load_gunpoint
except ImportError as exc:
    sys.exit(f"This example needs {exc.name}: pip install sktime captum")

from skcnn import Conv1DClassifier
from skcnn.inspection import activations, grad_cam
from skcnn.plotting import AttributionDisplay

start = time.perf_counter()
X_train, y_train = load_gunpoint(split="train", return_X_y=True,
                                 return_type="numpy3D")
X_test, y_test = load_gunpoint(split="test", return_X_y=True,
                               return_type="numpy3D")
clf = Conv1DClassifier("fcn", channels=(32, 64, 32), max_epochs=30,
                       random_state=0).fit(X_train, y_train)
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")

# %%
# Grad-CAM is the CAM here
# ------------------------
# The CAM of class c at time t is sum_k w_k^c A_k(t), with A_k the maps of
# the last block (``'blocks.2'``, found by ``grad_cam`` itself) and w^c the
# linear layer's row for c. Without the ReLU, Grad-CAM gives it divided by
# the length of the series.
sample = X_test[:4]
cam = grad_cam(clf, sample, relu=False)
maps = activations(clf, sample, "blocks.2")
rows = np.searchsorted(clf.classes_, clf.predict(sample))
weights = clf.module_.fc.weight.detach().numpy()[rows]
by_hand = np.einsum("nk,nkt->nt", weights, maps) / sample.shape[-1]
print(f"largest difference to the hand-computed CAM: {np.abs(cam - by_hand).max():.1e}")

# %%
# The maps
# --------
# Two test series of each class; each point of a series is coloured by its
# attribution to the predicted class (blue low, red high). The three
# methods need not agree: Grad-CAM and occlusion measure different things
# (evidence in the last feature maps; the output's drop when a window of
# the series is replaced by zeros), and integrated gradients is signed.
picked = np.r_[np.flatnonzero(y_test == "1")[:2], np.flatnonzero(y_test == "2")[:2]]
display = AttributionDisplay.from_estimator(
    clf, X_test[picked], methods=("grad_cam", "occlusion", "integrated_gradients"))
display.figure_.set_size_inches(12, 8)
display.figure_.tight_layout()
out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("fcn_cam.png")
display.figure_.savefig(out, dpi=100)
print(f"wrote {out} in {time.perf_counter() - start:.0f} s")
