"""Loaders read the official formats; bad files give errors naming the file."""

import hashlib
import http.server
import io
import shutil
import struct
import threading

import numpy as np
import pytest
from datagen import make_cifar, make_folder, make_mnist, write_idx

from inna_optax.training import DataError, data, images, loaders


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
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*truncated"):
        data.load("mnist", tmp_path)


def test_mnist_bad_magic_and_bad_labels(tmp_path):
    make_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04" + b"\0" * 20)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.*not an IDX"):
        data.load("mnist", tmp_path)
    make_mnist(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(64, 12))
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.*\[0, 10\)"):
        data.load("mnist", tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(63))
    with pytest.raises(DataError, match="63 labels for 64 images"):
        data.load("mnist", tmp_path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*not found"):
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
    with pytest.raises(DataError, match="data_batch_3"):
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
    with pytest.raises(DataError, match="test/dog/0001.png"):
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
    with pytest.raises(DataError, match="SHA-256"):
        data.download(
            "mnist",
            cache,
            sources=[(f"{url}/train-images-idx3-ubyte.gz", "0" * 64)],
            progress=False,
        )
    assert list(cache.iterdir()) == []
    with pytest.raises(DataError, match="missing.gz: download failed"):
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
    with pytest.raises(DataError, match="10 classes, cifar100 has 100"):
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
    with pytest.raises(DataError, match="data_batch_1.*not allowed"):
        loaders.load_cifar(root)
    assert not victim.exists()
    # the official files' contents (dicts, lists, bytes, NumPy arrays) still load
    make_cifar(tmp_path / "ok")
    assert loaders.load_cifar(tmp_path / "ok").x_train.shape == (40, 32, 32, 3)


# ------------------------------------------------- decoding what it cannot represent
def _png(array, mode=None) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _folder_of(tmp_path, train: bytes, test: bytes):
    """Two classes, a and b, each with the one image `train` (`test`)."""
    for split, raw in (("train", train), ("test", test)):
        for cls in "ab":
            (tmp_path / split / cls).mkdir(parents=True)
            (tmp_path / split / cls / "0.png").write_bytes(raw)
    return tmp_path


def test_16_bit_gray_pngs_are_scaled_not_wrapped(tmp_path):
    raw = _png(np.full((4, 4), 2342, np.uint16))  # 2342 / 257 = 9.1; mod 256 = 38
    ds = images.load_folder(_folder_of(tmp_path, raw, raw))
    assert ds.x_train.shape == (2, 4, 4, 1)
    assert np.all(ds.x_train == 9)
    white = images.load_folder(
        _folder_of(tmp_path / "w", *[_png(np.full((2, 2), 65535, np.uint16))] * 2)
    )
    assert np.all(white.x_train == 255)


def test_palette_pngs_are_read_as_their_colours(tmp_path):
    from PIL import Image

    img = Image.new("P", (3, 3))
    img.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    img.putpixel((1, 1), 1)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    ds = images.load_folder(_folder_of(tmp_path, buf.getvalue(), buf.getvalue()))
    assert ds.x_train.shape == (2, 3, 3, 3)
    assert ds.x_train[0, 1, 1].tolist() == [200, 100, 50]
    assert ds.x_train[0, 0, 0].tolist() == [0, 0, 0]


def test_float_images_are_refused_naming_the_file_and_mode():
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ones((2, 2), np.float32), mode="F").save(buf, format="TIFF")
    with pytest.raises(DataError, match=r"x\.tif: image mode F \(32-bit float\)"):
        images._decode_image("x.tif", buf.getvalue(), Image)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.random.default_rng(0).random((2, 3072)), r"float64 in \[0"),
        (np.full((2, 3072), 1000, np.int16), r"int16 in \[1000, 1000\]"),
        (np.full((2, 3072), -1, np.int64), r"int64 in \[-1, -1\]"),
    ],
)
def test_cifar_data_that_is_not_uint8_pixels_is_refused(tmp_path, array, message):
    import pickle

    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (d / name).write_bytes(pickle.dumps({b"data": array, b"labels": [0, 1]}))
    with pytest.raises(DataError, match=message) as e:
        loaders.load_cifar(tmp_path)
    assert "data_batch_1" in str(e.value)


def test_cifar_integer_data_within_0_255_is_accepted(tmp_path):
    import pickle

    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": np.full((2, 3072), 200, np.int64), b"labels": [0, 1]}
        (d / name).write_bytes(pickle.dumps(batch))
    assert np.all(loaders.load_cifar(tmp_path).x_train == 200)


def test_mnist_test_images_of_another_size_are_refused(tmp_path):
    make_mnist(tmp_path, n_train=8, n_test=4)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((4, 20, 20), np.uint8), gz=True)
    with pytest.raises(DataError, match="test images are 20x20x1, the training images 28x28x1"):
        data.load("mnist", tmp_path)


