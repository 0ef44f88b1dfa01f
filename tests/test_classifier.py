"""L0Classifier: best-subset logistic regression that behaves like a scikit-learn
classifier."""

import itertools

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import check_estimator

from chita_opt import L0Classifier, L0ClassifierCV
from chita_opt.logistic import fit_on_support, logistic_loss


@pytest.mark.parametrize(
    "estimator",
    [
        L0Classifier(),
        L0Classifier(k=2, ridge=0.1, method="cd"),
        L0ClassifierCV(ks=[1, 2], cv=2, method="cd"),
        L0Classifier(k=2, multi_class="multinomial"),
    ],
    ids=["default", "cd", "cv", "multinomial"],
)
def test_passes_check_estimator(estimator):
    check_estimator(estimator)


def _correlated(seed, n=300, p=12, k=3, rho=0.6):
    rng = np.random.default_rng(seed)
    X = np.empty((n, p))
    X[:, 0] = rng.standard_normal(n)
    for j in range(1, p):
        X[:, j] = rho * X[:, j - 1] + np.sqrt(1 - rho**2) * rng.standard_normal(n)
    truth = np.sort(rng.choice(p, k, replace=False))
    beta = np.zeros(p)
    beta[truth] = rng.choice([-1.0, 1.0], k) * rng.uniform(0.7, 1.5, k)
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ beta) - 0.5))).astype(int)
    return X, y, truth


@pytest.mark.parametrize("seed", range(4))
def test_reaches_the_best_support_found_by_enumeration(seed):
    """On 12 correlated features with k = 3, the fitted loss is the smallest over all 220
    supports (each fitted exactly)."""
    X, y, _ = _correlated(seed)
    ridge, t, s = 1e-2, y.astype(float), np.ones(len(y))
    model = L0Classifier(k=3, ridge=ridge).fit(X, y)
    best = min(
        logistic_loss(
            X, t, s, *fit_on_support(X, t, s, np.array(S), np.zeros(3), 0.0, ridge, True), ridge
        )
        for S in itertools.combinations(range(12), 3)
    )
    assert model.objective_[0] <= best * (1 + 1e-9)
    assert np.count_nonzero(model.coef_) <= 3


def test_without_a_binding_budget_it_is_ridge_logistic_regression():
    X, y, _ = _correlated(7)
    ours = L0Classifier(k=12, ridge=2.0).fit(X, y)
    theirs = LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=1e-6)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)


def test_integer_sample_weights_count_samples():
    X, y, _ = _correlated(3, n=120)
    weights = np.random.default_rng(0).integers(0, 4, len(y))
    weighted = L0Classifier(k=3, ridge=0.5).fit(X, y, sample_weight=weights)
    repeated = L0Classifier(k=3, ridge=0.5).fit(np.repeat(X, weights, 0), np.repeat(y, weights))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, atol=1e-7)
    np.testing.assert_allclose(weighted.intercept_, repeated.intercept_, atol=1e-7)


def test_labels_and_several_classes():
    X, y, truth = _correlated(1)
    labels = np.array(["no", "yes"])[y]
    model = L0Classifier(k=3).fit(X, labels)
    assert list(model.classes_) == ["no", "yes"] and model.coef_.shape == (1, 12)
    assert set(model.predict(X)) <= {"no", "yes"} and model.score(X, labels) > 0.7
    assert set(np.flatnonzero(model.support_)) == set(truth)
    three = np.digitize(X[:, truth[0]] + X[:, truth[1]], [-0.5, 0.5])
    multi = L0Classifier(k=2).fit(X, three)
    assert multi.coef_.shape == (3, 12) and multi.intercept_.shape == (3,)
    assert np.all(np.count_nonzero(multi.coef_, axis=1) <= 2)
    np.testing.assert_allclose(multi.predict_proba(X).sum(axis=1), 1.0)
    assert multi.score(X, three) > 0.8


def test_bad_input_is_named():
    X, y, _ = _correlated(0, n=50)
    with pytest.raises(ValueError, match="one class"):
        L0Classifier().fit(X, np.zeros(50))
    with pytest.raises(ValueError, match="sample_weight"):
        L0Classifier().fit(X, y, sample_weight=-np.ones(50))
    with pytest.raises(ValueError, match="'k' parameter of L0Classifier must be an int"):
        L0Classifier(k=0).fit(X, y)
    with pytest.raises(ValueError, match="'tol' parameter of L0Classifier must be a float"):
        L0Classifier(tol=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="Unknown label type"):
        L0Classifier().fit(X, np.linspace(0, 1, 50))


