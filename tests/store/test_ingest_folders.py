"""CINIC-10, TinyImageNet and ImageNet-100 ingest, on tiny PNG / JPEG files written with Pillow in
each data set's exact published layout; bad layouts fail naming the file and write nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from nessa.cli import main
from storage_service.ingest import IngestError, SourceKind, detect_kind, ingest
from storage_service.store import Store

CINIC = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
WNIDS = ["n02124075", "n01443537", "n09246464"]  # wnids.txt order is not sorted; labels follow sorted wnids


def _rgb(seed: int, h: int, w: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png(path, arr) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return arr


def _jpeg(path, seed: int, h: int, w: int, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(_rgb(seed, h, w))
    (img.convert("L") if mode == "L" else img).save(path, "JPEG", quality=90)


def _read(root, split):
    st = Store(root / split)
    x, y = st.take(np.arange(len(st)))
    return st.manifest, x, y


def _nothing_written(tmp_path, dest) -> bool:
    return not dest.exists() and not any(p.name.startswith(f".{dest.name}.") for p in dest.parent.iterdir())


def make_cinic(root, per_class=(2, 1, 1)):
    """CINIC-10: {train,valid,test}/<class>/*.png, 32x32; returns {split: (images CHW, labels)} in
    the order the ingest reads them (class by class, file names sorted within a class)."""
    want, seed = {}, 0
    for split, n in zip(("train", "valid", "test"), per_class):
        rows = []
        for label, cls in enumerate(CINIC):
            for i in range(n):
                seed += 1
                name = f"{'cifar10' if i % 2 else 'n02691156'}-{split}-{i}.png"  # CINIC-10's two name patterns
                rows.append((label, name, _png(root / split / cls / name, _rgb(seed, 32, 32)).transpose(2, 0, 1)))
        rows.sort(key=lambda r: r[:2])
        if rows:
            want[split] = (np.stack([r[2] for r in rows]), np.array([r[0] for r in rows]))
    return want


def make_tiny(root, train_per_class=2, val_per_class=1, test=2):
    """tiny-imagenet-200 layout, 64x64 JPEGs (one of them grey, as in the real set)."""
    root.mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    (root / "words.txt").write_text("n01443537\tgoldfish, Carassius auratus\nn02124075\tEgyptian cat\n"
                                    "n09246464\tcliff, drop, drop-off\nn99999999\tunused\n")
    for w in WNIDS:
        for i in range(train_per_class):
            _jpeg(root / "train" / w / "images" / f"{w}_{i}.JPEG", 100 * WNIDS.index(w) + i, 64, 64, "L" if i == 1 else "RGB")
        (root / "train" / w / f"{w}_boxes.txt").write_text("")
    lines = []
    for k in range(val_per_class * len(WNIDS)):
        w = WNIDS[k % len(WNIDS)]
        _jpeg(root / "val" / "images" / f"val_{k}.JPEG", 1000 + k, 64, 64)
        lines.append(f"val_{k}.JPEG\t{w}\t0\t3\t60\t62")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    for k in range(test):
        _jpeg(root / "test" / "images" / f"test_{k}.JPEG", 2000 + k, 64, 64)
    return root


def make_imagenet100(root, sizes=((80, 60), (50, 90), (64, 64))):
    """ImageNet-100: train/<wnid>/*.JPEG, val/<wnid>/*.JPEG of varying sizes, Labels.json."""
    for j, w in enumerate(WNIDS):
        for i, (h, wd) in enumerate(sizes):
            _jpeg(root / "train" / w / f"{w}_{i}.JPEG", 10 * j + i, h, wd)
        _jpeg(root / "val" / w / f"ILSVRC2012_val_{j:08d}.JPEG", 100 + j, 70, 100)
    (root / "Labels.json").write_text(json.dumps({"n01443537": "goldfish, Carassius auratus", "n02124075": "Egyptian cat",
                                                  "n09246464": "cliff, drop, drop-off"}))
    return root


# --- CINIC-10 ---------------------------------------------------------------------------------


def test_cinic10_all_three_splits_exact_pixels(tmp_path):
    src = tmp_path / "cinic-10"
    want = make_cinic(src)
    assert detect_kind(src) is SourceKind.CINIC10
    made = ingest(src, tmp_path / "c", progress=False)
    assert sorted(made) == ["test", "train", "valid"]
    for split, (x, y) in want.items():
        m, got_x, got_y = _read(tmp_path / "c", split)
        assert tuple(m.sample_shape) == (3, 32, 32) and m.class_names == CINIC and m.extra["source"] == "cinic10"
        assert np.array_equal(got_x, x) and np.array_equal(got_y, y)  # PNG is lossless: exact pixels
        assert m.class_counts == np.bincount(y, minlength=10).tolist()


def test_cinic10_resized_and_grey_images_become_rgb(tmp_path):
    src = tmp_path / "cinic-10"
    make_cinic(src, per_class=(1, 0, 0))  # train/ only: detection needs valid/, so name the kind
    Image.fromarray(_rgb(5, 32, 32)).convert("L").save(src / "train" / "cat" / "grey.png")
    ingest(src, tmp_path / "c", kind="cinic10", image_size=16, progress=False)
    m, x, y = _read(tmp_path / "c", "train")
    assert tuple(m.sample_shape) == (3, 16, 16) and m.extra["image_size"] == 16 and len(y) == 11
    grey = x[int(np.flatnonzero(y == CINIC.index("cat"))[0])]  # "grey.png" sorts before "n02691156-…"
    assert np.array_equal(grey[0], grey[1]) and np.array_equal(grey[1], grey[2])  # stored RGB: R == G == B
    assert not all(np.array_equal(s[0], s[1]) for s in x)  # the colour ones are not


def test_cinic10_loose_image_in_a_split_is_unlabelled(tmp_path):
    src = tmp_path / "cinic-10"
    make_cinic(src, per_class=(1, 1, 0))
    _png(src / "valid" / "stray.png", _rgb(1, 32, 32))
    dest = tmp_path / "c"
    with pytest.raises(IngestError, match=r"valid/stray\.png: an image outside a class folder has no label"):
        ingest(src, dest, progress=False)
    assert _nothing_written(tmp_path, dest)


def test_cinic10_odd_size_image_names_the_file_and_writes_nothing(tmp_path):
    src = tmp_path / "cinic-10"
    make_cinic(src, per_class=(1, 1, 1))
    _png(src / "test" / "truck" / "zz-big.png", _rgb(2, 40, 32))  # in the last split: earlier ones were written
    dest = tmp_path / "c"
    with pytest.raises(IngestError, match=r"test/truck/zz-big\.png: image size 32x40 differs from 32x32"):
        ingest(src, dest, progress=False)
    assert _nothing_written(tmp_path, dest)


def test_cinic10_corrupt_png_names_the_file_and_writes_nothing(tmp_path):
    src = tmp_path / "cinic-10"
    make_cinic(src, per_class=(1, 1, 0))
    (src / "train" / "ship" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    dest = tmp_path / "c"
    with pytest.raises(IngestError, match=r"train/ship/broken\.png: cannot decode image"):
        ingest(src, dest, progress=False)
    assert _nothing_written(tmp_path, dest)


def test_cinic10_unknown_class_in_valid(tmp_path):
    src = tmp_path / "cinic-10"
    make_cinic(src, per_class=(1, 0, 0))
    _png(src / "valid" / "zebra" / "z.png", _rgb(3, 32, 32))
    with pytest.raises(IngestError, match=r"valid/zebra: class folder 'zebra' is not one of the training classes"):
        ingest(src, tmp_path / "c", progress=False)


# --- TinyImageNet ----------------------------------------------------------------------------


def test_tinyimagenet_train_val_labels_from_annotations_names_from_words(tmp_path, capsys):
    src = make_tiny(tmp_path / "tiny-imagenet-200")
    assert detect_kind(src) is SourceKind.TINYIMAGENET
    assert main(["ingest", str(src), str(tmp_path / "t"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "t/train: 6 samples, 3 classes, shape [3, 64, 64] uint8" in printed
    assert "skipped test/images: 2 unlabelled images" in printed
    m, x, y = _read(tmp_path / "t", "train")
    assert m.class_names == ["goldfish, Carassius auratus", "Egyptian cat", "cliff, drop, drop-off"]  # sorted wnids
    assert y.tolist() == [0, 0, 1, 1, 2, 2] and x.dtype == np.uint8
    grey = x[1]  # n01443537_1.JPEG was saved grey: stored as RGB with equal channels
    assert np.array_equal(grey[0], grey[1]) and np.array_equal(grey[1], grey[2])
    m, x, y = _read(tmp_path / "t", "val")
    # val_k is labelled WNIDS[k % 3] in the annotations; sorted wnids: n01443537=0, n02124075=1, n09246464=2
    assert y.tolist() == [1, 0, 2] and "unlabelled" in m.extra["skipped"]
    decoded = np.asarray(Image.open(src / "val" / "images" / "val_2.JPEG").convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(x[2], decoded)  # same decoder, no resize: exact


@pytest.mark.parametrize("breakage, message", [
    (lambda s: _jpeg(s / "val" / "images" / "val_99.JPEG", 9, 64, 64),
     r"val/images/val_99\.JPEG: validation image without a label \(not in .*val_annotations\.txt\)"),
    (lambda s: (s / "val" / "val_annotations.txt").write_text(
        (s / "val" / "val_annotations.txt").read_text() + "val_0.JPEG\tn01443537\t0\t0\t1\t1\n"),
     r"val_annotations\.txt:4: .*val_0\.JPEG is annotated twice"),
    (lambda s: (s / "val" / "val_annotations.txt").write_text(
        (s / "val" / "val_annotations.txt").read_text().replace("n09246464", "n00000000")),
     r"val_annotations\.txt:3: .*val_2\.JPEG is labelled 'n00000000', which is not in wnids\.txt"),
    (lambda s: (s / "val" / "images" / "val_1.JPEG").unlink(),
     r"val/images/val_1\.JPEG: missing, though val_annotations\.txt line 2 labels it n01443537"),
    (lambda s: (s / "val" / "val_annotations.txt").unlink(),
     r"val_annotations\.txt: missing, so the 3 images in .*val/images have no labels"),
    (lambda s: (s / "val" / "val_annotations.txt").write_text("val_0.JPEG\n"),
     r"val_annotations\.txt:1: expected 'file<TAB>wnid"),
    (lambda s: (s / "train" / "n01443537" / "images" / "n01443537_0.JPEG").write_bytes(b"\xff\xd8 truncated"),
     r"train/n01443537/images/n01443537_0\.JPEG: cannot decode image"),
    (lambda s: (s / "train" / "n07777777" / "images").mkdir(parents=True),
     r"train/n07777777: class folder 'n07777777' is not in wnids\.txt"),
    (lambda s: (s / "wnids.txt").write_text("\n".join(WNIDS + ["n05555555"])),
     r"train/n05555555/images: no training images for class n05555555"),
])
def test_tinyimagenet_bad_layouts_name_the_file_and_write_nothing(tmp_path, capsys, breakage, message):
    src = make_tiny(tmp_path / "tiny-imagenet-200")
    breakage(src)
    dest = tmp_path / "t"
    with pytest.raises(IngestError, match=message):
        ingest(src, dest, progress=False)
    assert _nothing_written(tmp_path, dest)
    assert main(["ingest", str(src), str(dest), "--quiet"]) == 2  # the CLI: the same message, exit 2
    assert "nessa: " in capsys.readouterr().err and _nothing_written(tmp_path, dest)


# --- ImageNet-100 ----------------------------------------------------------------------------


def test_imagenet100_resized_to_one_shape_names_from_labels_json(tmp_path):
    src = make_imagenet100(tmp_path / "imagenet100")
    assert detect_kind(src) is SourceKind.IMAGENET100
    made = ingest(src, tmp_path / "i", progress=False)
    assert sorted(made) == ["train", "val"]
    m, x, y = _read(tmp_path / "i", "train")
    assert tuple(m.sample_shape) == (3, 64, 64) and m.extra["image_size"] == 64  # the default size
    assert m.class_names[0] == "goldfish, Carassius auratus" and y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    m, x, y = _read(tmp_path / "i", "val")
    assert len(y) == 3 and y.tolist() == [0, 1, 2]
    # shorter side to 64, then the centre 64x64: a 70x100 image becomes 64x91 and loses 13 + 14 columns
    with Image.open(src / "val" / WNIDS[1] / "ILSVRC2012_val_00000001.JPEG") as im:
        ref = np.asarray(im.convert("RGB").resize((91, 64), Image.Resampling.BICUBIC))[:, 13:77]
    assert np.abs(x[0].transpose(1, 2, 0).astype(int) - ref.astype(int)).mean() < 2.0  # label 0: n01443537, written as the val image of WNIDS[1]
    assert x.shape == (3, 3, 64, 64)


def test_imagenet100_image_size_option_and_train_x_variant(tmp_path, capsys):
    src = tmp_path / "imagenet100"
    for k, w in enumerate(WNIDS):  # the train.X1 ... / val.X variant
        _jpeg(src / f"train.X{k % 2 + 1}" / w / f"{w}_0.JPEG", k, 40, 48)
        _jpeg(src / "val.X" / w / f"{w}_v.JPEG", 50 + k, 48, 40)
    assert detect_kind(src) is SourceKind.IMAGENET100
    assert main(["ingest", str(src), str(tmp_path / "i"), "--image-size", "24", "--quiet"]) == 0
    assert "i/train: 3 samples, 3 classes, shape [3, 24, 24] uint8" in capsys.readouterr().out
    assert _read(tmp_path / "i", "val")[0].class_names == sorted(WNIDS)  # no labels file: the wnids
    assert main(["ingest", str(src), str(tmp_path / "j"), "--image-size", "0"]) == 2
    assert "--image-size must be a positive" in capsys.readouterr().err


def test_imagenet100_unlabelled_val_image_names_the_file_and_writes_nothing(tmp_path):
    src = make_imagenet100(tmp_path / "imagenet100")
    _jpeg(src / "val" / "ILSVRC2012_val_00000099.JPEG", 7, 50, 50)  # the flat original ImageNet val layout
    dest = tmp_path / "i"
    with pytest.raises(IngestError, match=r"val/ILSVRC2012_val_00000099\.JPEG: an image outside a class folder has no label"):
        ingest(src, dest, progress=False)
    assert _nothing_written(tmp_path, dest)


def test_imagenet100_bad_labels_json(tmp_path):
    src = make_imagenet100(tmp_path / "imagenet100")
    (src / "Labels.json").write_text("{not json")
    with pytest.raises(IngestError, match=r"Labels\.json: not a JSON object of wnid -> class name"):
        ingest(src, tmp_path / "i", progress=False)


def test_image_size_is_for_folder_layouts_only(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.arange(4))
    with pytest.raises(IngestError, match="image_size applies to the folder layouts"):
        ingest(tmp_path / "a.npz", tmp_path / "s", image_size=8, progress=False)
