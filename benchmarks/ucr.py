"""skcnn's 1-D estimators with their defaults across every UCR/UEA set shipped on PyPI.

Not a test. Trains ``Conv1DClassifier(random_state=seed)`` and
``Conv1DRegressor(random_state=seed)`` (their defaults, unless ``--params``
or ``--archs`` say otherwise) on the archive's default train/test split of
every classification and regression set that ships inside the ``sktime``
and ``aeon`` wheels, and in the same run the strongest peers:

- MiniRocket (sktime's ``MiniRocketMultivariate``, or
  ``MiniRocketMultivariateVariable`` for unequal lengths) followed by a
  ridge classifier (regressor) with cross-validated penalty, the accuracy
  time-series users compare against;
- for regression, predicting the training mean and a ridge regression on
  the standardised values (``RidgeCV``; equal-length sets);
- with ``--peers sktime-cnn``, sktime's PyTorch ``CNNClassifierTorch`` (its
  defaults);
- with ``--peers sktime-fcn sktime-resnet sktime-inceptiontime``, sktime's
  PyTorch ports of the three published networks (``FCNClassifierTorch``,
  ``ResNetClassifierTorch``, ``InceptionTimeClassifierTorch`` and their
  regressors; equal-length sets only, as sktime accepts no other), with
  the batch sizes of their papers (16, 64, 64) and sktime's other
  defaults, for as many epochs as skcnn's ``max_epochs='auto'`` gives the
  set (``--peer-epochs N`` for another count; their papers ran 2000, 1500
  and 1500, hours a set on two CPU cores).

It prints, per data set, test accuracy (RMSE for regression), the published
FCN, ResNet, InceptionTime and MiniRocket figures (``REFERENCES.md``) and fit
times, then a summary: the largest shortfall against the published FCN and
ResNet, mean rank, and wins/ties/losses against the published FCN, ResNet
and InceptionTime (a tie: the same accuracy to 3 decimals).

Data: sktime's wheel holds ACSF1, ArrowHead, BasicMotions, GunPoint,
ItalyPowerDemand, JapaneseVowels, OSULeaf, PLAID, Covid3Month and Tecator;
aeon's adds PickupGestureWiimoteZ and CardanoSentiment. Sets found in
neither are reported as missing. aeon need not be installed: point
``--data-dir`` at the ``aeon/datasets/data`` folder of its unpacked wheel
(``pip download aeon --no-deps`` then ``unzip``)::

    python benchmarks/ucr.py [--threads 2] [--seeds 0 1 2] [--datasets GunPoint]
                             [--archs [fcn resnet]] [--params lr=1e-3 batch_size=8]
                             [--peers minirocket sktime-cnn sktime-fcn ...]
                             [--peer-epochs N] [--data-dir DIR]
                             [--json results.json]

A fit's time is the wall-clock time of ``fit`` alone. Goal (issue 12): the
defaults within 2 accuracy points of the published FCN/ResNet on every
classification set, below the mean's and ridge's RMSE on every regression
set, each fit within 5 minutes on 2 CPU cores.
"""

import argparse
import ast
import functools
import importlib
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import torch

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # run from a checkout without installing
    sys.path.insert(1, _ROOT)

from skcnn import Conv1DClassifier, Conv1DRegressor, list_models  # noqa: E402

