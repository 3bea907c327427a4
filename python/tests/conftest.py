"""Shared fixtures: the golden data (../shared/golden through CLIP_SURGERY_SHARED)
and the tiny models the goldens were computed with."""
import json
import os

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def shared_dir():
    """The shared data folder, or a skip (a failure under CI=true)."""
    d = os.environ.get("CLIP_SURGERY_SHARED") or os.path.join(ROOT, "..", "shared")
    if not os.path.isdir(os.path.join(d, "golden")):
        msg = f"golden data absent ({d}/golden; set CLIP_SURGERY_SHARED)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return d


@pytest.fixture(scope="session")
def shared():
    return shared_dir()


@pytest.fixture(scope="session")
def golden(shared):
    return os.path.join(shared, "golden")


@pytest.fixture(scope="session")
def manifest(golden):
    with open(os.path.join(golden, "MANIFEST.json")) as f:
        return json.load(f)


@pytest.fixture(scope="session")
def vocab(shared):
    return os.path.join(shared, "clip", "bpe_simple_vocab_16e6.txt.gz")


@pytest.fixture(scope="session")
def tiny_vit(golden, vocab):
    import clip_surgery as cs
    # The embedding cache off: every embedding in these tests is computed.
    return cs.load(os.path.join(golden, "tiny-vit", "model.safetensors"), vocab=vocab,
                   embedding_cache=False)


def assert_close(actual, golden_array, tol, what):
    """The manifests' allclose: max|a - b| / max|golden| and the cosine, in float64."""
    a = np.asarray(actual, np.float64).reshape(-1)
    g = np.asarray(golden_array, np.float64).reshape(-1)
    assert a.shape == g.shape, f"{what}: {a.shape} vs {g.shape}"
    assert np.all(np.isfinite(a)), f"{what}: NaN or Inf"
    rel = np.max(np.abs(a - g)) / np.max(np.abs(g))
    cos = a @ g / (np.linalg.norm(a) * np.linalg.norm(g))
    assert rel <= tol["max_abs_err_over_max_abs_golden"], f"{what}: rel err {rel:.3g}"
    assert cos >= tol["min_cosine"], f"{what}: cosine {cos:.8f}"


class Golden:
    """One set's files with their manifest tolerances."""

    def __init__(self, folder, files, prefix=""):
        self.folder, self.files, self.prefix = folder, files, prefix

    def load(self, name):
        return np.load(os.path.join(self.folder, name))

    def check(self, actual, name):
        entry = self.files[self.prefix + name]
        g = self.load(name)
        tol = entry["tolerance"]
        if tol["compare"] == "exact":
            a = np.asarray(actual)
            assert a.shape == g.shape and np.array_equal(a, g), f"{name}: not equal"
        else:
            assert_close(np.asarray(actual).reshape(g.shape), g, tol, name)


@pytest.fixture(scope="session")
def vit_golden(golden, manifest):
    return Golden(os.path.join(golden, "tiny-vit"), manifest["sets"]["tiny-vit"]["files"],
                  "tiny-vit/")


@pytest.fixture(scope="session")
def inputs(golden):
    return os.path.join(golden, "inputs")
