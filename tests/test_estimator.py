"""L0Regressor and L0RegressorCV behave like scikit-learn regressors."""

import itertools

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from chita_opt import L0Regressor, L0RegressorCV, L0RegressorIC
from chita_opt.problems import make_toeplitz_regression
from chita_opt.solvers import LocalSearch

# scikit-learn's check fits 15 samples x 30 features, about 11 of them with a nonzero
# weight: with 10 or more features and no ridge many supports fit those exactly, and which
# one a best-subset search reaches depends on rounding, so weighted and repeated rows can
# end at different (equally good) fits. test_sample_weights_count_samples checks the
# equivalence where the fit is unique.
_NO_RESTARTS = LocalSearch(restarts=0)
_TIES = {"check_sample_weight_equivalence_on_dense_data": "exact fits tie when k >= n"}


@pytest.mark.parametrize(
    "estimator, expected_failed",
    [
        (L0Regressor(), _TIES),
        (L0Regressor(k=2, ridge=0.1, method="cd"), {}),
        # the API checks need no random restarts of the swaps (48 per tiny fit)
        (L0RegressorCV(ks=[1, 2], cv=2, solver_options={"swaps": _NO_RESTARTS}), {}),
        (L0RegressorIC(ks=[1, 2, 3], solver_options={"swaps": _NO_RESTARTS}), {}),
        (L0RegressorIC(ks=[1, 12], method="cd"), _TIES),
    ],
    ids=["default", "cd-ridge", "cv", "ic", "ic-ties"],
)
def test_passes_check_estimator(estimator, expected_failed):
    check_estimator(estimator, expected_failed_checks=expected_failed)


def test_sample_weights_count_samples():
    X, y, _ = _data(n=80)
    weights = np.random.default_rng(1).integers(0, 4, 80)
    repeated = (np.repeat(X, weights, 0), np.repeat(y, weights))
    for model in (L0Regressor(k=5, ridge=0.5), L0RegressorIC(criterion="bic")):
        weighted = clone(model).fit(X, y, sample_weight=weights)
        copied = clone(model).fit(*repeated)
        np.testing.assert_allclose(weighted.coef_, copied.coef_, rtol=1e-6, atol=1e-8)
        assert weighted.intercept_ == pytest.approx(copied.intercept_, rel=1e-6)
    with pytest.raises(ValueError, match="sample_weight"):
        L0Regressor().fit(X, y, sample_weight=np.zeros(80))


def test_information_criteria_follow_their_formulas_and_order():
    """Each criterion is its formula on the path's fits; heavier penalties choose no
    more features (AIC >= BIC >= EBIC), and BIC / EBIC find the truth on clear data."""
    from scipy.special import comb

    from chita_opt.information_criteria import information_criterion

    rss, n, s, p = 12.5, 100.0, 4, 60
    assert information_criterion(rss, n, s, p, "aic") == pytest.approx(
        n * np.log(rss / n) + 2 * (s + 1)
    )
    bic = n * np.log(rss / n) + np.log(n) * (s + 1)
    assert information_criterion(rss, n, s, p, "bic") == pytest.approx(bic)
    assert information_criterion(rss, n, s, p, "ebic", gamma=0.7) == pytest.approx(
        bic + 2 * 0.7 * np.log(comb(p, s))
    )
    found = 0
    for seed in range(4):
        X, y, truth = _data(seed=seed, n=200, p=40, snr=10.0)
        chosen = {
            c: L0RegressorIC(ks=range(1, 11), criterion=c, gamma=1.0).fit(X, y)
            for c in ("aic", "bic", "ebic")
        }
        assert chosen["aic"].k_ >= chosen["bic"].k_ >= chosen["ebic"].k_
        model = chosen["ebic"]
        found += set(np.flatnonzero(model.support_)) == set(truth)
        k = list(model.ks_).index(model.k_)
        assert model.criterion_[k] == model.criterion_.min()
        refit = L0Regressor(k=model.k_).fit(X, y)
        np.testing.assert_allclose(model.coef_, refit.coef_, rtol=1e-6, atol=1e-9)
    assert found >= 3
    with pytest.raises(ValueError, match="criterion"):
        L0RegressorIC(criterion="cp").fit(X, y)
    with pytest.raises(ValueError, match="gamma"):
        L0RegressorIC(gamma=2.0).fit(X, y)


def _data(seed=0, n=200, p=40, k=5, snr=20.0):
    inst = make_toeplitz_regression(n=n, p=p, k=k, rho=0.5, snr=snr, seed=seed)
    rng = np.random.default_rng(seed)
    X = inst.problem.A * rng.uniform(0.5, 3.0, p) + rng.normal(0, 2, p)  # scales and offsets
    y = inst.problem.y + 7.5
    return X, y, np.flatnonzero(inst.true_w)


