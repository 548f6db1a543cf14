"""canocaps.extras.dni.data: MNIST IDX reader on files written here, digits split."""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from canocaps.errors import CanocapsInputError
from canocaps.extras.dni.data import RepeatedBatch, load_dataset, load_digits, load_mnist, read_idx, regression_data


def _write_idx(path, array: np.ndarray, magic: int, gz: bool = False) -> None:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def _mnist_folder(root, n_train=5, n_test=3, gz=False):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n, (img, lbl) in (("train", n_train, ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")),
                                 ("test", n_test, ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        sfx = ".gz" if gz else ""
        _write_idx(root / (img + sfx), images, 2051, gz)
        _write_idx(root / (lbl + sfx), labels, 2049, gz)
        arrays[split] = (images, labels)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_reads_written_idx_files(tmp_path, gz):
    arrays = _mnist_folder(tmp_path, gz=gz)
    for split in ("train", "test"):
        images, labels = arrays[split]
        ds = load_mnist(tmp_path, split)
        assert ds.x.shape == (len(labels), 784) and ds.x.dtype == torch.float32
        np.testing.assert_allclose(ds.x.numpy(), images.reshape(len(labels), -1) / 255.0, rtol=0, atol=1e-7)
        np.testing.assert_array_equal(ds.y.numpy(), labels)
        item = ds[1]
        assert item["x"].shape == (784,) and item["y"].dtype == torch.int64
    img = load_mnist(tmp_path, "test", flatten=False)
    assert img.x.shape == (3, 1, 28, 28)


def test_read_idx_big_endian_dims(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a", a, 2051)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), a)
    # a dimension >= 256 exercises the big-endian header
    b = np.arange(300, dtype=np.uint8)
    _write_idx(tmp_path / "b", b, 2049)
    assert read_idx(tmp_path / "b").shape == (300,)


def test_mnist_errors(tmp_path):
    with pytest.raises(CanocapsInputError, match="does not exist"):
        load_mnist(tmp_path / "nope")
    with pytest.raises(CanocapsInputError, match="train-images-idx3-ubyte.*not found"):
        load_mnist(tmp_path)
    _mnist_folder(tmp_path)
    bad = tmp_path / "train-labels-idx1-ubyte"
    bad.write_bytes(b"\x12\x34\x08\x01" + bad.read_bytes()[4:])
    with pytest.raises(CanocapsInputError, match="bad magic"):
        load_mnist(tmp_path)
    _write_idx(bad, np.zeros(4, dtype=np.uint8), 2049)  # 4 labels for 5 images
    with pytest.raises(CanocapsInputError, match="5 images"):
        load_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, 3, 28, 28) + b"\0" * 10)
    with pytest.raises(CanocapsInputError, match="header says"):
        load_mnist(tmp_path, "test")
    with pytest.raises(CanocapsInputError, match="split"):
        load_mnist(tmp_path, "val")
    with pytest.raises(CanocapsInputError, match="mnist-dir"):
        load_dataset("mnist", "train")


def test_mnist_error_message_is_one_line(tmp_path):
    with pytest.raises(CanocapsInputError) as info:
        load_mnist(tmp_path)
    assert "\n" not in str(info.value)


def test_digits_split_is_deterministic_and_disjoint():
    tr, te = load_digits("train"), load_digits("test")
    assert len(tr) + len(te) == 1797 and len(te) == 359
    assert tr.x.shape[1] == 64 and 0.0 <= float(tr.x.min()) and float(tr.x.max()) <= 1.0
    assert tr.num_classes == 10
    rows_tr = {tuple(r) for r in tr.x.numpy().round(4).tolist()}
    rows_te = [tuple(r) for r in te.x.numpy().round(4).tolist()]
    assert sum(r in rows_tr for r in rows_te) < 5  # (a few digits images are exact duplicates)
    torch.testing.assert_close(load_digits("test").x, te.x)
    assert load_digits("test", flatten=False).x.shape == (359, 1, 8, 8)


def test_regression_data_and_repeated_batch():
    x, y = regression_data(20, 4, 3, noise=0.0, rank=1, seed=3)
    assert torch.linalg.matrix_rank(y) == 1
    x2, _ = regression_data(20, 4, 3, noise=0.0, rank=1, seed=3)
    torch.testing.assert_close(x, x2)
    rb = RepeatedBatch({"x": x, "y": y}, 7)
    assert len(rb) == 7 and rb[6]["x"] is x
    with pytest.raises(IndexError):
        rb[7]
    with pytest.raises(CanocapsInputError):
        regression_data(20, 4, 3, rank=5)
