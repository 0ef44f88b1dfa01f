"""Fixtures shared by the pruning tests (torch is imported only when they are used)."""

import pytest


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits, split for training and held-out accuracy."""
    pytest.importorskip("torch")
    from chita_opt.pruning.digits import load_digits_data

    return load_digits_data("sklearn", seed=0)


@pytest.fixture(scope="session")
def trained(digits):
    """The demo MLP (64-40-20-10) trained on the digits; tests copy it before changing it."""
    import torch

    from chita_opt.pruning.digits import MLPNet, train

    torch.manual_seed(0)
    return train(MLPNet(n_inputs=64), digits.X_train, digits.y_train, epochs=40, seed=0)