# Published test accuracy (RMSE for regression), REFERENCES.md: FCN and
# ResNet from Fawaz et al. (dl-4-tsc), InceptionTime and MiniRocket from the
# 2024 bake-off of Middlehurst et al. (fold 0 = the default split).
PUBLISHED = {
    "ACSF1": {"FCN": 0.898, "ResNet": 0.916, "InceptionTime": 0.910,
              "MiniRocket": 0.910},
    "ArrowHead": {"FCN": 0.843, "ResNet": 0.845, "InceptionTime": 0.863,
                  "MiniRocket": 0.863},
    "BasicMotions": {"ResNet": 1.000},
    "GunPoint": {"FCN": 1.000, "ResNet": 0.991, "InceptionTime": 1.000,
                 "MiniRocket": 0.993},
    "ItalyPowerDemand": {"FCN": 0.961, "ResNet": 0.963, "InceptionTime": 0.966,
                         "MiniRocket": 0.963},
    "JapaneseVowels": {"FCN": 0.993, "ResNet": 0.992},
    "OSULeaf": {"FCN": 0.979, "ResNet": 0.980, "InceptionTime": 0.922,
                "MiniRocket": 0.959},
    "PickupGestureWiimoteZ": {"FCN": 0.744, "ResNet": 0.704},
    "PLAID": {"FCN": 0.904, "ResNet": 0.940},
    "Covid3Month": {"FCN": 0.0436, "InceptionTime": 0.0547, "ROCKET": 0.0389},
    "CardanoSentiment": {"FCN": 0.302, "ResNet": 0.342, "ROCKET": 0.298},
    "Tecator": {},
}
REGRESSION = ("Covid3Month", "CardanoSentiment", "Tecator")
CLASSIFICATION = tuple(name for name in PUBLISHED if name not in REGRESSION)
BUDGET_S = 300  # fit time per data set and model


def _data_dirs(extra):
    """Folders holding ``<name>/<name>_TRAIN.ts``: given ones, aeon's, sktime's."""
    dirs = list(extra)
    for package in ("aeon", "sktime"):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            dirs.append(os.path.join(spec.submodule_search_locations[0],
                                     "datasets", "data"))
    return dirs


def load(name, dirs):
    """``(X_train, y_train, X_test, y_test)`` or None when the files are absent.

    Equal-length sets come as ``(n, C, L)`` arrays, unequal-length ones as
    lists of ``(C, L_i)`` arrays (aeon's ``np-list``), read with sktime's
    ``.ts`` reader.
    """
    paths = [os.path.join(d, name, f"{name}_{split}.ts")
             for d in dirs for split in ("TRAIN", "TEST")]
    found = [(paths[i], paths[i + 1]) for i in range(0, len(paths), 2)
             if os.path.exists(paths[i]) and os.path.exists(paths[i + 1])]
    if not found:
        return None
    try:
        from sktime.datasets import load_from_tsfile
    except ImportError:
        sys.exit("benchmarks/ucr.py reads the .ts files with sktime: "
                 "pip install 'skcnn[timeseries]'.")
    out = []
    for path in found[0]:
        X, y = load_from_tsfile(path, return_data_type="nested_univ")
        series = [np.stack([np.asarray(X.iloc[i, c], dtype=np.float32)
                            for c in range(X.shape[1])]) for i in range(len(X))]
        if len({s.shape for s in series}) == 1:
            series = np.stack(series)
        y = np.asarray(y, dtype=float) if name in REGRESSION else np.asarray(y)
        out += [series, y]
    return tuple(out)


def _timed(fit, predict):
    start = time.perf_counter()
    fit()
    fit_s = time.perf_counter() - start
    return predict(), fit_s


def run_skcnn(name, data, seed, arch, params):
    X, y, Xt, yt = data
    cls = Conv1DRegressor if name in REGRESSION else Conv1DClassifier
    kwargs = dict(params, random_state=seed)
    if arch is not None:
        kwargs["architecture"] = arch
    est = cls(**kwargs)
    pred, fit_s = _timed(lambda: est.fit(X, y), lambda: est.predict(Xt))
    return {"score": score(name, pred, yt), "fit_s": fit_s,
            "epochs": len(est.history_), "max_epochs": est.max_epochs_}


def _to_nested(X):
    import pandas as pd

    return pd.DataFrame({c: [pd.Series(s[c]) for s in X] for c in range(X[0].shape[0])})


