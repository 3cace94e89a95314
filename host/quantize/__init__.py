"""int8 model export for the ``nessa_features`` kernel: file format (:mod:`.format`), exporter (:mod:`.export`)."""

from host.quantize.format import FORMAT_VERSION, Op, QModel, load_qmodel, save_qmodel

__all__ = ["FORMAT_VERSION", "Op", "QModel", "load_qmodel", "save_qmodel", "export_model", "UnsupportedLayerError"]


def __getattr__(name: str):  # torch is only needed to export, not to load / run a model
    if name in ("export_model", "UnsupportedLayerError"):
        from host.quantize import export

        return getattr(export, name)
    raise AttributeError(f"module 'host.quantize' has no attribute {name!r}")
