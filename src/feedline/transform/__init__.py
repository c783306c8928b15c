"""The transform: one landed CSV and its feed contract in, clean Parquet, rejected rows and counts out."""

from __future__ import annotations

from feedline.transform.result import InvariantError, TransformResult
from feedline.transform.run import transform_file

__all__ = ["InvariantError", "TransformResult", "transform_file"]
