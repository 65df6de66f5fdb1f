"""Small data files in the official formats, written by the tests themselves."""

import gzip
import io
import pickle
import struct
import tarfile
import zipfile

import numpy as np


def write_idx(path, array, gz=False):
    array = np.asarray(array, np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        ">" + "I" * array.ndim, *array.shape
    )
    raw = header + array.tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)
    return path


def make_mnist(directory, n_train=64, n_test=32, gz=True, seed=0):
    """Digits that a small network can learn: class k lights up row block k."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(y):
            x[i, 2 * label + 4 : 2 * label + 7, 4:24] = 250
        write_idx(directory / f"{split}-images-idx3-ubyte", x, gz)
        write_idx(directory / f"{split}-labels-idx1-ubyte", y, gz)
        out[split] = (x, y)
    return out


def cifar_batch_bytes(n, num_classes, label_key, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
    labels = rng.integers(0, num_classes, n).tolist()
    return pickle.dumps({b"data": data, label_key: labels, b"batch_label": b"test"}), data, labels


def make_cifar(directory, which="cifar10", n=8, as_tar=False):
    if which == "cifar10":
        folder, names, key, classes = (
            "cifar-10-batches-py",
            [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"],
            b"labels",
            10,
        )
    else:
        folder, names, key, classes = "cifar-100-python", ["train", "test"], b"fine_labels", 100
    directory.mkdir(parents=True, exist_ok=True)
    contents = {name: cifar_batch_bytes(n, classes, key, i) for i, name in enumerate(names)}
    if as_tar:
        path = directory / f"{folder.split('-batches')[0].replace('-python', '')}-python.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            for name, (raw, _, _) in contents.items():
                info = tarfile.TarInfo(f"{folder}/{name}")
                info.size = len(raw)
                tar.addfile(info, io.BytesIO(raw))
        return path, contents
    (directory / folder).mkdir(exist_ok=True)
    for name, (raw, _, _) in contents.items():
        (directory / folder / name).write_bytes(raw)
    return directory, contents


def make_folder(directory, classes=("cat", "dog"), per_class=3, as_zip=False, size=(8, 8)):
    from PIL import Image

    files = {}
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in classes:
            for i in range(per_class):
                img = rng.integers(0, 256, (*size, 3)).astype(np.uint8)
                buf = io.BytesIO()
                Image.fromarray(img).save(buf, format="PNG")
                files[f"{split}/{c}/{i:04d}.png"] = buf.getvalue()
    if as_zip:
        path = directory / "images.zip"
        directory.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w") as z:
            for name, raw in files.items():
                z.writestr(name, raw)
        return path
    for name, raw in files.items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(raw)
    return directory
