"""``nessa distill`` on a real store: stages written atomically, an interrupted distillation
leaves only finished stages and resumes after them, bad options named, and over a real service."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nessa.cli import main
from storage_service.store import Store


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture()
def root(tmp_path):
    from sklearn.datasets import load_digits

    from storage_service.ingest import write_store

    d = load_digits()
    x = (d.images[:600] * (255 / 16)).round().astype(np.uint8)
    write_store(tmp_path / "digits", x, d.target[:600])
    write_store(tmp_path / "vec", np.zeros((30, 7), np.uint8), np.arange(30) % 3)
    return tmp_path


def _run(root, *extra) -> int:
    where = [] if "--server" in extra else ["--store", str(root)]
    return main(["distill", "digits", *where, "--iterations", "3", "--ipc", "2", "--quiet", *extra])


@pytest.mark.parametrize("extra, text", [
    (["--out", "x", "--stages", "0"], "--stages: must be at least 1"),
    (["--out", "x", "--ipc", "1000"], "--ipc: 1000 images per class is larger than class"),
    (["--out", "x", "--method", "mtt"], "--method: unknown method 'mtt'"),
    (["--out", "x", "--labels", "fuzzy"], "--labels: unknown labels 'fuzzy'"),
    (["--out", "x", "--labels", "soft", "--label-temperature", "0"], "--label-temperature: must be a number in (0, 100]"),
    (["--out", "x", "--labels", "soft", "--teacher-epochs", "0"], "--teacher-epochs: must be an integer"),
    (["--out", "x", "--labels", "views", "--view-epochs", "3"], "--view-seeds: 1 to 16 training seeds"),
    (["--out", "x", "--labels", "views", "--view-seeds", "0"], "--view-epochs: must be an integer in [1, 10000]"),
    (["--out", "x", "--view-epochs", "3", "--view-seeds", "0"], "per-view labels need --labels views"),
    (["--out", "x", "--labels", "views", "--view-epochs", "3", "--view-seeds", "0", "--view-augment", "randaugment"],
     "--view-augment: randaugment needs uint8 images"),
    (["--out", ".hidden"], "--out: '.hidden' is not a data set name"),
    (["--out", "digits"], "--out: 'digits' is or lies inside an existing data set"),
])
def test_bad_options_exit_2_naming_the_option(root, capsys, extra, text):
    assert _run(root, *extra) == 2
    assert text in capsys.readouterr().err
    assert not (root / "x").exists()


def test_samples_that_are_not_images(root, capsys):
    assert main(["distill", "vec", "--store", str(root), "--out", "v", "--quiet"]) == 2
    assert "vec: samples of shape [7] are not images" in capsys.readouterr().err


def test_interrupted_distillation_leaves_finished_stages_and_resumes(root, capsys):
    from host.distill import DistillConfig
    from storage_service.distill_jobs import run_distillation

    cfg = DistillConfig(method="dm", stages=2, ipc=2, iterations=3, seed=4)
    store = Store(root / "digits")

    def stop_in_stage_2(stage, step):
        if stage == 2 and step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_distillation(store, "digits", root, "p", cfg, progress=stop_in_stage_2)
    assert sorted(p.name for p in (root / "p").iterdir()) == ["stage-01"]  # no half-written stage, no temp folder
    assert _run(root, "--out", "p", "--stages", "2", "--seed", "4") == 0
    out = capsys.readouterr().out
    assert "p: 2 stage(s)" in out and "resumed after stage 1" in out and "p/stage-02" in out
    # Same options, never interrupted: the very same images.
    assert _run(root, "--out", "q", "--stages", "2", "--seed", "4") == 0
    a, b = Store(root / "p" / "stage-02"), Store(root / "q" / "stage-02")
    np.testing.assert_array_equal(a.take(np.arange(40))[0], b.take(np.arange(40))[0])
    assert a.manifest.num_samples == 40 and a.manifest.dtype == "float32"
    # Other options under the same name are refused, naming what differs.
    assert _run(root, "--out", "p", "--stages", "2", "--seed", "5") == 2
    assert "seed differ" in capsys.readouterr().err


def test_distill_through_a_running_service(root, capsys):
    from tests.service.helpers import running

    with running(root) as (_, port):
        assert _run(root, "--out", "r", "--server", f"127.0.0.1:{port}", "--stages", "2") == 0
        assert "r: 2 stage(s)" in capsys.readouterr().out
        assert _run(root, "--out", "r2", "--server", f"127.0.0.1:{port}", "--ipc", "999") == 2
        assert "--ipc: 999 images per class" in capsys.readouterr().err
    assert Store(root / "r" / "stage-02").manifest.num_samples == 40


def test_view_labels_locally_and_through_a_service(root, capsys):
    from tests.service.helpers import running

    views = ["--method", "random", "--labels", "views", "--view-epochs", "3", "--view-seeds", "1,2", "--teacher-epochs", "1"]
    assert _run(root, "--out", "v", *views) == 0
    out = capsys.readouterr().out
    assert "views labels" in out and "--augment crop,flip --seed S --epochs E (S in 1,2, E <= 3)" in out
    with running(root) as (_, port):
        assert _run(root, "--out", "w", "--server", f"127.0.0.1:{port}", *views) == 0
        assert "views labels" in capsys.readouterr().out
    for name in ("v", "w"):
        cols = Store(root / name / "stage-01").columns
        assert {"emb/view-labels-s1", "emb/view-labels-s2"} <= set(cols) and cols["emb/view-labels-s1"].dim == 3 * 10



def test_a_distillation_written_before_the_label_options_resumes(root, capsys):
    """Stages written before ``labels`` / ``teacher_*`` / ``label_temperature`` existed lack them
    in their recorded options; they meant hard labels, and resuming must accept them as such."""
    import json

    assert _run(root, "--out", "old", "--seed", "2") == 0
    path = root / "old" / "stage-01" / "manifest.json"
    doc = json.loads(path.read_text())
    for key in ("labels", "teacher_epochs", "teacher_width", "label_temperature", "view_epochs", "view_seeds",
                "view_augment"):
        del doc["extra"]["distill"]["config"][key]
    path.write_text(json.dumps(doc))
    assert _run(root, "--out", "old", "--stages", "2", "--seed", "2") == 0
    assert "resumed after stage 1" in capsys.readouterr().out
    # Soft labels are another option: the old hard-label stages are not silently reused for them.
    assert _run(root, "--out", "old", "--stages", "3", "--seed", "2", "--labels", "soft") == 2
    assert "labels" in capsys.readouterr().err
