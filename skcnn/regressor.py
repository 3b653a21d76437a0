"""CNNRegressor (images) and Conv1DRegressor (signals)."""

import numpy as np
import torch
from sklearn.base import RegressorMixin
from sklearn.utils import assert_all_finite

from ._base import BaseCNN
from ._compat import StrOptions, _fit_context
from ._docs import (
    AUTO_EPOCHS_DOC,
    AUTO_NORMALIZE_REGRESSOR,
    COMMON_ATTRIBUTES,
    COMMON_PARAMS,
    IMAGE,
    REGRESSOR_LOSS_PARAMS,
    REGRESSOR_RECIPE,
    SIGNAL,
    fill_doc,
)
from ._image_input import IMAGE_CONSTRAINTS, _ImageMixin
from ._losses import REGRESSOR_LOSSES, criterion_for
from ._signal import SIGNAL_CONSTRAINTS, _SignalMixin


class _CNNRegressorBase(RegressorMixin, BaseCNN):
    _parameter_constraints = {
        **BaseCNN._parameter_constraints,
        "loss": [StrOptions(set(REGRESSOR_LOSSES)), type],
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
        loss="mse",
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
            patience=patience, precision=precision, compile=compile,
            random_state=random_state, device=device, num_threads=num_threads,
            sync_batch_norm=sync_batch_norm, verbose=verbose,
            warm_start=warm_start, checkpoint_dir=checkpoint_dir,
            callbacks=callbacks, **kwargs,
        )
        self.loss = loss

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Train the network on inputs ``X`` and targets ``y``.

        The targets are standardised internally (per output), so training
        works whatever their scale; predictions are in the units of ``y``.

        Parameters
        ----------
        X : array-like or DataFrame
            Training inputs (see the class docstring for accepted shapes).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Numeric targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample's loss (and in the mean and
            standard deviation that standardise the targets). Samples of
            weight zero are left out of training; ``None`` weighs all
            samples equally.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X, lengths, y = self._prepare(X, y, reset=True)
        X, lengths, y_std, weight = self._targets(X, lengths, y, sample_weight,
                                                  reset=True)
        return self._fit(X, torch.from_numpy(y_std), y_std.shape[1],
                         *self._criterion(weight), lengths=lengths, weight=weight)

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Train on one chunk of the data: one pass over ``(X, y)``.

        For data that do not fit in memory or arrive over time (a
        ``numpy.memmap`` read chunk by chunk, the blocks of a Dask array
        with ``dask_ml.wrappers.Incremental``, a stream). The first call
        builds the network and the optimizer, and fixes the target
        standardisation (``y_mean_``, ``y_scale_``) from its chunk: make
        the first chunk representative (shuffled data). Each later call
        continues with the same weights and optimizer state. No
        learning-rate schedule, early stopping or hold-out is used: the
        learning rate is ``lr`` throughout. After ``fit``, ``partial_fit``
        continues the fitted network.

        Parameters
        ----------
        X : array-like or DataFrame
            A chunk of training inputs (later chunks must have the shape of
            the first).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Numeric targets of the chunk.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each sample's loss in this chunk, as in
            :meth:`fit`.

        Returns
        -------
        self : object
            The estimator, trained on one more chunk.
        """
        first = not hasattr(self, "net_")
        X, lengths, y = self._partial_inputs(X, y)
        X, lengths, y_std, weight = self._targets(X, lengths, y, sample_weight,
                                                  reset=first)
        return self._fit(X, torch.from_numpy(y_std), y_std.shape[1],
                         *self._criterion(weight), lengths=lengths, weight=weight,
                         partial=True)

    def _criterion(self, weight):
        return criterion_for(self.loss, "regression", weighted=weight is not None,
                             name=type(self).__name__)

    def _targets(self, X, lengths, y, sample_weight, *, reset):
        """Samples of non-zero weight, standardised targets, their weights.

        ``reset=True`` learns ``y_mean_`` and ``y_scale_`` (per output,
        weighted by ``sample_weight``) from ``y``; otherwise the learned ones
        are applied.
        """
        y = np.asarray(y, dtype=np.float64)
        # Object targets are converted to floats after scikit-learn's finite
        # check: None becomes NaN here.
        assert_all_finite(y, input_name="y")
        y2 = y.reshape(len(y), -1)
        weight = self._sample_weight(sample_weight, X)
        weight, X, lengths, y2 = self._drop_zero_weight(weight, X, lengths, y2)
        if reset:
            self._y_ndim = y.ndim
            self.y_mean_ = np.average(y2, axis=0, weights=weight)
            scale = np.sqrt(np.average((y2 - self.y_mean_) ** 2, axis=0,
                                       weights=weight))
            self.y_scale_ = np.where(scale > 0, scale, 1.0)
        elif y2.shape[1] != len(self.y_mean_):
            raise ValueError(
                f"y has {y2.shape[1]} output(s), but {type(self).__name__} was "
                f"fitted on {len(self.y_mean_)}."
            )
        y_std = ((y2 - self.y_mean_) / self.y_scale_).astype(np.float32)
        return X, lengths, y_std, weight

    def predict(self, X):
        """Predicted targets, in the units and shape of ``y``.

        Parameters
        ----------
        X : array-like or DataFrame
            Inputs of the shape seen in ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        out = self._predict_outputs(X).astype(np.float64)
        out = out * self.y_scale_ + self.y_mean_
        return out[:, 0] if self._y_ndim == 1 else out

    def _y_validation_kwargs(self):
        return {"y_numeric": True, "multi_output": True}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


