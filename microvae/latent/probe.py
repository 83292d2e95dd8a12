"""A linear probe: how well do embeddings separate labels (e.g. phenotypes)?

Multinomial logistic regression on standardised embeddings (L2-regularised, full-batch
gradient descent: deterministic, no extra dependency), fitted on one set of tiles and scored
on another. Split by image or file, not by tile: neighbouring tiles of one image share more
than their label, and a probe scored on them would flatter the embedding.
"""

from __future__ import annotations

import numpy as np

__all__ = ["linear_probe", "split_by_group"]


def linear_probe(
    x_train: np.ndarray,
    y_train,
    x_test: np.ndarray,
    y_test,
    *,
    l2: float = 1e-2,
    steps: int = 2000,
    lr: float = 0.1,
) -> float:
    """Accuracy (0-1) on the test set of a linear classifier fitted on the training set.

    Args:
        x_train, x_test: embeddings (N, D).
        y_train, y_test: labels (N,), any hashable values; every test label must occur in
            training.
    """
    x_train, x_test = np.asarray(x_train, np.float64), np.asarray(x_test, np.float64)
    classes = sorted(set(map(str, y_train)))
    index = {c: i for i, c in enumerate(classes)}
    unknown = set(map(str, y_test)) - set(classes)
    if unknown:
        raise ValueError(f"test labels {sorted(unknown)} do not occur in the training set")
    if len(classes) < 2:
        raise ValueError("a probe needs at least two labels in the training set")
    ya = np.array([index[str(v)] for v in y_train])
    yb = np.array([index[str(v)] for v in y_test])
    mu, sd = x_train.mean(0), x_train.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    a = np.c_[(x_train - mu) / sd, np.ones(len(x_train))]
    b = np.c_[(x_test - mu) / sd, np.ones(len(x_test))]
    onehot = np.eye(len(classes))[ya]
    w = np.zeros((a.shape[1], len(classes)))
    for _ in range(steps):
        logits = a @ w
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        w -= lr * (a.T @ (p - onehot) / len(a) + l2 * w)
    return float(np.mean(np.argmax(b @ w, axis=1) == yb))


def split_by_group(groups, labels) -> tuple[np.ndarray, np.ndarray] | None:
    """Boolean train/test masks that put whole groups (e.g. files) on one side, alternating
    the groups of each label between the sides; None when a label has fewer than 2 groups."""
    groups, labels = np.asarray([str(g) for g in groups]), np.asarray([str(v) for v in labels])
    train = np.zeros(len(groups), bool)
    for lab in sorted(set(labels)):
        names = sorted(set(groups[labels == lab]))
        if len(names) < 2:
            return None
        for name in names[::2]:
            train |= groups == name
    return train, ~train
