"""skcnn's 1-D CNNs on UCR data sets against the published deep-learning results.

Not a test. Trains ``Conv1DClassifier`` (every registered 1-D architecture,
with the estimator's default training recipe) on the archive's default
train/test split of GunPoint, ItalyPowerDemand and ArrowHead, and
``Conv1DRegressor`` on Covid3Month, and prints a Markdown table of the test
accuracy (RMSE for regression, beside the RMSE of predicting the training
mean) and the fit time next to the published FCN, ResNet and InceptionTime
numbers (``REFERENCES.md``: Fawaz et al. 2019, means of 10 runs of 1500-2000
epochs; InceptionTime is an ensemble of 5 networks). Where sktime's PyTorch
``CNNClassifierTorch`` imports, it is trained on the same data in the same
run with its own defaults (2000 epochs).

The data ship inside the ``sktime`` wheel (``pip install sktime``; its UCR
loaders need nothing else)::

    python benchmarks/ucr.py [--threads 2] [--seeds 0 1 2] [--datasets GunPoint]
                             [--archs fcn resnet] [--sktime-epochs 2000]
                             [--no-sktime] [--json results.json]
                             [--params lr=1e-3 batch_size=8]

A fit's time is the wall-clock time of ``fit`` alone; the goal of issue 5 is
an accuracy within 1 point of the published FCN/ResNet in at most 5 minutes
of fit per data set on 2 CPU cores. ``--params`` overrides estimator
parameters (values read as Python literals) to measure other recipes.
"""

import argparse
import ast
import json
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # run from a checkout without installing
    sys.path.insert(1, _ROOT)

from skcnn import Conv1DClassifier, Conv1DRegressor, list_models  # noqa: E402

# Published test accuracy (RMSE for Covid3Month), REFERENCES.md.
PUBLISHED = {
    "GunPoint": {"FCN": 1.000, "ResNet": 0.991, "InceptionTime": 1.000},
    "ItalyPowerDemand": {"FCN": 0.961, "ResNet": 0.963, "InceptionTime": 0.968},
    "ArrowHead": {"FCN": 0.843, "ResNet": 0.845, "InceptionTime": 0.829},
    "Covid3Month": {"FCN": 0.0436, "InceptionTime": 0.0547,
                    "predict-the-mean": 0.0447},
}
# Which published network each architecture reproduces.
PAPER_NAME = {"fcn": "FCN", "resnet": "ResNet", "inceptiontime": "InceptionTime"}
LOADERS = {
    "GunPoint": "load_gunpoint",
    "ItalyPowerDemand": "load_italy_power_demand",
    "ArrowHead": "load_arrow_head",
    "Covid3Month": "load_covid_3month",
}
REGRESSION = {"Covid3Month"}
BUDGET_S = 300  # fit time per data set, all architectures together


def load(name):
    """``(X_train, y_train, X_test, y_test)``; exits with a message without sktime."""
    try:
        from sktime import datasets
    except ImportError:
        sys.exit("benchmarks/ucr.py needs the UCR data sets shipped in the sktime "
                 "wheel: pip install sktime (or run it where sktime is installed).")
    loader = getattr(datasets, LOADERS[name])
    if name in REGRESSION:  # nested DataFrames: skcnn reads them as they are
        X, y = loader(split="train", return_X_y=True)
        Xt, yt = loader(split="test", return_X_y=True)
        return X, np.asarray(y, float), Xt, np.asarray(yt, float)
    kw = dict(return_X_y=True, return_type="numpy3D")
    X, y = loader(split="train", **kw)
    Xt, yt = loader(split="test", **kw)
    return X, y, Xt, yt


def run_skcnn(name, arch, seed, data, params):
    X, y, Xt, yt = data
    cls = Conv1DRegressor if name in REGRESSION else Conv1DClassifier
    est = cls(arch, random_state=seed, **params)
    start = time.perf_counter()
    est.fit(X, y)
    fit_s = time.perf_counter() - start
    return score(name, est.predict(Xt), yt), fit_s, len(est.history_)


def run_sktime(seed, data, epochs):
    from sktime.classification.deep_learning.cnn import CNNClassifierTorch

    X, y, Xt, yt = data
    est = CNNClassifierTorch(num_epochs=epochs, random_state=seed)
    start = time.perf_counter()
    est.fit(X, y)
    fit_s = time.perf_counter() - start
    return float(np.mean(est.predict(Xt) == yt)), fit_s, epochs


