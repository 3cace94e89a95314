"""``nessa export``: torch model state -> int8 quantized model file (``.nqm``) for ``nessa_features``.

    nessa export MODEL.safetensors --arch small_cnn --store STORE --out MODEL.nqm [--calib 512]

Calibration uses the first ``--calib`` samples of STORE (its sample shape and class count fix the
model's input and head). Prints the layer program and per-sample operation counts.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["register"]


def register(sub) -> None:
    p = sub.add_parser("export", help="export a model to the int8 layer program of the FPGA features kernel",
                       description="Quantize MODEL (a .safetensors state of --arch) to a NeSSA quantized "
                       "model file, calibrated on samples of STORE.")
    p.add_argument("model", help="model state (.safetensors)")
    p.add_argument("--arch", required=True, help="architecture (small_cnn, resnet20, resnet18)")
    p.add_argument("--store", required=True, help="store whose samples calibrate the activation ranges")
    p.add_argument("--out", required=True, help="output quantized model file (.nqm)")
    p.add_argument("--calib", type=int, default=512, help="calibration samples (default 512)")
    p.set_defaults(func=_export)


def _export(args) -> int:
    from nessa._cli_select import load_model
    from host.device.opcounts import features_op_counts
    from host.quantize.export import UnsupportedLayerError, export_model
    from host.quantize.format import Op, save_qmodel
    from safetensors import SafetensorError

    from nessa._errors import CliError
    from storage_service.store import Store, StoreError

    if args.calib < 1:
        raise CliError(f"--calib must be >= 1, got {args.calib}")
    if Path(args.out).resolve() == Path(args.model).resolve():
        raise CliError(f"--out {args.out} is the input model; writing it would destroy the model")
    try:
        store = Store(args.store)
    except (StoreError, OSError) as e:
        raise CliError(f"cannot open store {args.store}: {e}") from None
    m = store.manifest
    if m.dtype != "uint8":
        raise CliError(f"the features kernel reads uint8 samples; store {args.store} holds {m.dtype}")
    try:
        model = load_model(args.model, args.arch, m.sample_shape, m.num_classes)
    except (ValueError, OSError) as e:
        raise CliError(str(e)) from None
    ids = list(range(min(args.calib, len(store))))
    samples, _ = store.take(ids)
    try:
        qm = export_model(model, samples, m.sample_shape, arch=args.arch)
    except UnsupportedLayerError as e:
        raise CliError(str(e)) from None
    try:
        save_qmodel(qm, args.out)
    except (OSError, SafetensorError) as e:  # safetensors reports I/O errors as SafetensorError
        raise CliError(f"cannot write --out {args.out}: {e}") from None
    counts = features_op_counts(qm, 1)
    for i, (op, lay) in enumerate(zip(qm.ops(), qm.info["layers"])):
        print(f"{i:3d} {Op.NAMES[int(op[0])]:8s} {lay['name']:28s} out {int(op[7])}x{int(op[8])}x{int(op[9])}", file=sys.stderr)
    print(f"{args.out}: {len(qm.ops())} ops, {qm.weights.size} weight bytes, "
          f"{counts['macs_per_sample']:,} MACs per sample, calibrated on {len(ids)} samples", file=sys.stderr)
    return 0