@pytest.mark.parametrize("target", ["cifar-10-batches-py/test_batch", "/etc/passwd"])
def test_cifar_archive_members_that_are_links_are_refused(tmp_path, target):
    import tarfile

    path, contents = make_cifar(tmp_path / "src", as_tar=True)
    bad = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path) as src, tarfile.open(bad, "w:gz") as dst:
        for member in src.getmembers():
            if member.name.endswith("data_batch_1"):
                link = tarfile.TarInfo(member.name)
                link.type, link.linkname = tarfile.SYMTYPE, target
                dst.addfile(link)
            else:
                dst.addfile(member, src.extractfile(member))
    with pytest.raises(DataError, match=f"data_batch_1: is a link \\(to '{target}'\\)"):
        loaders.load_cifar(bad)


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    import tracemalloc
    import zipfile

    folder = make_folder(tmp_path / "ok", per_class=1)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(folder.rglob("*.png")):
            z.write(p, p.relative_to(folder))
        z.writestr("train/cat/huge.png", b"\0" * (64 << 20))  # 64 MiB of zeros, 64 KiB zipped
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    with pytest.raises(DataError, match=r"huge\.png: inflates to 67,108,864 bytes"):
        images.load_folder(bomb, archive_limit=16 << 20)  # a member at most 4 MiB
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 << 20


def test_archives_within_the_limit_load_and_the_total_is_bounded(tmp_path):
    path = make_folder(tmp_path, per_class=3, as_zip=True)
    assert images.load_folder(path).x_train.shape[0] == 6
    with pytest.raises(DataError, match="inflates to"):
        images.load_folder(path, archive_limit=1000)  # the images' total is more


def test_more_examples_than_the_data_set_has_are_refused_when_strict():
    from inna_optax.training import Config, prepare

    with pytest.raises(DataError, match="--train-examples: 100,000 asked, digits has 1,437"):
        prepare(Config(train_examples=100_000), strict=True)
    assert len(prepare(Config(train_examples=100_000)).x_train) == 1437  # presets: all of it


@pytest.mark.parametrize(
    "labels, message",
    [
        ([3.7, 1.0], r"labels must be integers, got float64 \(e.g. 3.7\)"),  # was trained as 3
        (["cat", "dog"], "labels must be integers, found 'cat'"),
        ([None, 1], "labels must be integers, found None"),
        ({0: 1, 1: 2}, "labels must be a flat list of integers, got a dict"),
        ([2**70, 1], "labels must be integers, found 1180591620717411303424"),
        ([[0, 1], [1]], r"labels must be a flat list of integers, found \[0, 1\]"),
        ([[0, 1], [1, 0]], r"got shape \(2, 2\)"),
    ],
)
def test_cifar_labels_that_are_not_integers_are_refused_in_one_line(tmp_path, labels, message):
    import pickle

    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": labels}
        (d / name).write_bytes(pickle.dumps(batch))
    with pytest.raises(DataError, match=message):
        loaders.load_cifar(tmp_path)


def test_cifar_labels_that_are_whole_floats_are_read_as_integers(tmp_path):
    import pickle

    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [3.0, 7.0]}
        (d / name).write_bytes(pickle.dumps(batch))
    assert loaders.load_cifar(tmp_path).y_train.tolist() == [3, 7] * 5


def test_an_idx_header_claiming_more_than_int64_holds_is_refused(tmp_path):
    # 2^31 x 2^31 x 4 bytes: its product wraps to 0 in int64, which matched no data
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", 2**31, 2**31, 4))
    with pytest.raises(DataError, match="needs 18446744073709551616 bytes of data, found 0"):
        loaders.read_idx(path)


def test_an_image_folder_of_one_class_is_refused(tmp_path):
    make_folder(tmp_path, classes=("cat",), per_class=2)
    with pytest.raises(DataError, match=r"train/ has one class \(cat\)"):
        images.load_folder(tmp_path)


def test_an_image_in_a_folder_below_its_class_is_refused_naming_it(tmp_path):
    make_folder(tmp_path, per_class=2)
    (tmp_path / "train" / "cat" / "sub").mkdir()
    shutil.copy(tmp_path / "train" / "cat" / "0000.png", tmp_path / "train" / "cat" / "sub")
    with pytest.raises(DataError, match="train/cat/sub/0000.png: images must lie directly in"):
        images.load_folder(tmp_path)


def test_every_image_pillow_reads_is_loaded_and_other_files_are_named(tmp_path, capsys):
    from PIL import Image

    make_folder(tmp_path, per_class=2)
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "train" / "cat" / "red.bmp")
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "train" / "cat" / ".DS_Store").write_bytes(b"\0")
    ds = images.load_folder(tmp_path)
    assert len(ds.x_train) == 5  # the .bmp among the PNGs, before skipped silently
    assert (ds.x_train == [255, 0, 0]).all(axis=(1, 2, 3)).sum() == 1
    err = capsys.readouterr().err
    note = "skipped 1 file that is not an image under train/ or test/ (first: train/cat/notes.txt)"
    assert err == f"note: {tmp_path}: {note}\n"