def test_recovers_the_support_and_the_intercept():
    X, y, truth = _data()
    model = L0Regressor(k=5).fit(X, y)
    assert set(np.flatnonzero(model.support_)) == set(truth)
    assert model.coef_.shape == (40,) and model.n_features_in_ == 40
    assert model.score(X, y) > 0.9
    refit = np.linalg.lstsq(np.c_[X[:, truth], np.ones(200)], y, rcond=None)[0]
    np.testing.assert_allclose(model.coef_[truth], refit[:-1], rtol=1e-6)
    assert model.intercept_ == pytest.approx(refit[-1], rel=1e-6)


def test_works_in_pipelines_and_grid_search():
    X, y, truth = _data(seed=1)
    pipe = make_pipeline(StandardScaler(), L0Regressor(ridge=1e-3))
    search = GridSearchCV(pipe, {"l0regressor__k": [2, 5, 10]}, cv=3).fit(X, y)
    assert search.best_params_["l0regressor__k"] == 5
    assert set(np.flatnonzero(search.best_estimator_[-1].support_)) == set(truth)


def test_cv_picks_the_true_k_on_a_high_snr_instance():
    X, y, truth = _data(seed=2, snr=100.0, n=300)
    assert L0RegressorCV(ks=range(1, 11), rule="one_standard_error").fit(X, y).k_ == 5
    cv = L0RegressorCV(ks=range(1, 11), cv=5).fit(X, y)
    assert cv.k_ == 5
    assert set(np.flatnonzero(cv.support_)) == set(truth)
    results = cv.cv_results_
    assert list(results["k"]) == list(range(1, 11))
    assert results["rank_test_score"][4] == 1
    assert {"split0_test_score", "mean_test_score", "std_test_score"} <= set(results)
    mse = L0RegressorCV(ks=[3, 5], cv=3, scoring="neg_mean_squared_error").fit(X, y)
    assert mse.k_ == 5 and mse.best_score_ < 0


def test_warm_start_reuses_the_previous_solution():
    X, y, _ = _data(seed=3)
    model = L0Regressor(k=5, warm_start=True).fit(X, y)
    first = model.objective_
    model.fit(X, y)
    assert model.objective_ <= first + 1e-9 * abs(first)


def test_bad_input_follows_scikit_learn_conventions():
    X, y, _ = _data()
    with pytest.raises(NotFittedError):
        L0Regressor().predict(X)
    model = L0Regressor(k=3).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :10])
    # scikit-learn's declarative validation names the parameter and the estimator
    with pytest.raises(ValueError, match="'k' parameter of L0Regressor must be an int"):
        L0Regressor(k=0).fit(X, y)
    with pytest.raises(ValueError, match="method must be one of"):
        L0Regressor(method="nope").fit(X, y)
    with pytest.raises(ValueError, match="ks must be positive integers"):
        L0RegressorCV(ks=[0, 3]).fit(X, y)
    with pytest.raises(ValueError, match="'rule' parameter of L0RegressorCV must be a str among"):
        L0RegressorCV(rule="min").fit(X, y)
    with pytest.raises(ValueError, match="'scoring' parameter of L0RegressorCV must be a str"):
        L0RegressorCV(scoring="mae").fit(X, y)
    with pytest.raises(ValueError, match="ridge must be a number >= 0 or a non-empty sequence"):
        L0RegressorCV(ridge=[0.1, -1.0]).fit(X, y)


def test_features_forced_in_and_out():
    """always_select features are in every fit (counting toward k) and never_select ones
    in none; among the rest the best subset is kept (checked by enumeration), for the
    regressor and the classifier; bad sets are refused with the reason."""
    from itertools import combinations

    from chita_opt import L0Classifier
    from chita_opt.problems.forced import ForcedSelection

    X, y, truth = _data(seed=2, n=120, p=10, k=3)
    always, never = [int(truth[0]), 9 if 9 not in truth else 8], [int(truth[1])]
    model = L0Regressor(k=4, always_select=always, never_select=never).fit(X, y)
    support = set(np.flatnonzero(model.support_))
    assert set(always) <= support and not support & set(never) and len(support) <= 4
    free = [j for j in range(10) if j not in always + never]
    centered = X - X.mean(axis=0)
    best = min(
        np.sum(
            (
                y
                - y.mean()
                - centered[:, list(S)] @ np.linalg.lstsq(centered[:, list(S)], y - y.mean())[0]
            )
            ** 2
        )
        for S in (tuple(always) + c for c in combinations(free, 2))
    )
    fitted = np.sum((y - model.predict(X)) ** 2)
    assert fitted <= best * (1 + 1e-9)
    labels = (y > np.median(y)).astype(int)
    spare = int(np.setdiff1d(np.arange(10), truth)[0])
    clf = L0Classifier(k=3, always_select=[spare], never_select=[int(truth[0])]).fit(X, labels)
    chosen = set(np.flatnonzero(clf.support_))
    assert spare in chosen and int(truth[0]) not in chosen and len(chosen) <= 3
    with pytest.raises(ValueError, match="share the features"):
        L0Regressor(always_select=[1], never_select=[1, 2]).fit(X, y)
    with pytest.raises(ValueError, match="smaller than the 3 features"):
        L0Regressor(k=2, always_select=[0, 1, 2]).fit(X, y)
    with pytest.raises(ValueError, match="outside"):
        L0Regressor(k=2, never_select=[10]).fit(X, y)
    with pytest.raises(TypeError, match="integer feature indices"):
        ForcedSelection(2, always_select=[0.5])


