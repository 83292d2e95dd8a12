"""Applying trained models to images: the one plane pipeline (:mod:`.pipeline`)."""

from .model import PlaneResult, TrainedModel, load_model
from .pipeline import (
    ArraySink,
    EmbeddingSink,
    ImageInfo,
    LatentSink,
    MetricRows,
    MetricsFn,
    PlaneOutput,
    PlaneSink,
    Progress,
    as_image,
    count_steps,
    image_steps,
    result_of,
    run_image,
)
from .tiled import TileOptions

__all__ = [
    "ArraySink",
    "EmbeddingSink",
    "ImageInfo",
    "LatentSink",
    "MetricRows",
    "MetricsFn",
    "PlaneOutput",
    "PlaneResult",
    "PlaneSink",
    "Progress",
    "TileOptions",
    "TrainedModel",
    "as_image",
    "count_steps",
    "image_steps",
    "load_model",
    "result_of",
    "run_image",
]
