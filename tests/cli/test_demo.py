"""``nessa demo``: data discovery and the quick end-to-end run (ingest, serve, three trainings)."""

from __future__ import annotations

import pytest

import nessa.demo as demo
import storage_service.ingest.locate as locate
from nessa.cli import main

IDX = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
       "t10k-labels-idx1-ubyte.gz")


def fake_idx_folder(path):
    path.mkdir(parents=True)
    for name in IDX:
        (path / name).write_bytes(b"")
    return path


def test_find_fashion_mnist_order(tmp_path, monkeypatch):
    system, repo = tmp_path / "system", tmp_path / "repo"
    monkeypatch.setattr(locate, "SYSTEM_DATA", system)
    monkeypatch.setattr(locate, "_REPO_DATA", repo)
    monkeypatch.delenv(locate.DATA_ENV, raising=False)
    assert locate.find_fashion_mnist() == (None, [str(system), str(repo)])
    fake_idx_folder(repo)
    assert locate.find_fashion_mnist()[0] == repo
    fake_idx_folder(system)
    assert locate.find_fashion_mnist()[0] == system
    env = fake_idx_folder(tmp_path / "env")
    monkeypatch.setenv(locate.DATA_ENV, str(env))
    assert locate.find_fashion_mnist()[0] == env
    assert locate.find_fashion_mnist(repo)[0] == repo  # the flag wins
    with pytest.raises(locate.DataNotFound, match="no Fashion-MNIST IDX files"):
        locate.find_fashion_mnist(tmp_path / "nowhere")


def test_quick_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out-dir", str(out), "--no-progress", "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    for run in ("| full |", "| random@0.3 |", f"| {demo.WINNER}@0.3 |"):
        assert run in printed and run in (out / "table.md").read_text()
    for name in ("accuracy_vs_time.png", "accuracy_vs_bytes.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert "time to full−1" in printed and "time to full−2" in printed and f": {demo.WINNER}@0.3 " in printed
    for run in ("full", "random", demo.WINNER):
        assert (out / run / "metrics.jsonl").is_file()


def test_demo_with_a_bad_data_folder_fails_clearly(tmp_path, capsys):
    assert main(["demo", "--data", str(tmp_path / "missing"), "--out-dir", str(tmp_path / "o")]) == 2
    assert "no Fashion-MNIST IDX files" in capsys.readouterr().err


def test_demo_falls_back_to_digits_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(locate, "SYSTEM_DATA", tmp_path / "a")
    monkeypatch.setattr(locate, "_REPO_DATA", tmp_path / "b")
    monkeypatch.delenv(locate.DATA_ENV, raising=False)
    lines = []
    result = demo.run_demo(demo.DemoOptions(out_dir=tmp_path / "o", epochs=1, subset_epochs=1, progress=False,
                                            threads=1, strategies=("full",), log=lines.append))
    assert "Fashion-MNIST not found" in lines[0] and "digits" in lines[0]
    assert result["dataset"] == "scikit-learn digits" and result["results"][0]["test_acc"] is not None


@pytest.mark.parametrize("extra, message", [
    (["--fraction", "0"], "--fraction"),
    (["--lr", "nan"], "--lr"),
    (["--reselect-every", "0"], "--reselect-every"),
])
def test_demo_bad_options_fail_before_ingesting(tmp_path, capsys, extra, message):
    assert main(["demo", "--quick", "--work-dir", str(tmp_path / "w"), "--out-dir", str(tmp_path / "o"),
                 "--no-progress", *extra]) == 2
    cap = capsys.readouterr()
    assert message in cap.err and "ingesting" not in cap.out + cap.err and not (tmp_path / "w").exists()


def test_demo_unusable_folders_fail_clearly(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    assert main(["demo", "--quick", "--out-dir", str(tmp_path / "afile"), "--no-progress"]) == 2
    assert "--out-dir" in capsys.readouterr().err
    assert main(["demo", "--quick", "--work-dir", str(tmp_path / "afile"), "--out-dir", str(tmp_path / "o"),
                 "--no-progress"]) == 2
    assert "--work-dir" in capsys.readouterr().err and (tmp_path / "afile").read_text() == "x"


def test_demo_help_names_defaults_and_what_work_dir_replaces(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("(default 0.3)", "(default 5)", "(default 5: step-matched", "(default 1)", "default 1)", "(default 0.05)",
                 "WORK_DIR/store, replacing one there"):
        assert text in out, text