def run_minirocket(name, data, seed):
    """MiniRocket + ridge with a cross-validated penalty, as its authors run it."""
    from sklearn.linear_model import RidgeClassifierCV, RidgeCV
    from sklearn.preprocessing import StandardScaler
    from sktime.transformations.panel import rocket

    X, y, Xt, yt = data
    if isinstance(X, np.ndarray):
        transform = rocket.MiniRocketMultivariate(random_state=seed)
    else:  # unequal lengths: the variable-length version, on nested frames
        transform = rocket.MiniRocketMultivariateVariable(
            random_state=seed, pad_value_short_series=0.0)
        X, Xt = _to_nested(X), _to_nested(Xt)
    alphas = np.logspace(-3, 3, 10)
    head = (RidgeCV(alphas=alphas) if name in REGRESSION
            else RidgeClassifierCV(alphas=alphas))
    scaler = StandardScaler(with_mean=False)

    # The steps by hand: scikit-learn's Pipeline (>= 1.9) sets attributes
    # on its steps that sktime's transformers refuse.
    def fit():
        head.fit(scaler.fit_transform(transform.fit_transform(X)), y)

    def predict():
        return head.predict(scaler.transform(transform.transform(Xt)))

    pred, fit_s = _timed(fit, predict)
    return {"score": score(name, pred, yt), "fit_s": fit_s}


def run_sktime_cnn(name, data, seed):
    from sktime.classification.deep_learning.cnn import CNNClassifierTorch

    X, y, Xt, yt = data
    if name in REGRESSION or not isinstance(X, np.ndarray):
        return {"skipped": "classifies equal-length series only"}
    est = CNNClassifierTorch(random_state=seed)
    pred, fit_s = _timed(lambda: est.fit(X, y), lambda: est.predict(Xt))
    return {"score": score(name, pred, yt), "fit_s": fit_s}


# sktime's PyTorch ports of the published networks: (module, class stem,
# the batch size of the paper: Fawaz et al. 2019 for FCN and ResNet,
# Ismail Fawaz et al. 2020 for InceptionTime).
SKTIME_DEEP = {
    "sktime-fcn": ("fcn", "FCN", 16),
    "sktime-resnet": ("resnet", "ResNet", 64),
    "sktime-inceptiontime": ("inceptiontime", "InceptionTime", 64),
}


def run_sktime_deep(key, epochs, name, data, seed):
    """sktime's PyTorch FCN, ResNet or InceptionTime for ``epochs`` epochs."""
    module, stem, batch_size = SKTIME_DEEP[key]
    X, y, Xt, yt = data
    if not isinstance(X, np.ndarray):
        return {"skipped": "takes equal-length series only"}
    task = "regression" if name in REGRESSION else "classification"
    kind = "Regressor" if name in REGRESSION else "Classifier"
    mod = importlib.import_module(f"sktime.{task}.deep_learning.{module}")
    cls = getattr(mod, f"{stem}{kind}Torch")
    est = cls(num_epochs=epochs, batch_size=min(batch_size, len(X)),
              random_state=seed)
    pred, fit_s = _timed(lambda: est.fit(X, y), lambda: est.predict(Xt))
    return {"score": score(name, pred, yt), "fit_s": fit_s}


def skcnn_epochs(name, data):
    """The epochs of skcnn's ``max_epochs='auto'`` (defaults) for this set."""
    from skcnn._signal import AUTO_EPOCHS, _padded_length, auto_max_epochs

    X, y, _, _ = data
    regression = name in REGRESSION
    est = Conv1DRegressor() if regression else Conv1DClassifier()
    if isinstance(X, np.ndarray):
        length = X.shape[-1]
    else:
        from skcnn._sequences import to_padded

        X3, lengths = to_padded(X)
        length = _padded_length(X3, lengths, est.batch_size)
    steps = AUTO_EPOCHS["regressor_steps" if regression else "steps"]
    return auto_max_epochs(len(y), est.batch_size, length, steps=steps)


def _in_child(run, name, data, seed, threads):
    torch.set_num_threads(threads)
    os.environ["NUMBA_NUM_THREADS"] = str(threads)
    return run(name, data, seed)


