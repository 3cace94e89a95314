"""The training configuration: one frozen dataclass, checked when it is built.

Every bad value raises ``ConfigError`` naming the option (as the CLI spells it), so a typo
fails before any server is contacted.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from pathlib import Path

from host.backends import backend_names
from host.budget import check_fraction
from host.strategies import Strategy, parse_strategy, spec

__all__ = ["TrainConfig", "ConfigError", "Schedule", "Objective", "parse_servers"]


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the option."""


class Schedule(str, enum.Enum):
    """Learning-rate schedules (a pure function of training progress, so resume needs no state)."""

    COSINE = "cosine"
    STEP = "step"  # x0.1 at 50% and 75% of the epochs
    CONSTANT = "constant"


class Objective(str, enum.Enum):
    """What a run learns: labels (supervised) or representations (trainer/contrastive_run.py)."""

    SUPERVISED = "supervised"
    SIMCLR = "simclr"  # two augmented views, NT-Xent; linear-probe evaluation
    CLIP = "clip"  # image-caption pairs, InfoNCE; zero-shot evaluation


#: Strategies a contrastive objective can stream (labels play no part in sas / clipcov).
CONTRASTIVE_STRATEGIES = ("full", "random", "sas", "sas-fl", "clipcov")


def parse_servers(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"h1:p1,h2:p2"`` (or a list) -> ``("h1:p1", "h2:p2")``, each checked as HOST:PORT."""
    items = text.split(",") if isinstance(text, str) else list(text)
    servers = tuple(s.strip() for s in items if s.strip())
    if not servers:
        raise ConfigError("--server: at least one HOST:PORT is needed")
    for s in servers:
        host, sep, port = s.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"--server: {s!r} is not HOST:PORT with a port in 1..65535")
    if len(set(servers)) != len(servers):
        raise ConfigError(f"--server: a server is listed twice in {','.join(servers)}")
    return servers


def _enum(cls: type[enum.Enum], value: object, option: str) -> enum.Enum:
    try:
        return cls(value)
    except ValueError:
        names = ", ".join(str(m.value) for m in cls)
        raise ConfigError(f"{option}: unknown value {value!r}; choose one of {names}") from None


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs. Field names map to ``nessa train --field-name``."""

    servers: tuple[str, ...]
    dataset: str
    test_dataset: str | None = None
    strategy: Strategy = Strategy.FULL
    fraction: float = 0.1  # per-class budget; ignored (reported as 1.0) for ``full``
    epochs: int = 10
    reselect_every: int = 1  # epochs between reselections (subset strategies)
    warmup_epochs: int = 0  # leading epochs on the full data before the first selection (CRAIG)
    # Leading epochs on a fresh random subset of the same budget before the strategy's first
    # selection (a step-matched warm start: an untrained net's coreset is a random one anyway).
    # None: 1 for strategies that select with the model, 0 otherwise.
    warm_start: int | None = None
    lr_warmup: float = 0.0  # epochs of linear learning-rate warm-up (every strategy alike)
    # Reselect next to the data while training on the current subset; the new subset takes over
    # one epoch later (one epoch staler), so only the first selection can make the trainer wait.
    overlap_selection: bool = True
    arch: str | None = None  # None: small_cnn for <=28x28, resnet20 for 32x32, resnet18 larger
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = True
    schedule: Schedule = Schedule.COSINE
    use_weights: bool = True  # multiply each example's loss by its coreset weight
    # Mini-batch strategies (nessa-pa, crest): coresets per selection and candidates per pool
    # (0: the server's default: batch/fraction for nessa-pa, 1% of the data for crest).
    minibatches: int = 5
    pool_size: int = 0
    # CREST: reselect when the quadratic loss model's relative error passes tau. Both: a round is
    # trained for at most max_hold steps; while the next one is late (the storage host is behind)
    # the current round's coresets are reused up to that bound instead of stalling the trainer
    # (max_hold = minibatches: never reuse, wait instead).
    tau: float = 0.1
    max_hold: int = 100
    # Dropping learned examples (crest, nessa-ss; nessa-pa too when > 0): an example whose loss
    # stayed under drop_threshold for `watch` consecutive selections leaves the candidates,
    # never below min_keep of the data set.
    drop_threshold: float = 0.0
    watch: int = 3
    min_keep: float = 0.5
    seed: int = 0
    backend: str = ""  # selection backend on the storage host: cpu, emu, xrt; "": the server's --backend
    batch_bytes: int = 1 << 20  # target size of one streamed batch
    prefetch: int = 4  # streamed batches buffered per server by the prefetch thread
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    out_dir: Path | None = None  # metrics.jsonl and checkpoint.pt go here
    run_name: str | None = None  # label in metrics and plots; default "<strategy>@<fraction>"
    checkpoint_every: int = 0  # also checkpoint every N steps inside an epoch (0: epoch ends only)
    eval_every: int = 1  # evaluate every N epochs (and after the last)
    max_steps: int = 0  # stop (with a checkpoint) after this many optimizer steps in all (0: no limit)
    resume: bool = False  # continue from out_dir/checkpoint.pt if it exists
    token: str | None = field(default=None, repr=False)
    tls_ca: Path | None = None
    timeout: float = 3600.0  # seconds per RPC (selection can take a while)
    # Faults of a storage host (trainer/retry.py): a stream that receives nothing for
    # stream_idle_timeout seconds fails (a hung server); a failed stream or selection is tried
    # storage_retries more times, waiting retry_backoff seconds, doubling (at most 30 s); then the
    # run stops with a checkpoint that --resume continues from.
    stream_idle_timeout: float = 60.0
    storage_retries: int = 3
    retry_backoff: float = 1.0
    progress: bool = True
    threads: int | None = None  # torch intra-op threads (None: torch's default)
    # Augmentation (trainer/augment_subset.py): transforms, and the subset to augment.
    augment: str = ""  # comma list of crop, flip, cutout, randaugment ("": none)
    augment_subset: str = ""  # KIND:FRACTION (coreset, random, max-loss) or selected: augment only copies
    augment_main: str = ""  # weak transforms applied in place to the streamed rows beside the copies
    augment_every: int = 5  # epochs between picks of the subset to augment (R)
    curvature_beta: float = 0.99  # AdaCore: EMA factor of the squared Hessian diagonal (host/curvature.py)
    distilled: str | None = None  # pdd: the distillation whose stages to train on (trainer/distilled.py)
    hard_labels: bool = False  # pdd: class labels even where the stages carry soft labels (the ablation)
    # Contrastive objectives (trainer/contrastive_run.py); ignored by supervised runs.
    objective: Objective = Objective.SUPERVISED
    embedding_column: str = ""  # sas / clipcov: the (image) embedding column the selection reads
    text_embedding_column: str = ""  # clipcov: the caption embedding column
    latent_classes: int = 0  # sas / clipcov: k-means clusters standing in for labels (0: the server's default)
    probe_samples: int = 10000  # simclr: labelled training examples the linear probe fits on
    temperature: float = 0.5  # simclr: NT-Xent temperature
    templates: tuple[str, ...] = ()  # clip: zero-shot prompts, "{}" = class name (empty: trainer defaults)
    push: int = 0  # > 0: push the trained model to the service under this version (for `nessa embed`)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("servers", parse_servers(self.servers))
        self._check_distilled(set_)
        if not isinstance(self.dataset, str) or not self.dataset.strip():
            raise ConfigError("--dataset: a data set name is needed (e.g. fm/train)")
        if self.test_dataset is not None and not str(self.test_dataset).strip():
            raise ConfigError("--test-dataset: empty name")
        try:
            set_("strategy", parse_strategy(self.strategy, option="--strategy"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        set_("schedule", _enum(Schedule, self.schedule, "--schedule"))
        try:
            set_("fraction", check_fraction(self.fraction, option="--fraction"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.strategy is Strategy.FULL:
            set_("fraction", 1.0)
        for name, low in (("epochs", 1), ("reselect_every", 1), ("batch_size", 1), ("prefetch", 1), ("minibatches", 1),
                          ("pool_size", 0), ("max_hold", 1), ("watch", 1),
                          ("batch_bytes", 1024), ("warmup_epochs", 0), ("checkpoint_every", 0),
                          ("max_steps", 0), ("eval_every", 1), ("seed", 0), ("storage_retries", 0)):  # seeds are uint64 on the wire
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"--{name.replace('_', '-')}: must be an integer >= {low}, got {value!r}")
        strat = spec(self.strategy)
        if self.warm_start is None:  # a full-data warm-up already warm-starts
            set_("warm_start", 1 if strat.needs_model and self.warmup_epochs == 0 and self.epochs > 1 else 0)
        elif not isinstance(self.warm_start, int) or isinstance(self.warm_start, bool) or self.warm_start < 0:
            raise ConfigError(f"--warm-start: must be an integer >= 0, got {self.warm_start!r}")
        if strat.needs_model and self.warm_start and self.warmup_epochs + self.warm_start >= self.epochs:
            raise ConfigError(f"--warm-start: {self.warm_start} warm-start and {self.warmup_epochs} warm-up epochs leave "
                              f"no epoch for the selection (--epochs is {self.epochs})")
        if self.pool_size and self.pool_size < self.batch_size:
            raise ConfigError(f"--pool-size: {self.pool_size} is smaller than --batch-size {self.batch_size} "
                              "(a mini-batch coreset is chosen from its pool)")
        if strat.drops and self.strategy is Strategy.NESSA_SS and not self.drop_threshold > 0:
            raise ConfigError("--drop-threshold: nessa-ss drops learned examples and needs a threshold > 0")
        if self.warmup_epochs >= self.epochs and self.strategy is not Strategy.FULL:
            raise ConfigError(f"--warmup-epochs: {self.warmup_epochs} leaves no epoch for the subset "
                              f"(--epochs is {self.epochs})")
        for name, low, high, text in (("lr", 0.0, math.inf, "> 0"), ("momentum", -1e-12, 1.0, "in [0, 1)"),
                                      ("weight_decay", -1e-12, 1.0, "in [0, 1)"), ("timeout", 0.0, math.inf, "> 0"),
                                      ("stream_idle_timeout", 0.0, math.inf, "> 0"), ("retry_backoff", -1e-300, math.inf, ">= 0"),
                                      ("tau", 0.0, math.inf, "> 0"), ("drop_threshold", -1e-300, math.inf, ">= 0"),
                                      ("lr_warmup", -1e-300, math.inf, ">= 0"), ("min_keep", -1e-300, 1.0 + 1e-12, "in [0, 1]"),
                                      ("curvature_beta", -1e-300, 1.0, "in [0, 1)")):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or not low < value < high:
                raise ConfigError(f"--{name.replace('_', '-')}: {value!r} is out of range (must be finite and {text})")
        if self.backend not in ("", *backend_names(served=True)):
            raise ConfigError(f"--backend: unknown value {self.backend!r}; choose one of {', '.join(backend_names(served=True))}")
        if self.arch is not None:
            from host.models import Arch

            set_("arch", _enum(Arch, self.arch, "--arch").value)
        dev = self.device
        if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
            raise ConfigError(f"--device: {dev!r}; choose auto, cpu, cuda or cuda:N")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ConfigError(f"--threads: must be >= 1, got {self.threads!r}")
        from trainer.augment_subset import parse_augment, parse_augment_subset

        try:
            names = parse_augment(self.augment)
            if self.augment_subset:
                parse_augment_subset(self.augment_subset)
            main = parse_augment(self.augment_main, "--augment-main")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.augment_subset and not names:
            raise ConfigError("--augment-subset: needs --augment to say which transforms the subset's copies get")
        if main and not self.augment_subset:
            raise ConfigError("--augment-main: augments the streamed rows beside --augment-subset's copies; "
                              "without copies, --augment augments every row")
        if not isinstance(self.augment_every, int) or isinstance(self.augment_every, bool) or self.augment_every < 1:
            raise ConfigError(f"--augment-every: must be an integer >= 1, got {self.augment_every!r}")
        if self.resume and self.out_dir is None:
            raise ConfigError("--resume: needs --out-dir (where the checkpoint lives)")
        if self.checkpoint_every and self.out_dir is None:
            raise ConfigError("--checkpoint-every: needs --out-dir")
        if self.out_dir is not None:
            set_("out_dir", Path(self.out_dir))
        if self.tls_ca is not None:
            set_("tls_ca", Path(self.tls_ca))
            if not self.tls_ca.is_file():
                raise ConfigError(f"--tls-ca: no such file {str(self.tls_ca)!r}")
        self._check_objective(set_)

    def _check_objective(self, set_) -> None:
        set_("objective", _enum(Objective, self.objective, "--objective"))
        if self.objective is Objective.SUPERVISED:
            return
        if self.strategy.value not in CONTRASTIVE_STRATEGIES:
            raise ConfigError(f"--strategy: {self.strategy.value} does not apply to --objective {self.objective.value}; "
                              f"choose one of {', '.join(CONTRASTIVE_STRATEGIES)}")
        if self.strategy.value in ("sas", "sas-fl", "clipcov") and not self.embedding_column:
            raise ConfigError(f"--embedding-column: --strategy {self.strategy.value} selects on an embedding column; name it")
        if self.strategy.value == "clipcov" and not self.text_embedding_column:
            raise ConfigError("--text-embedding-column: --strategy clipcov needs the caption embedding column")
        if self.batch_size < 2:
            raise ConfigError(f"--batch-size: contrastive losses need >= 2 examples a batch, got {self.batch_size}")
        for name, low in (("latent_classes", 0), ("probe_samples", 1), ("push", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"--{name.replace('_', '-')}: must be an integer >= {low}, got {value!r}")
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature) and self.temperature > 0):
            raise ConfigError(f"--temperature: must be a finite number > 0, got {self.temperature!r}")
        set_("templates", tuple(self.templates))
        if any(not isinstance(t, str) or "{}" not in t for t in self.templates):
            raise ConfigError("--templates: every template needs a '{}' where the class name goes")

    def _check_distilled(self, set_) -> None:
        """pdd needs --distilled (its stages are the training data: --dataset defaults to stage 1,
        the fraction is 1) and streams float images (crop, flip and Cutout work on them, RandAugment's
        colour operations do not); nothing else takes it."""
        from host.strategies import Strategy as _S

        is_pdd = str(getattr(self.strategy, "value", self.strategy)).strip().lower() == _S.PDD.value
        if self.distilled is not None and not is_pdd:
            raise ConfigError("--distilled: only --strategy pdd trains on a distilled data set")
        if self.hard_labels and not is_pdd:
            raise ConfigError("--hard-labels: only --strategy pdd trains on a distillation's labels")
        if not is_pdd:
            return
        if not isinstance(self.distilled, str) or not self.distilled.strip().strip("/"):
            raise ConfigError("--distilled: --strategy pdd trains on a distillation made by `nessa distill`: name it")
        set_("distilled", self.distilled.strip().strip("/"))
        if not self.dataset:
            set_("dataset", f"{self.distilled}/stage-01")
        set_("fraction", 1.0)
        for option, value in (("--augment", self.augment), ("--augment-main", self.augment_main)):
            if "randaugment" in value:
                raise ConfigError(f"{option}: pdd streams float synthetic images; randaugment works on uint8 images "
                                  "(crop, flip and cutout work on both)")

    @property
    def label(self) -> str:
        """The run's name in metrics, plots and tables."""
        if self.run_name:
            return self.run_name
        if self.distilled:
            return f"pdd:{self.distilled}"
        if self.strategy is Strategy.FULL:
            return "full"
        return f"{self.strategy.value}@{self.fraction:g}"

    def replace(self, **changes: object) -> "TrainConfig":
        """A copy with ``changes`` applied (and checked again)."""
        return dataclasses.replace(self, **changes)

    def summary(self) -> dict:
        """JSON-friendly view (no secrets) for metrics and checkpoints."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "token":
                continue
            v = getattr(self, f.name)
            out[f.name] = v.value if isinstance(v, enum.Enum) else (str(v) if isinstance(v, Path) else v)
        out["servers"] = list(self.servers)
        return out
