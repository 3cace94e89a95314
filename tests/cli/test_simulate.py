"""``nessa simulate``: tables, plots, config files and their errors."""

from __future__ import annotations

import json

import pytest

from nessa.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(capsys, *argv):
    rc = main(["simulate", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_scenario_prints_table_and_writes_plots(tmp_path, capsys):
    rc, out, err = _run(capsys, "--scenario", "cifar10-1", "--out", str(tmp_path / "plots"), "--sources")
    assert rc == 0, err
    assert "# cifar10-1" in out and "x full" in out and "nessa s/ep" in out
    assert "where NeSSA stops paying" in out
    assert "storage.p2p_bw" in out and "Xilinx" in out  # --sources
    for kind in ("time", "bytes", "speedup"):
        png = tmp_path / "plots" / f"cifar10-1-{kind}.png"
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000
        assert f"wrote {png}" in out


def test_list_names_every_scenario(capsys):
    rc, out, _ = _run(capsys, "--list")
    assert rc == 0
    for name in ("fashion-mnist-1", "cifar10-1", "imagenet-8", "web-1b", "this-machine"):
        assert name in out


def test_unknown_scenario_is_an_error(capsys):
    rc, _, err = _run(capsys, "--scenario", "imagenet-9", "--no-plots")
    assert rc == 2
    assert "unknown scenario 'imagenet-9'" in err and "imagenet-8" in err


def test_scenario_and_config_are_exclusive(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--scenario", "cifar10-1", "--config", "x.json"])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_json_config_from_a_base(tmp_path, capsys):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({
        "version": 1, "base": "imagenet-8", "name": "imagenet-slow-net",
        "storage": {"host_nic_bw": 1.25e9}, "selection": {"fraction": 0.3, "optimizer": "naive"},
        "drive_counts": [4, 8],
    }))
    rc, out, err = _run(capsys, "--config", str(cfg), "--no-plots", "--no-break-even")
    assert rc == 0, err
    lines = [ln for ln in out.splitlines() if ln and not ln.startswith("#")]
    assert "# imagenet-slow-net" in out and "fraction 0.3" in out and "naive greedy" in out
    assert [ln.split()[0] for ln in lines[1:]] == ["4", "8"]


def test_toml_config_from_scratch(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'name = "tiny"\ndescription = "a toml scenario"\nengine = "cpu"\ndrive_counts = [1, 2]\n'
        "[dataset]\nnum_samples = 20000\nsample_bytes = 3072\nnum_classes = 10\n"
        "[trainer]\ngpus = 1\ngpu_hosts = 1\n"
    )
    rc, out, err = _run(capsys, "--config", str(cfg), "--out", str(tmp_path / "p"))
    assert rc == 0, err
    assert "# tiny: a toml scenario" in out and "NeSSA engine cpu" in out
    assert (tmp_path / "p" / "tiny-speedup.png").is_file()


@pytest.mark.parametrize("doc,needle", [
    ({"base": "cifar10-1", "storage": {"p2p_bandwidth": 1e9}}, "unknown field storage.p2p_bandwidth"),
    ({"base": "cifar10-1", "colour": "red"}, "unknown key 'colour'"),
    ({"base": "cifar10-1", "selection": {"fraction": 1.5}}, "selection.fraction must be in (0, 1]"),
    ({"base": "cifar10-1", "selection": {"optimizer": "greedy"}}, "selection.optimizer: 'greedy' is not one of"),
    ({"base": "cifar10-1", "trainer": {"gpus": "eight"}}, "trainer.gpus must be an integer"),
    ({"base": "cifar10-1", "storage": {"p2p_bw": -5}}, "storage.p2p_bw must be > 0"),
    ({"base": "cifar10-1", "drive_counts": []}, "drive_counts must be a non-empty list"),
    ({"base": "cifar10-1", "version": 2}, "version must be 1"),
    ({"base": "no-such-scenario"}, "unknown scenario 'no-such-scenario'"),
    ({"storage": {"drives": 2}}, "missing key 'name'"),
    ({"base": "cifar10-1", "dataset": [1, 2]}, "dataset must be a table/object"),
])
def test_bad_config_names_the_problem(tmp_path, capsys, doc, needle):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps(doc))
    rc, _, err = _run(capsys, "--config", str(cfg), "--no-plots")
    assert rc == 2
    assert err.startswith("nessa: error: ") and needle in err, err


def test_unreadable_configs(tmp_path, capsys):
    rc, _, err = _run(capsys, "--config", str(tmp_path / "missing.json"))
    assert rc == 2 and "does not exist" in err
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    rc, _, err = _run(capsys, "--config", str(bad))
    assert rc == 2 and "not valid JSON" in err
    bad_toml = tmp_path / "broken.toml"
    bad_toml.write_text("name = \n")
    rc, _, err = _run(capsys, "--config", str(bad_toml))
    assert rc == 2 and "not valid TOML" in err


def test_unwritable_plot_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, _, err = _run(capsys, "--scenario", "fashion-mnist-1", "--no-break-even", "--out", str(blocker / "sub"))
    assert rc == 2 and "cannot write plots" in err


def test_kernels_as_written_flag(capsys):
    rc, out, err = _run(capsys, "--scenario", "fashion-mnist-1", "--kernels", "as-written", "--no-plots", "--no-break-even")
    assert rc == 0, err
    assert "[FPGA kernels as written]" in out
    with pytest.raises(SystemExit):
        main(["simulate", "--scenario", "fashion-mnist-1", "--kernels", "fast"])
    assert "invalid choice: 'fast'" in capsys.readouterr().err


def test_this_machine_scenario_runs(capsys):
    rc, out, err = _run(capsys, "--scenario", "this-machine", "--no-plots", "--no-break-even")
    assert rc == 0, err
    assert "NeSSA engine cpu" in out


def test_config_storage_hosts_apply_at_the_scenarios_drive_count(tmp_path, capsys):
    cfg = tmp_path / "hosts.json"
    cfg.write_text(json.dumps({"base": "imagenet-8", "storage": {"drives": 8, "storage_hosts": 4},
                               "drive_counts": [4, 8, 16]}))
    rc, out, err = _run(capsys, "--config", str(cfg), "--no-plots", "--no-break-even")
    assert rc == 0, err
    rows = {ln.split()[0]: ln.split()[1] for ln in out.splitlines() if ln and ln.split()[0].isdigit()}
    assert rows == {"4": "1", "8": "4", "16": "2"}  # 8 as configured; others ceil(drives / 8)
