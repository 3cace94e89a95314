"""Dataset distillation next to the data: DM / DC base methods and PDD on top of either.

The storage host distils a small synthetic set once (``storage_service.distill_jobs`` writes each
stage as a data set) and serves it to every trainer like any other subset.
"""

from host.distill.config import DistillConfig, DistillError, Labels, Method, check_images, image_chw
from host.distill.herding import herding
from host.distill.pdd import Distiller, stage_seed, to_model_space
from host.distill.teacher import SOFT_LABEL_COLUMN
from host.distill.views import ViewSpec, seed_of_column, view_label_column

__all__ = ["SOFT_LABEL_COLUMN", "DistillConfig", "DistillError", "Labels", "Method", "Distiller", "check_images", "image_chw", "herding", "stage_seed",
           "to_model_space", "ViewSpec", "seed_of_column", "view_label_column"]