def _isolated(run, name, data, seed, threads):
    """``run(name, data, seed)`` in a fresh process.

    The peers' numba thread pools slow down every later torch fit of the
    same process (30x measured on JapaneseVowels after MiniRocket), so
    they run apart, with as many threads as skcnn.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        return pool.submit(_in_child, run, name, data, seed, threads).result()


def run_baselines(name, data):
    """Predicting the training mean, and ridge regression on the standardised values."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y, Xt, yt = data
    rows = {"predict the training mean": {
        "score": score(name, np.full(len(yt), y.mean()), yt), "fit_s": 0.0}}
    if isinstance(X, np.ndarray):
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 5, 17)))
        flat, flat_t = X.reshape(len(X), -1), Xt.reshape(len(Xt), -1)
        pred, fit_s = _timed(lambda: model.fit(flat, y), lambda: model.predict(flat_t))
        rows["ridge regression (standardised values, RidgeCV)"] = {
            "score": score(name, pred, yt), "fit_s": fit_s}
    return rows


def score(name, pred, y):
    if name in REGRESSION:
        return float(np.sqrt(np.mean((np.asarray(pred, float) - y) ** 2)))
    return float(np.mean(np.asarray(pred) == y))


def parse_params(items):
    """``['lr=1e-3', 'normalize=zscore']`` -> ``{'lr': 0.001, 'normalize': 'zscore'}``."""
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


def fmt(values):
    mean = statistics.mean(values)
    digits = 4 if mean < 0.1 else 3
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def describe(data):
    X, y, Xt, _ = data
    if isinstance(X, np.ndarray):
        shape = f"{X.shape[1]} ch, length {X.shape[2]}"
    else:
        lengths = [s.shape[-1] for s in X]
        shape = f"{X[0].shape[0]} ch, length {min(lengths)}-{max(lengths)}"
    return f"{len(y)} train / {len(Xt)} test, {shape}"


def summarise(results, label):
    """Shortfalls, mean rank and W/T/L of ``label`` against the published figures."""
    lines = []
    wtl = {paper: [0, 0, 0] for paper in ("FCN", "ResNet", "InceptionTime")}
    ranks, shortfalls = [], []
    for name, rows in results.items():
        if name in REGRESSION or label not in rows:
            continue
        ours = round(statistics.mean(rows[label]), 3)
        published = PUBLISHED[name]
        for paper in wtl:
            if paper in published:
                theirs = round(published[paper], 3)
                wtl[paper][0 if ours > theirs else 1 if ours == theirs else 2] += 1
        best = max((published[p] for p in ("FCN", "ResNet") if p in published),
                   default=None)
        if best is not None:
            shortfalls.append((round(100 * (best - ours), 1), name))
        field = [ours] + [round(v, 3) for k, v in published.items()
                          if k in ("FCN", "ResNet", "InceptionTime", "MiniRocket")]
        ranks.append(1 + sum(v > ours for v in field) + 0.5 * (
            sum(v == ours for v in field) - 1))
    if ranks:
        lines.append(f"- {label}: mean rank {statistics.mean(ranks):.2f} among "
                     f"itself and the published FCN, ResNet, InceptionTime and "
                     f"MiniRocket figures of each set ({len(ranks)} sets).")
        lines.append("- Wins/ties/losses against the published: " + "; ".join(
            f"{paper} {w}/{t}/{lo}" for paper, (w, t, lo) in wtl.items()) + ".")
        worst = sorted(shortfalls, reverse=True)
        lines.append("- Points below the better of the published FCN and ResNet: "
                     + ", ".join(f"{name} {gap:+.1f}" for gap, name in worst) + ".")
    return lines


