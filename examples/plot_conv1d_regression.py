"""
=================================================
Regression on spectra: fat content from NIR light
=================================================

A :class:`skcnn.Conv1DRegressor` estimates the fat content of meat from its
near-infrared absorbance spectrum (Tecator: 100 wavelengths from 850 to
1050 nm, 172 training and 43 test samples; the data set ships inside the
``sktime`` wheel). It is compared with predicting the mean and with a
ridge regression on the raw absorbances. Run it with::

    python examples/plot_conv1d_regression.py [PNG path]

It prints the three test errors and writes ``conv1d_regression.png`` (or
the path given).
"""

# %%
# The data
# --------
# The fat content is given in percent; we express it in mg/kg (values from
# 9,000 to 491,000) to show that the regressors do not care about the
# targets' scale: they standardise them internally and predict in the
# units of ``y``.
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import RidgeCV
from sklearn.metrics import mean_squared_error, r2_score

try:
    from sktime.datasets import load_tecator
except ImportError:
    sys.exit("This example needs the Tecator data in the sktime wheel: pip install sktime")

from skcnn import Conv1DRegressor

torch.set_num_threads(1)  # small networks: see plot_digits_classification.py


def load(split):
    X, fat_percent = load_tecator(split=split, return_X_y=True,
                                  return_type="numpy3D")
    return X[:, 0], fat_percent.astype(float) * 1e4  # (n, 100) spectra, mg/kg


X_train, y_train = load("train")
X_test, y_test = load("test")
wavelengths = np.linspace(850, 1050, X_train.shape[1])
print(f"train {X_train.shape}, test {X_test.shape}, "
      f"fat {y_train.min():,.0f} to {y_train.max():,.0f} mg/kg")

# %%
# Three models
# ------------
# The spectra differ mostly by a baseline shift and scale (the sample's
# thickness and scattering); the fat shows in their shape. The regressor's
# default ``normalize='auto'`` (``'zscore+scale'``) standardises each
# spectrum on its own, at fit and predict time alike, and gives the network
# each spectrum's level and amplitude beside its shape. The rest is the
# default too: the ``'convnet'`` pyramid, Adam on batches of 16, a
# one-cycle schedule.
models = {
    "mean": DummyRegressor(),
    "RidgeCV": RidgeCV(alphas=np.logspace(-10, 3, 27)),
    "Conv1DRegressor": Conv1DRegressor(random_state=0),
}
predictions = {}
for name, model in models.items():
    start = time.perf_counter()
    model.fit(X_train, y_train)
    predictions[name] = model.predict(X_test)
    rmse = mean_squared_error(y_test, predictions[name]) ** 0.5
    print(f"{name:>16}: RMSE {rmse:8,.0f} mg/kg ({rmse / 1e4:.2f} % fat), "
          f"R2 {r2_score(y_test, predictions[name]):6.3f}, "
          f"fit {time.perf_counter() - start:5.1f} s")

# %%
# Predicted against true fat content
# ----------------------------------
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4))
order = np.argsort(y_train)
colors = plt.cm.viridis(np.linspace(0, 1, len(order)))
for i, c in zip(order[::6], colors[::6]):
    ax0.plot(wavelengths, X_train[i], color=c, lw=0.8)
ax0.set_xlabel("wavelength (nm)")
ax0.set_ylabel("absorbance")
ax0.set_title("training spectra, coloured by fat (yellow: fattest)")

lims = [0, 1.05 * y_test.max()]
ax1.plot(lims, lims, "k--", lw=1)
for name, marker in [("RidgeCV", "s"), ("Conv1DRegressor", "o")]:
    rmse = mean_squared_error(y_test, predictions[name]) ** 0.5
    ax1.scatter(y_test, predictions[name], marker=marker, s=20, alpha=0.8,
                label=f"{name} (RMSE {rmse:,.0f})")
ax1.set_xlim(lims)
ax1.set_ylim(lims)
ax1.set_xlabel("true fat (mg/kg)")
ax1.set_ylabel("predicted fat (mg/kg)")
ax1.set_title("test set")
ax1.legend()
fig.tight_layout()

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("conv1d_regression.png")
fig.savefig(out, dpi=120)
print(f"wrote {out}")
