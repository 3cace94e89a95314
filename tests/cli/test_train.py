"""``nessa train`` through the real CLI entry point against a live service (token auth included)."""

from __future__ import annotations

import pytest

from nessa.cli import main
from nessa.demo import prepare_store
from storage_service.server import serve_local as local_service


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    prepare_store(root, None, progress=False)
    return root


def args(target, out, *extra):
    return ["train", "--server", target, "--dataset", "digits/train", "--test-dataset", "digits/test",
            "--epochs", "1", "--batch-size", "64", "--threads", "1", "--out-dir", str(out), "--no-progress", *extra]


def test_train_runs_and_reports(store_root, tmp_path, capsys):
    with local_service(store_root) as target:
        assert main(args(target, tmp_path, "--strategy", "random", "--fraction", "0.3")) == 0
    out = capsys.readouterr().out
    assert "random@0.3: test accuracy" in out and (tmp_path / "metrics.jsonl").is_file()


def test_coreset_and_its_augmentations(store_root, tmp_path, capsys):
    """The reference's data-efficient augmentation on a coreset: weak views of the coreset's rows,
    strong copies of them."""
    with local_service(store_root) as target:
        assert main(args(target, tmp_path, "--strategy", "craig", "--fraction", "0.3", "--augment", "crop,randaugment",
                         "--augment-subset", "selected", "--augment-main", "crop")) == 0
    assert "craig@0.3: test accuracy" in capsys.readouterr().out


def test_a_previous_run_is_not_replaced_silently(store_root, tmp_path, capsys):
    with local_service(store_root) as target:
        run = args(target, tmp_path, "--strategy", "random", "--fraction", "0.3")
        assert main(run) == 0
        before = (tmp_path / "metrics.jsonl").read_bytes()
        capsys.readouterr()
        assert main(run) == 2  # same --out-dir again: refused, the first run's files untouched
        assert "already holds a run (metrics.jsonl, checkpoint.pt)" in capsys.readouterr().err
        assert (tmp_path / "metrics.jsonl").read_bytes() == before
        assert main([*run, "--overwrite"]) == 0
        capsys.readouterr()
        assert main([*run, "--resume"]) == 0  # a finished run: resuming it just reports it again
        assert "random@0.3: test accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--strategy", "bogus"], "--strategy"),
    (["--fraction", "2"], "--fraction"),
    (["--dataset", "nope/train"], "NOT_FOUND"),
    (["--warmup-epochs", "1", "--strategy", "nessa"], "--warmup-epochs"),
    (["--strategy", "crest", "--tau", "0"], "--tau"),
    (["--strategy", "nessa-pa", "--pool-size", "4"], "--pool-size"),
    (["--strategy", "nessa-ss"], "--drop-threshold"),
    (["--strategy", "crest", "--drop-threshold", "-0.5"], "--drop-threshold"),
    (["--augment", "flip", "--augment-main", "crop"], "--augment-main"),
    (["--augment", "flip", "--augment-subset", "selected:0.5"], "--augment-subset"),
])
def test_bad_input_is_a_clear_error(store_root, tmp_path, capsys, extra, message):
    with local_service(store_root) as target:
        assert main(args(target, tmp_path, *extra)) == 2
    assert message in capsys.readouterr().err


def test_train_without_test_set_still_reports(store_root, tmp_path, capsys):
    argv = args("127.0.0.1:1", tmp_path)
    i = argv.index("--test-dataset")
    del argv[i:i + 2]
    with local_service(store_root) as target:
        argv[argv.index("127.0.0.1:1")] = target
        assert main(argv) == 0
    assert "full: trained after 1 epochs" in capsys.readouterr().out


def test_cuda_missing_is_a_clear_error(store_root, tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with local_service(store_root) as target:
        assert main(args(target, tmp_path, "--device", "cuda")) == 2
    assert "--device cuda: CUDA is not available" in capsys.readouterr().err


def test_unusable_out_dir_is_a_clear_error(store_root, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    with local_service(store_root) as target:
        assert main(args(target, tmp_path, "--out-dir", str(tmp_path / "afile" / "run"))) == 2
    assert "--out-dir" in capsys.readouterr().err and (tmp_path / "afile").read_text() == "x"


def test_token_auth(store_root, tmp_path, capsys):
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    empty = tmp_path / "empty"
    empty.write_text("")
    with local_service(store_root, token="s3cret-token") as target:
        assert main(args(target, tmp_path / "a")) == 2
        assert "UNAUTHENTICATED" in capsys.readouterr().err
        assert main(args(target, tmp_path / "b", "--token-file", str(empty))) == 2
        assert "empty" in capsys.readouterr().err
        assert main(args(target, tmp_path / "c", "--token-file", str(token))) == 0


def test_tls_with_token(store_root, tmp_path):
    from tests.service.helpers import self_signed

    cert, key = self_signed(tmp_path)
    token = tmp_path / "token"
    token.write_text("tls-token")
    with local_service(store_root, token="tls-token", tls_cert=cert, tls_key=key) as target:
        assert main(args(target, tmp_path / "run", "--token-file", str(token), "--tls-ca", str(cert))) == 0
        assert main(args(target, tmp_path / "plain", "--token-file", str(token))) == 2  # no TLS: refused
