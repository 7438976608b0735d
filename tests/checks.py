"""Comparison helpers whose failures read at a glance: max diff, where, and the first differing pairs."""

import numpy as np


def describe_difference(actual, expected, atol, rtol=0.0, label="") -> str | None:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        return f"{label}: shape {actual.shape} != expected {expected.shape}"
    diff = np.abs(actual - expected)
    bad = diff > atol + rtol * np.abs(expected)
    if not bad.any():
        return None
    where = np.unravel_index(np.argmax(diff), diff.shape)
    first = [tuple(int(i) for i in idx) for idx in np.argwhere(bad)[:5]]
    pairs = ", ".join(f"{i}: {actual[i]:.9g} vs {expected[i]:.9g}" for i in first)
    return (f"{label}: {int(bad.sum())} of {bad.size} values differ; max |diff| {diff.max():.3g} at {tuple(map(int, where))} "
            f"(atol {atol:g}, rtol {rtol:g}); first: {pairs}")


def assert_close(actual, expected, atol, rtol=0.0, label="values"):
    message = describe_difference(actual, expected, atol, rtol, label)
    assert message is None, message


def cosine_rows(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-300)
