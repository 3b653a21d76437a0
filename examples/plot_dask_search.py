"""
===================================
A grid search on a Dask cluster
===================================

scikit-learn's searches run their fits through joblib, and joblib sends them
to a Dask cluster inside ``joblib.parallel_config(backend='dask')``. Here a
local cluster of two worker processes (one thread each, on 127.0.0.1) runs
an 8-candidate search over ``lr`` and ``channels`` of a
:class:`skcnn.CNNClassifier` on 600 digits. The same code runs on a real
cluster with ``Client("tcp://scheduler:8786")``. Each fit uses the one
thread its worker was given (``num_threads=None``). About a minute on two
CPU cores, half of it the workers' start-up (``pip install "skcnn[dask]"``)::

    python examples/plot_dask_search.py [PNG path]
"""

# %%
# Data and search
# ---------------
import sys
import time
from pathlib import Path

import joblib
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from distributed import Client, LocalCluster
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split

from skcnn import CNNClassifier

digits = load_digits()
X = (digits.images / 16.0).astype(np.float32)
X_search, X_rest, y_search, y_rest = train_test_split(
    X, digits.target, train_size=600, stratify=digits.target, random_state=0)
param_grid = {"lr": [1e-3, 3e-3, 1e-2, 3e-2], "channels": [(8, 16), (16, 32)]}
search = GridSearchCV(CNNClassifier(max_epochs=5, random_state=0), param_grid, cv=3)

# %%
# The search on a local cluster
# -----------------------------
# The worker processes import skcnn and torch when they start; the
# ``__main__`` guard keeps them from running this script again.
if __name__ == "__main__":
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None)
    client = Client(cluster)
    try:
        start = time.perf_counter()
        with joblib.parallel_config(backend="dask", n_jobs=-1):
            search.fit(X_search, y_search)
        print(f"search on {len(client.scheduler_info()['workers'])} Dask workers: "
              f"{time.perf_counter() - start:.1f} s "
              f"({len(search.cv_results_['params'])} candidates x 3 folds)")
    finally:
        client.close()
        cluster.close()

    # %%
    # The results
    # -----------
    # With ``random_state`` fixed, the scores are those of ``n_jobs=1``.
    scores = search.cv_results_["mean_test_score"]
    labels = [f"lr={p['lr']:g}, channels={p['channels']}"
              for p in search.cv_results_["params"]]
    for label, score in zip(labels, scores):
        print(f"{label:32s} {score:.3f}")
    print("best parameters:", search.best_params_)
    print(f"refitted best model on the {len(X_rest)} other digits: "
          f"{search.score(X_rest, y_rest):.3f}")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.barh(labels[::-1], scores[::-1], color="tab:blue")
    ax.set_xlabel("mean 3-fold CV accuracy")
    ax.set_xlim(0, 1)
    ax.set_title("GridSearchCV on a 2-worker Dask cluster")
    fig.tight_layout()
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("dask_search.png")
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
