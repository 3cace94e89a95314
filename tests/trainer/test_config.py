"""TrainConfig: every bad option is refused at construction, naming the option."""

from __future__ import annotations

import math

import pytest

from trainer.config import ConfigError, Schedule, TrainConfig, parse_servers
from trainer.loop import default_arch, lr_at
from host.strategies import Strategy, spec


def make(**kw) -> TrainConfig:
    base = dict(servers="127.0.0.1:5000", dataset="fm/train")
    base.update(kw)
    return TrainConfig(**base)


def test_defaults_and_parsing():
    cfg = make(servers="a:1, b:2", strategy="nessa", fraction=0.1, schedule="step")
    assert cfg.servers == ("a:1", "b:2")
    assert cfg.strategy is Strategy.CRAIG and cfg.schedule is Schedule.STEP  # "nessa" is craig's old name
    assert cfg.label == "craig@0.1"
    assert make(strategy="full", fraction=0.3).fraction == 1.0  # full ignores the budget
    assert "token" not in make(token="s3cret").summary()
    assert "s3cret" not in repr(make(token="s3cret"))
    assert make().backend == ""  # the storage server's own --backend picks where selection runs


@pytest.mark.parametrize(
    "kw, option",
    [
        (dict(servers=""), "--server"),
        (dict(servers="localhost"), "--server"),
        (dict(servers="h:0"), "--server"),
        (dict(servers="h:99999"), "--server"),
        (dict(servers="h:1,h:1"), "--server"),
        (dict(dataset=""), "--dataset"),
        (dict(strategy="craig2"), "--strategy"),
        (dict(fraction=0.0), "--fraction"),
        (dict(fraction=1.5), "--fraction"),
        (dict(fraction=float("nan")), "--fraction"),
        (dict(epochs=0), "--epochs"),
        (dict(reselect_every=0), "--reselect-every"),
        (dict(batch_size=0), "--batch-size"),
        (dict(warmup_epochs=-1), "--warmup-epochs"),
        (dict(strategy="nessa", epochs=3, warmup_epochs=3), "--warmup-epochs"),
        (dict(lr=0.0), "--lr"),
        (dict(lr=math.inf), "--lr"),
        (dict(momentum=1.0), "--momentum"),
        (dict(schedule="linear"), "--schedule"),
        (dict(backend="gpu"), "--backend"),
        (dict(arch="vgg"), "--arch"),
        (dict(device="tpu"), "--device"),
        (dict(threads=0), "--threads"),
        (dict(hard_labels=True), "--hard-labels: only --strategy pdd"),
        (dict(distilled="dd"), "--distilled: only --strategy pdd"),
        (dict(resume=True), "--resume"),
        (dict(checkpoint_every=10), "--checkpoint-every"),
        (dict(tls_ca="/nonexistent/ca.pem"), "--tls-ca"),
        (dict(batch_bytes=10), "--batch-bytes"),
        (dict(seed=-1), "--seed"),
    ],
)
def test_bad_option_is_named(kw, option):
    with pytest.raises(ConfigError, match=option):
        make(**kw)


def test_out_of_range_says_the_range():
    with pytest.raises(ConfigError, match=r"--lr: -1.0 is out of range \(must be finite and > 0\)"):
        make(lr=-1.0)
    with pytest.raises(ConfigError, match=r"--momentum: nan is out of range \(must be finite and in \[0, 1\)\)"):
        make(momentum=float("nan"))


def test_parse_servers_list():
    assert parse_servers(["h:1", "g:2"]) == ("h:1", "g:2")
    with pytest.raises(ConfigError):
        parse_servers(" , ")


def test_schedules_are_pure_functions_of_progress():
    cos = make(lr=0.1, epochs=10)
    assert lr_at(cos, 0) == pytest.approx(0.1)
    assert lr_at(cos, 5) == pytest.approx(0.05)
    assert lr_at(cos, 10) == pytest.approx(0.0, abs=1e-12)
    step = make(lr=0.1, epochs=8, schedule="step")
    assert [round(lr_at(step, e), 6) for e in (0, 3.9, 4, 6, 7.5)] == [0.1, 0.1, 0.01, 0.001, 0.001]
    assert lr_at(make(lr=0.1, schedule="constant"), 7) == 0.1


def test_strategy_registry_and_arch_choice():
    assert not spec("full").selects and not spec("full").needs_model
    assert spec(Strategy.RANDOM).selects and spec("random").fresh_seed and not spec("random").needs_model
    assert spec("nessa") is spec("craig") and spec("craig").needs_model
    with pytest.raises(ValueError, match="unknown strategy"):
        spec("bogus")
    assert default_arch((28, 28)) == "small_cnn"
    assert default_arch((8, 8)) == "small_cnn"
    assert default_arch((32, 32, 3)) == "resnet20"
    assert default_arch((3, 64, 64)) == "resnet18"


def test_lr_warmup_ramps_linearly_then_follows_the_schedule():
    cfg = make(lr=0.1, epochs=10, schedule="constant", lr_warmup=2.0)
    assert [round(lr_at(cfg, p), 6) for p in (0.5, 1.0, 2.0, 5.0)] == [0.025, 0.05, 0.1, 0.1]
    assert 0 < lr_at(cfg, 0.0) < 0.01  # the first step still moves
    cos = make(lr=0.1, epochs=10, lr_warmup=1.0)
    assert lr_at(cos, 5.0) == pytest.approx(lr_at(make(lr=0.1, epochs=10), 5.0))  # after the ramp: the schedule


def test_warm_start_defaults_to_one_epoch_for_model_based_strategies_only():
    assert make(strategy="craig", epochs=3).warm_start == 1
    assert make(strategy="nessa-pa", epochs=3).warm_start == 1
    assert make(strategy="random", epochs=3).warm_start == 0 and make(strategy="full").warm_start == 0
    assert make(strategy="craig", epochs=3, warmup_epochs=1).warm_start == 0  # a full-data warm-up already warm-starts
    assert make(strategy="craig", epochs=1).warm_start == 0
    with pytest.raises(ConfigError, match="--warm-start"):
        make(strategy="craig", epochs=3, warm_start=3)
