"""Best-subset regression with L0Regressor, and k chosen by cross-validation."""

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from chita_opt import L0Regressor, L0RegressorCV
from chita_opt.problems import make_toeplitz_regression

# a correlated design with 8 true features out of 300
inst = make_toeplitz_regression(n=400, p=300, k=8, rho=0.7, snr=10.0, seed=0)
X, y = inst.problem.A, inst.problem.y + 3.0
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

model = make_pipeline(StandardScaler(), L0Regressor(k=8, ridge=1e-3))
model.fit(X_train, y_train)
chosen = np.flatnonzero(model[-1].support_)
print("held-out R^2:", round(model.score(X_test, y_test), 3))
print("true features found:", len(set(chosen) & set(inst.true_support)), "of 8")

# choose k by 5-fold cross-validation over a warm-started path
cv = L0RegressorCV(ks=range(1, 16), cv=5, rule="one_standard_error").fit(X_train, y_train)
print("k chosen by cross-validation:", cv.k_)
assert cv.k_ == 8