def test_cross_validation_chooses_k_and_refits():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((240, 15))
    y = (2 * X[:, 4] - 2 * X[:, 9] + 0.2 * rng.standard_normal(240) > 0).astype(int)
    model = L0ClassifierCV(ks=[1, 2, 3, 4], cv=3).fit(X, y)
    assert model.k_ in (2, 3) and {4, 9} <= set(np.flatnonzero(model.support_))
    assert model.cv_results_["mean_test_score"].shape == (4,)
    assert model.best_score_ == model.cv_results_["mean_test_score"].max()
    refit = L0Classifier(k=model.k_).fit(X, y)
    np.testing.assert_allclose(model.coef_, refit.coef_)
    np.testing.assert_allclose(model.predict_proba(X), refit.predict_proba(X))
    by_accuracy = L0ClassifierCV(ks=[1, 2], cv=3, scoring="accuracy").fit(X, y)
    assert by_accuracy.k_ == 2 and by_accuracy.best_score_ > 0.9
    with pytest.raises(ValueError, match="scoring"):
        L0ClassifierCV(scoring="f1").fit(X, y)
    # every option is checked before the folds are cut
    with pytest.raises(ValueError, match="'tol' parameter of L0ClassifierCV must be a float"):
        L0ClassifierCV(tol=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="'cv' parameter of L0ClassifierCV must be an int"):
        L0ClassifierCV(cv="not a splitter").fit(X, y)
    with pytest.raises(ValueError, match=r"L0ClassifierCV needs .* one class"):
        L0ClassifierCV().fit(X, np.ones(len(y)))


def _three_classes(seed, n=150, p=6):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    X[:, 1:] = 0.6 * X[:, :-1] + 0.8 * X[:, 1:]
    B = rng.standard_normal((3, p)) * (rng.random((3, p)) < 0.4)
    y = np.argmax(X @ B.T + rng.gumbel(size=(n, 3)), axis=1)
    return X, y


@pytest.mark.parametrize("seed", range(3))
def test_multinomial_reaches_the_best_supports_found_by_enumeration(seed):
    """One feature per class among 6: the fitted softmax loss is the smallest over all
    216 choices of the three supports (each fitted exactly)."""
    from chita_opt.multinomial import fit_on_supports, softmax_loss

    X, y = _three_classes(seed)
    T, s, ridge = np.eye(3)[y], np.ones(len(y)), 1e-2
    model = L0Classifier(k=1, ridge=ridge, multi_class="multinomial").fit(X, y)
    best = np.inf
    for chosen in itertools.product(range(6), repeat=3):
        supports = [np.array([j]) for j in chosen]
        fitted = fit_on_supports(X, T, s, supports, np.zeros((3, 6)), np.zeros(3), ridge, True)
        best = min(best, softmax_loss(X, T, s, *fitted, ridge))
    assert model.objective_.shape == (1,) and model.objective_[0] <= best * (1 + 1e-9)
    assert model.coef_.shape == (3, 6) and np.all(np.count_nonzero(model.coef_, axis=1) <= 1)
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)


def test_multinomial_without_a_binding_budget_is_softmax_ridge_regression():
    from sklearn.linear_model import LogisticRegression

    X, y = _three_classes(5, n=200)
    ours = L0Classifier(k=6, ridge=2.0, multi_class="multinomial").fit(X, y)
    theirs = LogisticRegression(C=0.5, tol=1e-10, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-5)


def test_multinomial_budgets_and_forced_features_hold_per_class():
    X, y = _three_classes(2, n=200, p=10)
    model = L0Classifier(k=2, multi_class="multinomial", always_select=[9], never_select=[0]).fit(
        X, y
    )
    assert np.all(np.count_nonzero(model.coef_, axis=1) <= 2)
    assert np.all(model.coef_[:, 9] != 0) and np.all(model.coef_[:, 0] == 0)
    # two classes: one binary fit whatever multi_class says
    binary = y < 2
    two = L0Classifier(k=2, multi_class="multinomial").fit(X[binary], y[binary])
    one = L0Classifier(k=2).fit(X[binary], y[binary])
    np.testing.assert_array_equal(two.coef_, one.coef_)
