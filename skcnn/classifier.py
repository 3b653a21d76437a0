"""CNNClassifier (images) and Conv1DClassifier (signals)."""

import numbers

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._base import BaseCNN
from ._compat import Interval, StrOptions, _fit_context
from ._docs import (
    CLASSIFIER_LOSS_PARAMS,
    CLASSIFIER_RECIPE,
    COMMON_ATTRIBUTES,
    COMMON_PARAMS,
    IMAGE,
    SIGNAL,
    fill_doc,
)
from ._image_input import IMAGE_CONSTRAINTS, _ImageMixin
from ._losses import CLASSIFIER_LOSSES, criterion_for
from ._signal import SIGNAL_CONSTRAINTS, _SignalMixin


class _CNNClassifierBase(ClassifierMixin, BaseCNN):
    _parameter_constraints = {
        **BaseCNN._parameter_constraints,
        "class_weight": [None, dict, "array-like", str],
        "loss": [StrOptions(set(CLASSIFIER_LOSSES)), type],
        "label_smoothing": [Interval(numbers.Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        architecture="convnet",
        *,
        input_shape=None,
        channels=None,
        kernel_size=None,
        pooling=None,
        batch_norm=None,
        dropout=None,
        hidden_units=None,
        activation=None,
        weights=None,
        freeze="none",
        unfreeze_at_epoch=None,
        lr_decay=1.0,
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        batch_size=64,
        max_epochs=30,
        lr_schedule="onecycle",
        early_stopping=False,
        validation_fraction=0.1,
        patience=5,
        class_weight=None,
        loss="cross_entropy",
        label_smoothing=0.0,
        precision=None,
        compile=False,
        random_state=None,
        device="auto",
        num_threads=None,
        sync_batch_norm=False,
        verbose=0,
        warm_start=False,
        checkpoint_dir=None,
        callbacks=None,
        **kwargs,
    ):
        super().__init__(
            architecture, input_shape=input_shape, channels=channels,
            kernel_size=kernel_size, pooling=pooling, batch_norm=batch_norm,
            dropout=dropout, hidden_units=hidden_units, activation=activation,
            weights=weights, freeze=freeze, unfreeze_at_epoch=unfreeze_at_epoch,
            lr_decay=lr_decay, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
            batch_size=batch_size, max_epochs=max_epochs, lr_schedule=lr_schedule,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            patience=patience, precision=precision, compile=compile, random_state=random_state,
            device=device, num_threads=num_threads,
            sync_batch_norm=sync_batch_norm, verbose=verbose, warm_start=warm_start,
            checkpoint_dir=checkpoint_dir, callbacks=callbacks, **kwargs,
        )
        self.class_weight = class_weight
        self.loss = loss
        self.label_smoothing = label_smoothing

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train the network on images/signals ``X`` and labels ``y``.

        Parameters
        ----------
        X : array-like or DataFrame
            Training inputs (see the class docstring for accepted shapes).
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Labels of any type (str, int, bool...), at least two classes; or
            a binary indicator matrix (multi-label: several labels per
            sample, see Notes).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample's loss (multiplied by its
            ``class_weight``). Samples of weight zero are left out of
            training; ``None`` weighs all samples equally.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X, lengths, y = self._prepare(X, y, reset=True)
        name = type(self).__name__
        y = _check_targets(y, name)
        self._multilabel = y.ndim == 2
        if self._multilabel:
            if self.class_weight is not None:
                raise ValueError(
                    f"{name}: class_weight is not supported with multi-label "
                    f"targets; weight the samples with sample_weight instead."
                )
            self.classes_ = np.arange(y.shape[1])
            self._y_dtype = y.dtype
            y_fit, extra, task = y.astype(np.float32), None, "multilabel"
        else:
            check_classification_targets(y)
            encoder = LabelEncoder()
            y_fit = encoder.fit_transform(y)
            self.classes_ = encoder.classes_
            if len(self.classes_) < 2:
                raise ValueError(
                    f"{name} needs samples of at least 2 classes; got "
                    f"1 class (label {self.classes_[0]!r})."
                )
            cw = self._class_weights(y)
            extra = None if cw is None else cw[y_fit]
            task = "multiclass"
        weight = self._sample_weight(sample_weight, X, extra)
        weight, X, lengths, y_fit = self._drop_zero_weight(weight, X, lengths, y_fit)
        criterion, criterion_kwargs = criterion_for(
            self.loss, task, self.label_smoothing, weighted=weight is not None,
            name=name)
        y_tensor = torch.as_tensor(
            y_fit, dtype=torch.float32 if self._multilabel else torch.long)
        return self._fit(X, y_tensor, len(self.classes_), criterion,
                         criterion_kwargs, lengths=lengths, weight=weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train on one chunk of the data: one pass over ``(X, y)``.

        For data that do not fit in memory or arrive over time (a
        ``numpy.memmap`` read chunk by chunk, the blocks of a Dask array
        with ``dask_ml.wrappers.Incremental``, a stream). The first call
        builds the network (from this chunk's shapes) and the optimizer;
        each later call continues with the same weights and the same
        optimizer state. No learning-rate schedule, early stopping or
        hold-out is used: the learning rate is ``lr`` throughout.
        ``random_state`` makes a sequence of calls reproducible. After
        ``fit``, ``partial_fit`` continues the fitted network.

        Parameters
        ----------
        X : array-like or DataFrame
            A chunk of training inputs (see the class docstring for shapes;
            later chunks must have the shape of the first).
        y : array-like of shape (n_samples,)
            Labels of the chunk, all in ``classes``.
        classes : array-like of shape (n_classes,), default=None
            Every label the data hold, at least two. Required on the first
            call (a chunk need not contain every class), optional later
            (when given, it must be the same).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample's loss in this chunk
            (multiplied by its ``class_weight``), as in :meth:`fit`.

        Returns
        -------
        self : object
            The estimator, trained on one more chunk.
        """
        first = not hasattr(self, "net_")
        X, lengths, y = self._partial_inputs(X, y)
        name = type(self).__name__
        if np.ndim(y) != 1:
            raise ValueError(
                f"{name}.partial_fit takes a 1-D array of labels; got y of shape "
                f"{np.shape(y)}. Multi-label targets (an indicator matrix) are "
                f"trained with fit."
            )
        check_classification_targets(y)
        if classes is not None:
            classes = np.unique(np.asarray(classes))
        if first:
            if classes is None:
                raise ValueError(
                    f"classes must be passed on the first call to "
                    f"{name}.partial_fit: the list of every label in the data "
                    f"(a chunk need not hold them all); got classes=None."
                )
            if len(classes) < 2:
                raise ValueError(
                    f"{name}.partial_fit needs at least 2 classes; got "
                    f"classes={classes.tolist()}."
                )
            self.classes_ = classes
        elif classes is not None and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"classes={classes.tolist()} differs from the classes of the "
                f"previous calls, {self.classes_.tolist()}."
            )
        unseen = np.setdiff1d(np.unique(y), self.classes_)
        if len(unseen):
            raise ValueError(
                f"y holds labels {unseen.tolist()} that are not in classes "
                f"{self.classes_.tolist()}."
            )
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            raise ValueError(
                "class_weight='balanced' needs the whole training set and "
                "is not supported by partial_fit; pass a dict or an array "
                "of per-class weights."
            )
        y_enc = np.searchsorted(self.classes_, y)
        cw = self._class_weights(y)
        weight = self._sample_weight(sample_weight, X,
                                     None if cw is None else cw[y_enc])
        weight, X, lengths, y_enc = self._drop_zero_weight(weight, X, lengths, y_enc)
        # The built-in losses compute per-sample losses whether or not a
        # chunk is weighted, so one criterion serves every call.
        criterion, criterion_kwargs = criterion_for(
            self.loss, "multiclass", self.label_smoothing,
            weighted=weight is not None, name=name)
        self._multilabel = False
        return self._fit(X, torch.as_tensor(y_enc, dtype=torch.long),
                         len(self.classes_), criterion, criterion_kwargs,
                         lengths=lengths, weight=weight, partial=True)

    def _class_weights(self, y):
        cw = self.class_weight
        if cw is None:
            return None
        if isinstance(cw, str) and cw != "balanced":
            raise ValueError(
                f"class_weight must be None, 'balanced', a dict or an array; "
                f"got {cw!r}."
            )
        if isinstance(cw, (str, dict)):
            return compute_class_weight(cw, classes=self.classes_, y=y)
        cw = np.asarray(cw, dtype=np.float64)
        if cw.shape != (len(self.classes_),):
            raise ValueError(
                f"class_weight as an array needs one weight per class "
                f"({len(self.classes_)}); got shape {cw.shape}."
            )
        return cw

    def predict_proba(self, X):
        """Class probabilities (softmax of the network's logits).

        Parameters
        ----------
        X : array-like or DataFrame
            Inputs of the shape seen in ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to 1; columns follow ``classes_``. Multi-label: the
            probability of each label (sigmoid of its logit), shape
            ``(n_samples, n_labels)``.
        """
        # Test-time augmentation averages the probabilities of the views.
        return self._proba_from_views(self._predict_view_outputs(X))

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`, computed stably.

        Parameters
        ----------
        X : array-like or DataFrame
            Inputs of the shape seen in ``fit``.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        views = torch.from_numpy(self._predict_view_outputs(X)).double()
        if self._multilabel:
            log_p = torch.nn.functional.logsigmoid(views)
        else:
            log_p = torch.log_softmax(views, dim=2)
        if len(views) == 1:
            return log_p[0].numpy()
        return (torch.logsumexp(log_p, dim=0) - np.log(len(views))).numpy()

    def predict(self, X):
        """Predicted labels, of the type of the labels seen in ``fit``.

        Parameters
        ----------
        X : array-like or DataFrame
            Inputs of the shape seen in ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_labels)
            Multi-label: the indicator matrix (a label is predicted when its
            probability exceeds 0.5), of the dtype of ``y`` in ``fit``.
        """
        check_is_fitted(self)
        views = self._predict_view_outputs(X)
        if len(views) == 1:  # the logits decide, as the probabilities would
            scores, threshold = views[0], 0.0
        else:
            scores, threshold = self._proba_from_views(views), 0.5
        if self._multilabel:
            return (scores > threshold).astype(self._y_dtype)
        return self.classes_[np.argmax(scores, axis=1)]

    def _proba_from_views(self, views):
        """Mean over the views of the probabilities (sigmoids for multi-label)."""
        views = torch.from_numpy(views).double()
        if self._multilabel:
            return torch.sigmoid(views).mean(dim=0).numpy()
        return torch.softmax(views, dim=2).mean(dim=0).numpy()

    def _is_classifier(self):
        return True

    def _stratify_split(self):
        return not self._multilabel

    def _y_validation_kwargs(self):
        return {"multi_output": True}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = True
        return tags


def _check_targets(y, name):
    """1-D labels, or a dense binary indicator matrix (multi-label).

    A column vector is raveled with scikit-learn's DataConversionWarning;
    other 2-D targets (several multi-class outputs) are refused.
    """
    if y.ndim == 2 and y.shape[1] == 1:
        return column_or_1d(y, warn=True)
    if y.ndim == 1:
        return y
    kind = type_of_target(y)
    if kind != "multilabel-indicator":
        raise ValueError(
            f"{name} takes 1-D labels or a binary indicator matrix of shape "
            f"(n_samples, n_labels) with values in {{0, 1}} (multi-label); got "
            f"targets of shape {y.shape} of type {kind!r}."
        )
    return y.toarray() if sp.issparse(y) else np.asarray(y)


_CLASSIFIER_DOC = """{summary}

    {intro}

    Parameters
    ----------
    {params}
    class_weight : dict, 'balanced', array-like or None, default=None
        Weights of the classes in the cross-entropy loss: ``{label:
        weight}``, ``'balanced'`` (inversely proportional to class
        frequencies, as in scikit-learn) or one weight per class in the
        order of ``classes_``. Multiplies ``sample_weight`` in ``fit``.
    {loss_params}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``; ``predict`` returns values from it.
        Multi-label: ``arange(n_labels)``, the columns of ``y``.
    {attributes}

    See Also
    --------
    {see_also}

    Notes
    -----
    The network outputs one logit per class and is trained with
    cross-entropy on the logits (see ``loss``); ``predict_proba`` is their
    softmax. A 2-D binary indicator ``y`` (multi-label: any number of
    labels per sample) trains one sigmoid output per label with binary
    cross-entropy; ``predict`` then returns the indicator matrix and
    ``predict_proba`` the probability of each label. Predictions do not
    depend on the batch: every prediction batch has the same size, so a
    sample's outputs are the same alone or with others.
    Each epoch is split into batches of nearly equal size (see
    ``batch_size``); a batch of a single sample, which batch normalisation
    cannot train on, is dropped.{signal_notes}

    Examples
    --------
    {example}
"""


@fill_doc(
    **IMAGE,
    params=COMMON_PARAMS, attributes=COMMON_ATTRIBUTES,
    loss_params=CLASSIFIER_LOSS_PARAMS,
    summary="Convolutional neural network classifier for images.",
    see_also="CNNRegressor : the same network for regression.\n    "
             "Conv1DClassifier : 1-D convolutions for signals.",
    example=""">>> from sklearn.datasets import load_digits
    >>> from skcnn import CNNClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = CNNClassifier(max_epochs=2, random_state=0).fit(X.reshape(-1, 8, 8) / 16, y)
    >>> clf.predict(X[:3].reshape(-1, 8, 8) / 16).shape
    (3,)""",
)
class CNNClassifier(_ImageMixin, _CNNClassifierBase):
    __doc__ = _CLASSIFIER_DOC
    _ndim = 2
    _parameter_constraints = {**_CNNClassifierBase._parameter_constraints,
                              **IMAGE_CONSTRAINTS}

    def __init__(
        self,
        architecture="convnet",
        *,
        input_shape=None,
        channels=None,
        kernel_size=None,
        pooling=None,
        batch_norm=None,
        dropout=None,
        hidden_units=None,
        activation=None,
        weights=None,
        freeze="none",
        unfreeze_at_epoch=None,
        lr_decay=1.0,
        data_format="auto",
        input_size=None,
        augment=None,
        tta=None,
        num_workers=0,
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        batch_size=64,
        max_epochs=30,
        lr_schedule="onecycle",
        early_stopping=False,
        validation_fraction=0.1,
        patience=5,
        class_weight=None,
        loss="cross_entropy",
        label_smoothing=0.0,
        precision=None,
        compile=False,
        random_state=None,
        device="auto",
        num_threads=None,
        sync_batch_norm=False,
        verbose=0,
        warm_start=False,
        checkpoint_dir=None,
        callbacks=None,
        **kwargs,
    ):
        super().__init__(
            architecture, input_shape=input_shape, channels=channels,
            kernel_size=kernel_size, pooling=pooling, batch_norm=batch_norm,
            dropout=dropout, hidden_units=hidden_units, activation=activation,
            weights=weights, freeze=freeze, unfreeze_at_epoch=unfreeze_at_epoch,
            lr_decay=lr_decay, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
            batch_size=batch_size, max_epochs=max_epochs, lr_schedule=lr_schedule,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            patience=patience, class_weight=class_weight, loss=loss,
            label_smoothing=label_smoothing, precision=precision,
            compile=compile, random_state=random_state, device=device,
            num_threads=num_threads, sync_batch_norm=sync_batch_norm,
            verbose=verbose, warm_start=warm_start, checkpoint_dir=checkpoint_dir,
            callbacks=callbacks, **kwargs,
        )
        self.data_format = data_format
        self.input_size = input_size
        self.augment = augment
        self.tta = tta
        self.num_workers = num_workers


@fill_doc(
    **SIGNAL,
    params=COMMON_PARAMS, attributes=COMMON_ATTRIBUTES, recipe=CLASSIFIER_RECIPE,
    loss_params=CLASSIFIER_LOSS_PARAMS,
    summary="1-D convolutional neural network classifier for signals and series.",
    see_also="Conv1DRegressor : the same network for regression.\n    "
             "CNNClassifier : 2-D convolutions for images.",
    example=""">>> import numpy as np
    >>> from skcnn import Conv1DClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(40, 50); y = (X[:, :25].mean(1) > 0).astype(int)
    >>> Conv1DClassifier(max_epochs=2, random_state=0).fit(X, y).predict(X[:2]).shape
    (2,)""",
)
class Conv1DClassifier(_SignalMixin, _CNNClassifierBase):
    __doc__ = _CLASSIFIER_DOC
    _ndim = 1
    _parameter_constraints = {**_CNNClassifierBase._parameter_constraints,
                              **SIGNAL_CONSTRAINTS}

    def __init__(
        self,
        architecture="fcn",
        *,
        input_shape=None,
        channels=None,
        kernel_size=None,
        pooling=None,
        batch_norm=None,
        dropout=None,
        hidden_units=None,
        activation=None,
        weights=None,
        freeze="none",
        unfreeze_at_epoch=None,
        lr_decay=1.0,
        normalize="auto",
        augment=None,
        n_ensemble=1,
        group_by_length=False,
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.0,
        batch_size=8,
        max_epochs="auto",
        lr_schedule="onecycle",
        early_stopping=False,
        validation_fraction=0.1,
        patience=5,
        class_weight=None,
        loss="cross_entropy",
        label_smoothing=0.0,
        precision=None,
        compile=False,
        random_state=None,
        device="auto",
        num_threads=None,
        sync_batch_norm=False,
        verbose=0,
        warm_start=False,
        checkpoint_dir=None,
        callbacks=None,
        **kwargs,
    ):
        super().__init__(
            architecture, input_shape=input_shape, channels=channels,
            kernel_size=kernel_size, pooling=pooling, batch_norm=batch_norm,
            dropout=dropout, hidden_units=hidden_units, activation=activation,
            weights=weights, freeze=freeze, unfreeze_at_epoch=unfreeze_at_epoch,
            lr_decay=lr_decay, optimizer=optimizer, lr=lr, weight_decay=weight_decay,
            batch_size=batch_size, max_epochs=max_epochs, lr_schedule=lr_schedule,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            patience=patience, class_weight=class_weight, loss=loss,
            label_smoothing=label_smoothing, precision=precision, compile=compile,
            random_state=random_state, device=device, num_threads=num_threads,
            sync_batch_norm=sync_batch_norm, verbose=verbose,
            warm_start=warm_start, checkpoint_dir=checkpoint_dir, callbacks=callbacks,
            **kwargs,
        )
        self.normalize = normalize
        self.augment = augment
        self.n_ensemble = n_ensemble
        self.group_by_length = group_by_length