def test_forced_sets_in_cross_validation_and_information_criteria():
    """L0RegressorCV and L0RegressorIC honour always_select / never_select on every
    budget of their path (k counting the forced features), their chosen model equals
    L0Regressor's at the chosen k with the same sets, and the path's objectives never
    rise with k (the warm starts of solve_path with ForcedSelection budgets)."""
    from chita_opt import solve_path
    from chita_opt._fitting import centered_problem, path_budgets
    from chita_opt.problems import ForcedSelection

    X, y, truth = _data(seed=4, n=150, p=15, k=4)
    spare = [int(j) for j in np.setdiff1d(np.arange(15), truth)[:2]]
    always, never = spare, [int(truth[0])]
    for model in (
        L0RegressorCV(ks=range(2, 9), always_select=always, never_select=never, cv=3),
        L0RegressorIC(always_select=always, never_select=never, criterion="bic"),
    ):
        model.fit(X, y)
        support = set(np.flatnonzero(model.support_))
        assert set(always) <= support and not support & set(never)
        assert len(support) <= model.k_
        single = L0Regressor(k=model.k_, always_select=always, never_select=never).fit(X, y)
        np.testing.assert_allclose(model.coef_, single.coef_, rtol=1e-6, atol=1e-9)
    # the default grid starts at the forced features' count
    ic = L0RegressorIC(always_select=always, never_select=never).fit(X, y)
    assert ic.ks_[0] == len(always) and ic.ks_.max() == 15 - len(never)
    budgets = path_budgets(None, 15, always, never)
    assert all(isinstance(b, ForcedSelection) for b in budgets)
    problem, _, _ = centered_problem(X, y, budgets[0], 0.0, True)
    objectives = [r.objective for r in solve_path(problem, budgets)]
    assert all(b <= a * (1 + 1e-12) for a, b in itertools.pairwise(objectives))
    with pytest.raises(ValueError, match="below the 2 features of always_select"):
        L0RegressorCV(ks=[1, 3], always_select=always).fit(X, y)


def test_cv_over_ridges_and_budgets_together():
    X, y, _ = _data(seed=4, n=60, p=30, k=5, snr=2.0)
    cv = L0RegressorCV(ks=[2, 4, 6], ridge=[0.0, 1.0, 30.0], cv=3).fit(X, y)
    results = cv.cv_results_
    assert list(results["k"]) == [2, 4, 6] * 3
    assert list(results["ridge"]) == [0.0] * 3 + [1.0] * 3 + [30.0] * 3
    best = int(np.argmax(results["mean_test_score"]))
    assert (cv.ridge_, cv.k_) == (results["ridge"][best], results["k"][best])
    assert cv.best_score_ == results["mean_test_score"][best]
    refit = L0Regressor(k=cv.k_, ridge=cv.ridge_).fit(X, y)
    np.testing.assert_allclose(cv.coef_, refit.coef_)
    single = L0RegressorCV(ks=[2, 4], ridge=[1.0], cv=3).fit(X, y)
    scalar = L0RegressorCV(ks=[2, 4], ridge=1.0, cv=3).fit(X, y)
    np.testing.assert_allclose(
        single.cv_results_["mean_test_score"], scalar.cv_results_["mean_test_score"]
    )
    sparse = L0RegressorCV(ks=[2, 4, 6], ridge=[0.0, 1.0], cv=3, rule="one_standard_error")
    assert sparse.fit(X, y).k_ <= L0RegressorCV(ks=[2, 4, 6], ridge=[0.0, 1.0], cv=3).fit(X, y).k_
    with pytest.raises(ValueError, match="ridge"):
        L0RegressorCV(ridge=[]).fit(X, y)
    with pytest.raises(ValueError, match="ridge"):
        L0RegressorCV(ridge=[1.0, -1.0]).fit(X, y)
