"""scikit-learn's estimator checks on the four estimators."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skcnn import CNNClassifier, CNNRegressor, Conv1DClassifier, Conv1DRegressor

# Small networks and few epochs keep the ~50 checks per estimator fast; the
# checks that measure learning (check_classifiers_train,
# check_regressors_train, check_class_weight_classifiers) pass with them.
ESTIMATORS = [
    CNNClassifier(channels=(8,), hidden_units=(32,), max_epochs=10, lr=1e-2),
    CNNRegressor(channels=(8,), hidden_units=(32,), max_epochs=10, lr=1e-2),
    Conv1DClassifier(channels=(8,), hidden_units=(32,), max_epochs=10, lr=1e-2),
    Conv1DRegressor(channels=(8,), hidden_units=(32,), max_epochs=10, lr=1e-2),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