_REGRESSOR_DOC = """{summary}

    {intro} Targets may be 1-D or 2-D (multi-output); they are standardised
    internally, so targets around 1e5 train as well as targets around 1.

    Parameters
    ----------
    {params}
    {loss_params}

    Attributes
    ----------
    y_mean_ : ndarray of shape (n_outputs,)
        Mean of each target, removed before training.
    y_scale_ : ndarray of shape (n_outputs,)
        Standard deviation of each target (1 for a constant target).
    {attributes}

    See Also
    --------
    {see_also}

    Notes
    -----
    The network is trained with the mean squared error of the standardised
    targets (see ``loss``). Predictions do not depend on the batch: every
    prediction batch has the same size, so a sample's prediction is the
    same alone or with others.{signal_notes}

    Examples
    --------
    {example}
"""


@fill_doc(
    **IMAGE,
    params=COMMON_PARAMS, attributes=COMMON_ATTRIBUTES,
    loss_params=REGRESSOR_LOSS_PARAMS,
    summary="Convolutional neural network regressor for images.",
    see_also="CNNClassifier : the same network for classification.\n    "
             "Conv1DRegressor : 1-D convolutions for signals.",
    example=""">>> import numpy as np
    >>> from skcnn import CNNRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(40, 8, 8); y = 1e5 * X.mean(axis=(1, 2))
    >>> CNNRegressor(max_epochs=2, random_state=0).fit(X, y).predict(X[:2]).shape
    (2,)""",
)
class CNNRegressor(_ImageMixin, _CNNRegressorBase):
    __doc__ = _REGRESSOR_DOC
    _ndim = 2
    _parameter_constraints = {**_CNNRegressorBase._parameter_constraints,
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
        loss="mse",
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
            patience=patience, loss=loss, precision=precision, compile=compile,
            random_state=random_state, device=device, num_threads=num_threads,
            sync_batch_norm=sync_batch_norm, verbose=verbose,
            warm_start=warm_start, checkpoint_dir=checkpoint_dir,
            callbacks=callbacks, **kwargs,
        )
        self.data_format = data_format
        self.input_size = input_size
        self.augment = augment
        self.tta = tta
        self.num_workers = num_workers


@fill_doc(
    **{**SIGNAL, "auto_epochs_doc": AUTO_EPOCHS_DOC.format(auto_steps=2000),
       "auto_normalize_doc": AUTO_NORMALIZE_REGRESSOR},
    params=COMMON_PARAMS, attributes=COMMON_ATTRIBUTES, recipe=REGRESSOR_RECIPE,
    loss_params=REGRESSOR_LOSS_PARAMS,
    summary="1-D convolutional neural network regressor for signals and series.",
    see_also="Conv1DClassifier : the same network for classification.\n    "
             "CNNRegressor : 2-D convolutions for images.",
    example=""">>> import numpy as np
    >>> from skcnn import Conv1DRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.randn(40, 50); y = X[:, :10].sum(axis=1)
    >>> Conv1DRegressor(max_epochs=2, random_state=0).fit(X, y).predict(X[:2]).shape
    (2,)""",
)
class Conv1DRegressor(_SignalMixin, _CNNRegressorBase):
    __doc__ = _REGRESSOR_DOC
    _ndim = 1
    _parameter_constraints = {**_CNNRegressorBase._parameter_constraints,
                              **SIGNAL_CONSTRAINTS}

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
        normalize="auto",
        augment=None,
        n_ensemble=1,
        group_by_length=False,
        optimizer="adam",
        lr=3e-3,
        weight_decay=0.0,
        batch_size=16,
        max_epochs="auto",
        lr_schedule="onecycle",
        early_stopping=False,
        validation_fraction=0.1,
        patience=5,
        loss="mse",
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
            patience=patience, loss=loss, precision=precision, compile=compile,
            random_state=random_state, device=device, num_threads=num_threads,
            sync_batch_norm=sync_batch_norm, verbose=verbose, warm_start=warm_start,
            checkpoint_dir=checkpoint_dir, callbacks=callbacks, **kwargs,
        )
        self.normalize = normalize
        self.augment = augment
        self.n_ensemble = n_ensemble
        self.group_by_length = group_by_length