def _positive_int(text):
    """``argparse`` type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=_positive_int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--datasets", nargs="+", default=list(PUBLISHED),
                        choices=list(PUBLISHED))
    parser.add_argument("--archs", nargs="*", default=[None],
                        choices=list_models(ndim=1),
                        help="architectures to run (default: the estimator's; "
                             "none given: the peers alone)")
    parser.add_argument("--params", nargs="+", default=[], metavar="NAME=VALUE",
                        help="estimator parameters instead of the defaults")
    parser.add_argument("--peers", nargs="*", default=["minirocket"],
                        choices=["minirocket", "sktime-cnn", *SKTIME_DEEP])
    parser.add_argument("--peer-epochs", type=_positive_int, default=None,
                        help="epochs of sktime's FCN/ResNet/InceptionTime "
                             "(default: skcnn's max_epochs='auto' for the set)")
    parser.add_argument("--data-dir", action="append", default=[],
                        help="a folder holding <name>/<name>_TRAIN.ts (repeatable)")
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args(argv)
    params = parse_params(args.params)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module="sktime")
    dirs = _data_dirs(args.data_dir)

    print(f"# UCR/UEA benchmark: torch {torch.__version__}, {args.threads} "
          f"threads, {platform.processor() or platform.machine()}, seeds "
          f"{args.seeds}{', parameters ' + repr(params) if params else ''}\n")
    results, raw, missing = {}, [], []
    for name in args.datasets:
        data = load(name, dirs)
        if data is None:
            missing.append(name)
            continue
        regression = name in REGRESSION
        metric = "test RMSE" if regression else "test accuracy"
        rows, times, extra = {}, {}, {}
        for arch in args.archs:
            label = "skcnn defaults" if arch is None else f"skcnn `{arch}`"
            runs = [run_skcnn(name, data, seed, arch, params) for seed in args.seeds]
            rows[label] = [r["score"] for r in runs]
            times[label] = [r["fit_s"] for r in runs]
            extra[label] = f"{runs[0]['max_epochs']} epochs"
            print(f"  {name} {label}: {fmt(rows[label])} in "
                  f"{statistics.mean(times[label]):.1f} s", file=sys.stderr, flush=True)
        peers = {"minirocket": ("MiniRocket + ridge (sktime)", run_minirocket),
                 "sktime-cnn": ("sktime `CNNClassifierTorch`", run_sktime_cnn)}
        for key in args.peers:
            if key in SKTIME_DEEP:
                epochs = (skcnn_epochs(name, data) if args.peer_epochs is None
                          else args.peer_epochs)
                stem = SKTIME_DEEP[key][1]
                label = f"sktime `{stem}{'Regressor' if regression else 'Classifier'}Torch`"
                run = functools.partial(run_sktime_deep, key, epochs)
                extra[label] = f"{epochs} epochs, batch {SKTIME_DEEP[key][2]}"
            else:
                label, run = peers[key]
            try:
                runs = [_isolated(run, name, data, seed, args.threads)
                        for seed in args.seeds]
            except ImportError as exc:
                extra[label] = f"skipped: {exc}"
                runs = []
            if runs and "skipped" in runs[0]:
                extra[label] = f"skipped: {runs[0]['skipped']}"
            elif runs:
                rows[label] = [r["score"] for r in runs]
                times[label] = [r["fit_s"] for r in runs]
        if regression:
            for label, r in run_baselines(name, data).items():
                rows[label], times[label] = [r["score"]], [r["fit_s"]]
        results[name] = rows
        print(f"## {name} ({describe(data)}, {metric})\n")
        print(f"| model | {metric} | fit (s) | notes |")
        print("|---|---|---|---|")
        for label, scores in rows.items():
            print(f"| {label} | {fmt(scores)} | {statistics.mean(times[label]):.1f} "
                  f"| {extra.get(label, '')} |")
            raw.append({"dataset": name, "model": label, "scores": scores,
                        "fit_s": times[label]})
        for label, note in extra.items():
            if label not in rows:
                print(f"| {label} | | | {note} |")
        published = ", ".join(f"{k} {v:.4g}" for k, v in PUBLISHED[name].items())
        print(f"\nPublished: {published or 'none on this split'}.\n")
    print("## Summary\n")
    labels = ["skcnn defaults" if arch is None else f"skcnn `{arch}`"
              for arch in args.archs]
    labels += sorted({label for rows in results.values() for label in rows
                      if label.startswith("sktime `") and "Classifier" in label})
    for label in labels:
        for line in summarise(results, label):
            print(line)
    slow = [(r["dataset"], r["model"], statistics.mean(r["fit_s"])) for r in raw
            if r["model"].startswith("skcnn") and statistics.mean(r["fit_s"]) > BUDGET_S]
    print(f"- skcnn fits over {BUDGET_S} s: "
          + (", ".join(f"{n} {lab} {s:.0f} s" for n, lab, s in slow) or "none") + ".")
    if missing:
        print(f"- Not found (pass --data-dir): {', '.join(missing)}.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=1)


if __name__ == "__main__":
    main()