def parse_params(items):
    """``['lr=1e-3', 'augment=jitter']`` -> ``{'lr': 0.001, 'augment': 'jitter'}``."""
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--params takes name=value pairs; got {item!r}.")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value  # a bare string such as zscore
    return params


def score(name, pred, y):
    if name in REGRESSION:
        return float(np.sqrt(np.mean((pred - y) ** 2)))
    return float(np.mean(pred == y))


def summary(values):
    if len(values) == 1:
        return f"{values[0]:.4f}" if values[0] < 0.1 else f"{values[0]:.3f}"
    mean, std = statistics.mean(values), statistics.stdev(values)
    digits = 4 if mean < 0.1 else 3
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--datasets", nargs="+", default=list(LOADERS),
                        choices=list(LOADERS))
    parser.add_argument("--archs", nargs="+", default=list_models(ndim=1),
                        choices=list_models(ndim=1))
    parser.add_argument("--sktime-epochs", type=int, default=2000)
    parser.add_argument("--no-sktime", action="store_true")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--params", nargs="+", default=[], metavar="NAME=VALUE",
                        help="estimator parameters instead of the defaults")
    args = parser.parse_args(argv)
    params = parse_params(args.params)
    torch.set_num_threads(args.threads)

    sktime_note = None
    if args.no_sktime:
        sktime_note = "skipped (--no-sktime)"
    else:
        try:
            from sktime.classification.deep_learning.cnn import CNNClassifierTorch  # noqa: F401
        except ImportError as exc:
            sktime_note = f"skipped: CNNClassifierTorch does not import ({exc})"

    print(f"# UCR benchmark: torch {torch.__version__}, {args.threads} threads, "
          f"{platform.processor() or platform.machine()}, seeds {args.seeds}"
          f"{', parameters ' + repr(params) if params else ''}\n")
    results = []
    for name in args.datasets:
        data = load(name)
        regression = name in REGRESSION
        metric = "test RMSE" if regression else "test accuracy"
        rows = []
        total_fit = 0.0
        for arch in args.archs:
            runs = [run_skcnn(name, arch, seed, data, params) for seed in args.seeds]
            scores, times = [r[0] for r in runs], [r[1] for r in runs]
            total_fit += statistics.mean(times)
            published = PUBLISHED[name].get(PAPER_NAME.get(arch))
            rows.append((f"skcnn `{arch}`", scores, times, runs[0][2], published))
            print(f"  {name} {arch}: {summary(scores)} in "
                  f"{statistics.mean(times):.1f} s", file=sys.stderr, flush=True)
        if not regression and sktime_note is None:
            runs = [run_sktime(seed, data, args.sktime_epochs) for seed in args.seeds]
            rows.append(("sktime `CNNClassifierTorch`", [r[0] for r in runs],
                         [r[1] for r in runs], args.sktime_epochs, None))
        if regression:
            mean_rmse = score(name, np.full(len(data[3]), np.mean(data[1])), data[3])
            rows.append(("predict the training mean", [mean_rmse], [0.0], 0,
                         PUBLISHED[name]["predict-the-mean"]))

        print(f"## {name} ({len(data[1])} train / {len(data[3])} test, {metric})\n")
        print(f"| model | {metric} | published | fit (s) | epochs |")
        print("|---|---|---|---|---|")
        for label, scores, times, epochs, published in rows:
            pub = "" if published is None else f"{published:.4g}"
            print(f"| {label} | {summary(scores)} | {pub} | "
                  f"{statistics.mean(times):.1f} | {epochs} |")
            results.append({"dataset": name, "model": label, "scores": scores,
                            "fit_s": times, "epochs": epochs,
                            "published": published})
        others = ", ".join(f"{k} {v:.4g}" for k, v in PUBLISHED[name].items())
        print(f"\nPublished: {others}. skcnn fit time, all architectures: "
              f"{total_fit:.0f} s (budget {BUDGET_S} s).\n")
    if sktime_note:
        print(f"sktime CNNClassifierTorch: {sktime_note}.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "seeds": args.seeds, "params": params,
                       "torch": torch.__version__, "results": results}, f, indent=1)
    return results


if __name__ == "__main__":
    main()
