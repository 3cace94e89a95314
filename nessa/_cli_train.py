"""``nessa train`` and ``nessa demo`` (heavy imports stay inside the handlers)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from host.backends import backend_names
from host.strategies import strategy_names

__all__ = ["register"]


#: Files a run leaves in --out-dir (metrics, checkpoint): their presence means an earlier run.
_RUN_FILES = ("metrics.jsonl", "checkpoint.pt")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on samples streamed (and selected) by storage services",
                       description="Train on the samples one or more NeSSA storage services stream, reselecting "
                                   "a weighted subset next to the data every few epochs. Runs under torchrun too.")
    p.add_argument("--server", required=True, metavar="HOST:PORT[,HOST:PORT...]",
                   help="storage service(s); with several, each selects from its own part and streams interleave")
    p.add_argument("--dataset", default="", help="training data set name on the server(s), e.g. fm/train "
                                                 "(needed, except with --strategy pdd)")
    p.add_argument("--test-dataset", help="test data set evaluated after every epoch, e.g. fm/test")
    p.add_argument("--eval-every", type=int, default=1, metavar="N", help="evaluate every N epochs and after the last")
    p.add_argument("--strategy", default="full", metavar="NAME",
                   help=f"one of {', '.join(strategy_names())} (default: full; 'nessa' is an alias of craig)")
    p.add_argument("--fraction", type=float, default=0.1, help="per-class subset budget in (0, 1] (default 0.1)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--reselect-every", type=int, default=1, metavar="R", help="epochs between reselections")
    p.add_argument("--warmup-epochs", type=int, default=0, help="full-data epochs before the first selection")
    p.add_argument("--warm-start", type=int, default=None, metavar="EPOCHS",
                   help="epochs on a fresh random subset of the same budget before the strategy's first selection "
                        "(default: 1 for strategies that select with the model, else 0)")
    p.add_argument("--lr-warmup", type=float, default=0.0, metavar="EPOCHS",
                   help="epochs of linear learning-rate warm-up, for every strategy alike (default 0)")
    g = p.add_argument_group("mini-batch coresets (nessa-pa, crest) and dropping learned examples (crest, nessa-ss)")
    g.add_argument("--minibatches", type=int, default=5, metavar="R", help="mini-batch coresets per selection (default 5)")
    g.add_argument("--pool-size", type=int, default=0, metavar="P",
                   help="candidates per pool, >= --batch-size (default: the server's: batch/fraction for nessa-pa, "
                        "1%% of the data for crest)")
    g.add_argument("--tau", type=float, default=0.1,
                   help="crest: reselect when the quadratic loss model's relative error passes tau (> 0; default 0.1)")
    g.add_argument("--max-hold", type=int, default=100, metavar="STEPS",
                   help="most steps on one round; while the next round is late its coresets are reused up to this "
                        "bound instead of stalling (= --minibatches: never reuse, wait; default 100)")
    g.add_argument("--drop-threshold", type=float, default=0.0,
                   help="drop examples whose loss stayed under this for --watch selections (>= 0; 0: never; "
                        "nessa-ss needs > 0)")
    g.add_argument("--watch", type=int, default=3, help="consecutive low-loss observations before an example is dropped")
    g.add_argument("--min-keep", type=float, default=0.5, help="never drop below this fraction of the data (default 0.5)")
    p.add_argument("--no-overlap-selection", dest="overlap_selection", action="store_false",
                   help="wait for each reselection instead of computing it next to the data while the current "
                        "subset trains (by default the new subset takes over one epoch later: only the first "
                        "selection can make the trainer wait)")
    p.add_argument("--arch", help="small_cnn, resnet20 or resnet18 (default: by sample size: <=28 px, <=32 px, larger)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 0.05 supervised SGD; Adam 1e-3 simclr, 2e-3 clip)")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--schedule", default="cosine", help="cosine, step or constant")
    p.add_argument("--no-weights", action="store_true", help="ignore coreset weights (plain mean loss)")
    p.add_argument("--seed", type=int, default=0, help="seed (>= 0) of the shuffle, random subsets and init")
    p.add_argument("--backend", default="", help=f"selection backend on the storage host: {', '.join(backend_names(served=True))} "
                   "(default: the one the server was started with, its --backend)")
    p.add_argument("--batch-bytes", type=int, default=1 << 20, help="target bytes per streamed batch")
    p.add_argument("--prefetch", type=int, default=4, help="streamed batches buffered per server")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--out-dir", type=Path, help="metrics.jsonl, checkpoint.pt and plots go here")
    p.add_argument("--name", dest="run_name", help="run label in metrics and plots")
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="STEPS",
                   help="also checkpoint every STEPS steps inside an epoch (default 0: at epoch ends only)")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps in all, with a checkpoint (default 0: no limit)")
    p.add_argument("--resume", action="store_true", help="continue from OUT_DIR/checkpoint.pt")
    p.add_argument("--overwrite", action="store_true", help="replace a previous run's files in OUT_DIR "
                   "(without it, or --resume, a run refuses an OUT_DIR that holds one)")
    p.add_argument("--token-file", type=Path, help="file with the bearer token (else $NESSA_TOKEN)")
    p.add_argument("--tls-ca", type=Path, help="PEM root certificate: connect with TLS")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per call (selection can be slow)")
    f = p.add_argument_group("storage host faults")
    f.add_argument("--stream-idle-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="a stream that receives nothing for this long while the trainer waits fails: a hung server "
                        "(default 60)")
    f.add_argument("--storage-retries", type=int, default=3, metavar="N",
                   help="retries of a failed stream or selection, with back-off, before the run stops with a "
                        "checkpoint that --resume continues from (default 3)")
    f.add_argument("--retry-backoff", type=float, default=1.0, metavar="SECONDS",
                   help="first wait before a retry, doubling each time, at most 30 s (default 1)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--augment", default="", metavar="LIST",
                   help="augment training batches: comma list of crop, flip, cutout, randaugment (default: none)")
    p.add_argument("--augment-subset", default="", metavar="KIND:FRACTION",
                   help="augment only copies of a subset the storage host picks (coreset, random or max-loss), "
                        "added to the streamed batches: data-efficient augmentation (needs --augment); "
                        "'selected': a copy of every streamed row (with --strategy craig --fraction F: train on "
                        "the coreset and its augmentations)")
    p.add_argument("--augment-main", default="", metavar="LIST",
                   help="with --augment-subset: weak transforms (e.g. crop,flip) applied to the streamed rows "
                        "themselves; --augment then names the copies' (strong) ones (default: none)")
    p.add_argument("--augment-every", type=int, default=5, metavar="R", help="epochs between subset picks (default 5)")
    p.add_argument("--curvature-beta", type=float, default=0.99,
                   help="adacore: EMA factor of the squared Hessian diagonal pushed with the model (default 0.99)")
    p.add_argument("--distilled", metavar="NAME",
                   help="pdd: the distillation (made by `nessa distill ... --out NAME`) whose stages to train on, "
                        "cumulatively, the epochs split evenly over the stages (on its soft labels if it has them; "
                        "on each view's own label if it was distilled with --labels views: then --augment, --seed "
                        "and --epochs must be ones it labelled)")
    p.add_argument("--hard-labels", action="store_true",
                   help="pdd: train on the class labels even where the distillation carries soft labels")
    c = p.add_argument_group("contrastive objectives (simclr, clip): --strategy full, random, sas, sas-fl or clipcov; "
                                 "step-matched; --test-dataset is evaluated by linear probe (simclr) or zero-shot (clip)")
    c.add_argument("--objective", default="supervised", metavar="NAME",
                   help="supervised (default), simclr (two augmented views, NT-Xent) or clip (image-caption pairs "
                        "streamed with the text column, InfoNCE)")
    c.add_argument("--embedding-column", default="", metavar="COLUMN",
                   help="sas / sas-fl / clipcov: the (image) embedding column to select on, e.g. emb/proxy")
    c.add_argument("--text-embedding-column", default="", metavar="COLUMN", help="clipcov: the caption embedding column")
    c.add_argument("--latent-classes", type=int, default=0, metavar="K",
                   help="sas / sas-fl / clipcov: k-means clusters standing in for labels (default 0: the server's)")
    c.add_argument("--probe-samples", type=int, default=10000, help="simclr: labelled examples the linear probe fits on")
    c.add_argument("--temperature", type=float, default=0.5, help="simclr: NT-Xent temperature (default 0.5)")
    c.add_argument("--templates", default="", metavar="T1|T2...",
                   help="clip: zero-shot prompts separated by '|', '{}' = class name (default: 'a photo of a {}.' and 3 more)")
    c.add_argument("--push-version", type=int, default=0, metavar="V",
                   help="push the trained model to the service as version V (for `nessa embed`; default 0: no)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_train)

    d = sub.add_parser("demo", help="end to end on one machine: ingest, serve, train full vs random vs the best selection strategy",
                       description="Find Fashion-MNIST (--data, $NESSA_DATA, /usr/share/datasets/fashion-mnist, "
                                   "../shared/data/fashion-mnist; else scikit-learn's digits), ingest it, start a "
                                   "storage service on a free port, train full vs random vs the strategy that won bench/tta.py "
                                   "(nessa.demo.WINNER) and compare, with its time to full data's accuracy - 1 point.")
    d.add_argument("--data", type=Path,
                   help="data set folder, in any layout `nessa ingest` reads with a train and a test/val split: "
                        "Fashion-MNIST/MNIST IDX (gzipped or not), CIFAR-10/100 (binary or python), SVHN .mat, "
                        "CINIC-10, TinyImageNet, ImageNet-100 (resized to 64x64); or the folder holding one of them. "
                        "The model follows the image size (small CNN <= 28x28, ResNet-20 <= 32x32, else ResNet-18). "
                        "With --quick: 1 epoch on this data instead of digits")
    d.add_argument("--out-dir", type=Path, default=Path("nessa-demo"), help="metrics, plots and table (default ./nessa-demo)")
    d.add_argument("--work-dir", type=Path, help="keep the ingested store in WORK_DIR/store, replacing one there (default: a temporary folder)")
    d.add_argument("--fraction", type=float, default=0.3, help="per-class subset budget in (0, 1] (default 0.3)")
    d.add_argument("--epochs", type=int, default=5, help="epochs of the full-data run (default 5)")
    d.add_argument("--subset-epochs", type=int, default=5,
                   help="epochs of the subset runs (default 5: step-matched, FRACTION of full's steps)")
    d.add_argument("--reselect-every", type=int, default=1, help="epochs between reselections of epoch-mode strategies (default 1)")
    d.add_argument("--eval-every", type=int, default=1, help="test-set passes every N epochs (and after the last; default 1)")
    d.add_argument("--lr", type=float, default=0.05, help="initial learning rate (default 0.05)")
    d.add_argument("--digits", action="store_true", help="use scikit-learn's digits even if Fashion-MNIST is there")
    d.add_argument("--quick", action="store_true", help="1 epoch each, on digits unless --data names a folder: a fast check of the whole path")
    d.add_argument("--threads", type=int, default=0,
                   help="torch CPU threads (default: 1 on machines with <= 2 cores, which the service shares)")
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=_demo)


def _token(path: Path | None) -> str | None:
    from nessa._errors import CliError
    from storage_service.auth import load_token

    try:
        return load_token(path)
    except ValueError as exc:
        raise CliError(f"--token-file: {exc}") from None


def _train(args: argparse.Namespace) -> int:
    from nessa._errors import CliError
    from trainer.config import ConfigError, TrainConfig

    try:
        cfg = TrainConfig(
            servers=args.server, dataset=args.dataset, test_dataset=args.test_dataset, strategy=args.strategy,
            fraction=args.fraction, epochs=args.epochs, reselect_every=args.reselect_every,
            eval_every=args.eval_every, warmup_epochs=args.warmup_epochs, warm_start=args.warm_start,
            lr_warmup=args.lr_warmup, minibatches=args.minibatches, pool_size=args.pool_size, tau=args.tau,
            max_hold=args.max_hold, drop_threshold=args.drop_threshold, watch=args.watch, min_keep=args.min_keep,
            overlap_selection=args.overlap_selection, arch=args.arch, batch_size=args.batch_size, lr=_default_lr(args),
            momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule,
            use_weights=not args.no_weights, seed=args.seed, backend=args.backend, batch_bytes=args.batch_bytes,
            prefetch=args.prefetch, device=args.device, out_dir=args.out_dir, run_name=args.run_name,
            checkpoint_every=args.checkpoint_every, max_steps=args.max_steps, resume=args.resume, token=_token(args.token_file),
            stream_idle_timeout=args.stream_idle_timeout, storage_retries=args.storage_retries,
            retry_backoff=args.retry_backoff,
            tls_ca=args.tls_ca, timeout=args.timeout, progress=not args.no_progress, threads=args.threads,
            augment=args.augment, augment_subset=args.augment_subset, augment_main=args.augment_main,
            augment_every=args.augment_every,
            distilled=args.distilled, hard_labels=args.hard_labels,
            curvature_beta=args.curvature_beta, objective=args.objective, embedding_column=args.embedding_column,
            text_embedding_column=args.text_embedding_column, latent_classes=args.latent_classes,
            probe_samples=args.probe_samples, temperature=args.temperature,
            templates=tuple(t for t in args.templates.split("|") if t), push=args.push_version)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if cfg.out_dir is not None:  # fail before connecting, not after the first epoch
        try:
            Path(cfg.out_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"--out-dir {cfg.out_dir}: cannot create it: {exc.strerror}") from None
        # Only the lead rank writes these files, so only it can tell an earlier run's from this one's.
        previous = [name for name in _RUN_FILES if (Path(cfg.out_dir) / name).exists()]
        if previous and not (args.resume or args.overwrite) and int(os.environ.get("RANK", "0")) == 0:
            raise CliError(f"--out-dir {cfg.out_dir} already holds a run ({', '.join(previous)}): "
                           "--resume continues it, --overwrite replaces it")
    return _run_train(cfg)


def _default_lr(args: argparse.Namespace) -> float:
    if args.lr is not None:
        return args.lr
    return {"simclr": 1e-3, "clip": 2e-3}.get(str(args.objective).strip().lower(), 0.05)


def _run_contrastive(cfg) -> int:
    from nessa._errors import CliError
    from storage_service.client import StorageError
    from trainer.config import ConfigError
    from trainer.contrastive_run import run_contrastive

    try:
        rec = run_contrastive(cfg)
    except StorageError as exc:
        raise CliError(f"storage service: {exc}") from None
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    acc = "n/a (no --test-dataset)" if rec["test_acc"] is None else f"{rec['test_acc']:.4f}"
    print(f"{rec['run']} ({rec['objective']}): {rec['steps']} steps in {rec['wall_s']:.1f} s; {rec['eval']} accuracy {acc}")
    return 0


def _run_train(cfg) -> int:
    if cfg.objective.value != "supervised":
        return _run_contrastive(cfg)
    from nessa._errors import CliError
    from storage_service.client import StorageError
    from trainer.checkpoint import CheckpointMismatch
    from trainer.config import ConfigError
    from trainer.loop import train
    from trainer.multi import IncompatibleParts
    from trainer.retry import StorageGaveUp

    try:
        result = train(cfg)
    except StorageGaveUp as exc:
        raise CliError(_gave_up_message(cfg, exc)) from None
    except StorageError as exc:
        raise CliError(f"storage service: {exc}") from None
    except (CheckpointMismatch, IncompatibleParts, ConfigError) as exc:
        raise CliError(str(exc)) from None
    final = result.final
    if final and int(os.environ.get("RANK", "0")) == 0:  # without --test-dataset, still say it finished
        acc = f"test accuracy {100 * final['test_acc']:.2f}%" if final.get("test_acc") is not None else "trained"
        print(f"{cfg.label}: {acc} after {final['epoch']} epochs, "
              f"{final['wall_s']:.1f}s, {final['bytes_received'] / 1e6:.1f} MB received")
    return 0


def _gave_up_message(cfg, exc) -> str:
    """What stopped the run, and how to continue it."""
    head = f"storage service: {exc}; gave up after --storage-retries {cfg.storage_retries}."
    if exc.checkpoint is not None:
        path, epoch, step = exc.checkpoint
        return (f"{head} Checkpoint saved at epoch {epoch + 1}, step {step} ({path}): once the server is back, run "
                "the same command with --resume to continue from there.")
    if exc.checkpoint_path is not None:
        return (f"{head} Once the server is back, run the same command with --resume to continue from the last "
                f"checkpoint ({exc.checkpoint_path}).")
    if cfg.out_dir is None:
        return (f"{head} Without --out-dir there is no checkpoint to resume from: rerun with --out-dir DIR to make "
                "a run resumable (--resume).")
    return f"{head} No checkpoint was written yet: rerun the same command once the server is back."


def _demo(args: argparse.Namespace) -> int:
    from nessa._errors import CliError
    from trainer.config import ConfigError
    from nessa.demo import DemoError, DemoOptions, run_demo

    opts = DemoOptions(data=args.data, out_dir=args.out_dir, work_dir=args.work_dir, fraction=args.fraction,
                       epochs=args.epochs, subset_epochs=args.subset_epochs, reselect_every=args.reselect_every,
                       eval_every=args.eval_every, lr=args.lr, digits=args.digits, quick=args.quick, threads=args.threads,
                       progress=not args.no_progress)
    try:
        run_demo(opts)
    except (DemoError, ConfigError) as exc:
        raise CliError(str(exc)) from None
    return 0
