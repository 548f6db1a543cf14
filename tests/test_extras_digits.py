"""canocaps.extras.digits: the one digits loader of the extras (DNI, mechanics) and its splits."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from canocaps.errors import CanocapsInputError
from canocaps.extras.digits import DIGITS_SPLIT_METHODS, TensorPairDataset, load_digits


def _rows(ds):
    return [tuple(r) for r in ds.x.reshape(len(ds), -1).numpy().round(4).tolist()]


@pytest.mark.parametrize("method", DIGITS_SPLIT_METHODS)
def test_splits_partition_the_1797_images(method):
    tr, te, al = (load_digits(s, method=method) for s in ("train", "test", "all"))
    assert len(tr) + len(te) == len(al) == 1797
    assert sorted(_rows(tr) + _rows(te)) == sorted(_rows(al))
    torch.testing.assert_close(load_digits("test", method=method).x, te.x)  # deterministic
    assert load_digits("val", method=method).x.shape == te.x.shape  # "val" is the held-out part


def test_stratified_split_keeps_class_proportions():
    tr, te = load_digits("train"), load_digits("test")
    assert len(te) == 359
    full = np.bincount(load_digits("all").y.numpy()) / 1797
    assert np.abs(np.bincount(te.y.numpy(), minlength=10) / len(te) - full).max() < 0.01
    other = load_digits("test", seed=1)
    assert not torch.equal(other.x, te.x)


def test_permutation_methods_are_the_documented_experiments_splits():
    """randperm: held-out = first round(0.2 N) of torch.randperm (DNI); rng_permutation: train =
    first int(0.8 N) of numpy's default_rng permutation (mechanics)."""
    from sklearn.datasets import load_digits as sk

    x = torch.as_tensor(sk().data / 16.0, dtype=torch.float32)
    perm = torch.randperm(1797, generator=torch.Generator().manual_seed(0))
    assert torch.equal(load_digits("test", method="randperm").x, x[perm[:359]])
    rng_perm = np.random.default_rng(0).permutation(1797)
    mech = load_digits("train", method="rng_permutation", dtype=torch.float64, flatten=False)
    assert mech.x.shape == (1437, 1, 8, 8) and mech.x.dtype == torch.float64
    assert torch.equal(mech.x.reshape(1437, 64).float(), x[torch.as_tensor(rng_perm[:1437])])


def test_errors_and_dataset_class():
    with pytest.raises(CanocapsInputError, match="split method"):
        load_digits("train", method="shuffle")
    with pytest.raises(CanocapsInputError, match="split"):
        load_digits("dev")
    with pytest.raises(CanocapsInputError, match="test_fraction"):
        load_digits("train", test_fraction=1.0)
    ds = TensorPairDataset(torch.zeros(3, 2, dtype=torch.int64), torch.tensor([0, 2, 1]))
    assert ds.x.dtype == torch.float32 and ds.num_classes == 3 and set(ds[1]) == {"x", "y"}
    with pytest.raises(CanocapsInputError, match="2 labels"):
        TensorPairDataset(torch.zeros(3, 2), torch.zeros(2))
