"""Applying trained models to images: the one plane pipeline (:mod:`.pipeline`)."""

from .model import PlaneResult, Posterior, TrainedModel, load_model
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
    QuantileSink,
    as_image,
    count_steps,
    deliver,
    image_steps,
    plane_output,
    result_of,
    run_image,
)
from .pooling import pool_latents
from .tiled import TileOptions

__all__ = [
    "ArraySink",
    "as_image",
    "count_steps",
    "deliver",
    "EmbeddingSink",
    "image_steps",
    "ImageInfo",
    "LatentSink",
    "load_model",
    "MetricRows",
    "MetricsFn",
    "plane_output",
    "PlaneOutput",
    "PlaneResult",
    "PlaneSink",
    "pool_latents",
    "Posterior",
    "Progress",
    "QuantileSink",
    "result_of",
    "run_image",
    "TileOptions",
    "TrainedModel",
]
