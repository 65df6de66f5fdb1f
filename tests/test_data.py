"""Loaders read the official formats; bad files give errors naming the file."""

import hashlib
import http.server
import threading

import numpy as np
import pytest
from datagen import make_cifar, make_folder, make_mnist, write_idx

from inna_optax.training import data


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_round_trip(tmp_path, gz):
    written = make_mnist(tmp_path, gz=gz)
    ds = data.load("mnist", tmp_path)
    np.testing.assert_array_equal(ds.x_train[..., 0], written["train"][0])
    np.testing.assert_array_equal(ds.y_test, written["t10k"][1])
    assert ds.x_train.shape == (64, 28, 28, 1) and ds.num_classes == 10


def test_mnist_truncated_file_names_the_file(tmp_path):
    make_mnist(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte.*truncated"):
        data.load("mnist", tmp_path)


def test_mnist_bad_magic_and_bad_labels(tmp_path):
    make_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04" + b"\0" * 20)
    with pytest.raises(data.DataError, match="t10k-images-idx3-ubyte.*not an IDX"):
        data.load("mnist", tmp_path)
    make_mnist(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(64, 12))
    with pytest.raises(data.DataError, match=r"train-labels-idx1-ubyte.*\[0, 10\)"):
        data.load("mnist", tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(63))
    with pytest.raises(data.DataError, match="63 labels for 64 images"):
        data.load("mnist", tmp_path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte.*not found"):
        data.load("mnist", tmp_path)


@pytest.mark.parametrize("which", ["cifar10", "cifar100"])
@pytest.mark.parametrize("as_tar", [False, True])
def test_cifar_pickles_directory_or_tar(tmp_path, which, as_tar):
    source, contents = make_cifar(tmp_path, which, as_tar=as_tar)
    ds = data.load(which, source)
    first = next(iter(contents.values()))
    assert ds.x_train.shape == ((40 if which == "cifar10" else 8), 32, 32, 3)
    np.testing.assert_array_equal(ds.x_train[0], first[1][0].reshape(3, 32, 32).transpose(1, 2, 0))
    assert ds.y_train[:8].tolist() == first[2]
    assert ds.num_classes == (10 if which == "cifar10" else 100)


def test_cifar_corrupted_batch_is_named(tmp_path):
    source, _ = make_cifar(tmp_path, "cifar10")
    (source / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(data.DataError, match="data_batch_3"):
        data.load("cifar10", source)


@pytest.mark.parametrize("as_zip", [False, True])
def test_image_folder_directory_or_zip(tmp_path, as_zip):
    source = make_folder(tmp_path / "imgs", as_zip=as_zip)
    ds = data.load("folder", source)
    assert ds.x_train.shape == (6, 8, 8, 3) and ds.x_test.shape == (6, 8, 8, 3)
    assert ds.num_classes == 2 and sorted(set(ds.y_train.tolist())) == [0, 1]


def test_image_folder_bad_image_is_named(tmp_path):
    source = make_folder(tmp_path / "imgs")
    (source / "test" / "dog" / "0001.png").write_bytes(b"garbage")
    with pytest.raises(data.DataError, match="test/dog/0001.png"):
        data.load("folder", source)


def test_embedded_digits_default():
    ds = data.load("digits")
    assert ds.x_train.shape[1:] == (8, 8, 1) and len(ds.x_train) + len(ds.x_test) == 1797


@pytest.fixture
def http_server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_verifies_sha256_and_loads(tmp_path, http_server):
    root, url = http_server
    make_mnist(root)
    sources = [
        (f"{url}/{p.name}", hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.iterdir())
    ]
    cache = data.download("mnist", tmp_path / "cache", sources=sources, progress=False)
    assert data.load("mnist", cache).x_train.shape == (64, 28, 28, 1)
    # A second call finds the verified files and fetches nothing.
    for p in root.iterdir():
        p.unlink()
    data.download("mnist", cache, sources=sources, progress=False)


def test_download_of_corrupted_file_leaves_no_partial_file(tmp_path, http_server):
    root, url = http_server
    (root / "train-images-idx3-ubyte.gz").write_bytes(b"corrupted bytes")
    cache = tmp_path / "cache"
    with pytest.raises(data.DataError, match="SHA-256"):
        data.download(
            "mnist",
            cache,
            sources=[(f"{url}/train-images-idx3-ubyte.gz", "0" * 64)],
            progress=False,
        )
    assert list(cache.iterdir()) == []
    with pytest.raises(data.DataError, match="missing.gz: download failed"):
        data.download("mnist", cache, sources=[(f"{url}/missing.gz", "0" * 64)], progress=False)
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("as_zip", [False, True])
def test_cifar10_as_image_folder(tmp_path, as_zip):
    """`--dataset cifar10` takes the JPEG/PNG image-folder layout too (directory or .zip)."""
    classes = [f"c{i}" for i in range(10)]
    make_folder(tmp_path, classes=classes, per_class=1, as_zip=as_zip)
    ds = data.load("cifar10", tmp_path)
    assert ds.num_classes == 10 and ds.x_train.shape == (10, 8, 8, 3)
    assert ds.name.startswith("cifar10:")
    with pytest.raises(data.DataError, match="10 classes, cifar100 has 100"):
        data.load("cifar100", tmp_path)


def test_subset_draws_every_class_from_a_sorted_folder():
    """A class-by-class listing (as image folders give) still yields all classes."""
    x = np.arange(100)[:, None]
    y = np.repeat(np.arange(10), 10).astype(np.int32)
    xs, ys = data.subset(x, y, 30)
    assert len(xs) == 30 and len(set(ys.tolist())) > 5
    np.testing.assert_array_equal(xs[:, 0] // 10, ys)  # pairs kept together
    assert data.subset(x, y, None)[0] is x and data.subset(x, y, 500)[0] is x
    np.testing.assert_array_equal(data.subset(x, y, 30)[0], xs)  # deterministic


class _Payload:
    """Unpickling this calls os.mkdir: what a crafted CIFAR file could do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import os

        return (os.mkdir, (self.path,))


def test_cifar_unpickler_refuses_code_before_running_it(tmp_path):
    import pickle

    from datagen import make_cifar

    root, _ = make_cifar(tmp_path / "c")
    victim = tmp_path / "pwned"
    batch = root / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": _Payload(str(victim)), b"labels": [0]}))
    with pytest.raises(data.DataError, match="data_batch_1.*not allowed"):
        data.load_cifar(root)
    assert not victim.exists()
    # the official files' contents (dicts, lists, bytes, NumPy arrays) still load
    make_cifar(tmp_path / "ok")
    assert data.load_cifar(tmp_path / "ok").x_train.shape == (40, 32, 32, 3)
