"""predict_proba of CNNClassifier on 100 000 images against a raw inference loop.

Both contenders run the same fitted module (the estimator's, in eval mode)
over the same 100 000 x 1 x 28 x 28 float32 images in batches of 256 (the
estimator's prediction batch size) and write the class probabilities into
one preallocated array. The parent checks that the probabilities agree,
then prints the ratio of the median times (skcnn / torch) and the peak RSS.

    python benchmarks/bench_predict.py [--reps 3] [--threads 1]
"""

import numpy as np
import torch

from _harness import Case, main  # puts the checkout on sys.path
from skcnn import CNNClassifier

N = 100_000
BATCH = 256  # what CNNClassifier predicts with: max(batch_size, 256)


def setup():
    rng = np.random.default_rng(0)
    X = rng.random((N, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, N)
    est = CNNClassifier(max_epochs=1, lr_schedule=None, random_state=0,
                        device="cpu").fit(X[:512], y[:512])
    return {"X": X, "est": est, "nbytes": X.nbytes}


def ours(d):
    return d["est"].predict_proba(d["X"])


def raw(d):
    """The baseline: slices of one tensor through the module, no autograd."""
    module = d["est"].module_
    module.eval()
    X = torch.from_numpy(d["X"]).unsqueeze(1)
    out = np.empty((len(X), 10), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(X), BATCH):
            logits = module(X[start:start + BATCH])
            out[start:start + BATCH] = torch.softmax(logits, 1).numpy()
    return out


CASES = {
    "predict_proba": Case(setup, {"skcnn": ours, "torch": raw}, rtol=1e-5, atol=1e-6,
                          note=f"CNNClassifier.predict_proba, {N} x 1 x 28 x 28, "
                               f"batches of {BATCH}"),
}

if __name__ == "__main__":
    main(CASES, "predict_proba: skcnn vs a raw torch.inference_mode loop")
