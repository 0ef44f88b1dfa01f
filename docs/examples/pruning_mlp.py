"""Prune a small PyTorch MLP with magnitude pruning, CHITA, CHITA with layer-wise
reconstruction and CHITA++, then fine-tune."""

import copy

import torch
import torch.nn.functional as F

from chita_opt.pruning import apply_masks, prune
from chita_opt.pruning.digits import MLPNet, accuracy, load_digits_data, train

torch.manual_seed(0)
data = load_digits_data("sklearn")  # 8x8 digits, shipped with scikit-learn
model = train(MLPNet(n_inputs=64), data.X_train, data.y_train, epochs=40)
print("dense accuracy:", round(accuracy(model, data.X_test, data.y_test), 3))

fisher_data = (data.X_train, data.y_train)  # the first 1,000 samples build the Fisher
for label, options in [
    ("magnitude", dict(method="magnitude")),
    ("CHITA", dict(method="chita")),
    # the Fisher's count per layer (or a blend toward uniform, by calibration loss), each
    # layer pruned to it by layer-wise reconstruction
    ("CHITA-rec", dict(method="chita", reconstruct=True)),
    ("CHITA++", dict(method="chita", stages=10)),
]:
    pruned = copy.deepcopy(model)
    result = prune(pruned, fisher_data, F.cross_entropy, sparsity=0.9, **options)
    acc = accuracy(pruned, data.X_test, data.y_test)
    print(
        f"{label:>9}: sparsity {result.sparsity:.2f}, accuracy {acc:.3f}, {result.total_time:.1f} s"
    )

# keep the pruned weights at zero while fine-tuning
apply_masks(pruned, result.masks)
optimizer = torch.optim.Adam(pruned.parameters(), lr=1e-3)
for _ in range(3):
    for start in range(0, len(data.X_train), 100):
        optimizer.zero_grad()
        batch = slice(start, start + 100)
        F.cross_entropy(pruned(data.X_train[batch]), data.y_train[batch]).backward()
        optimizer.step()
print(
    "CHITA++ after 3 epochs of fine-tuning:", round(accuracy(pruned, data.X_test, data.y_test), 3)
)
