"""Deployment: ONNX export of mmseg_fusion segmentors, checked in onnxruntime.

``onnx`` and ``onnxruntime`` (``requirements/deploy.txt``) are imported only when an export or
a check runs, so ``import mmseg_fusion.deployment`` works without them.
"""
from .onnx import (
    ExportError,
    SegmentorExportWrapper,
    build_export_model,
    export_onnx,
    load_verify_images,
    onnx_session,
    random_verify_inputs,
    verify_onnx,
)

__all__ = [
    'ExportError', 'SegmentorExportWrapper', 'build_export_model', 'export_onnx',
    'load_verify_images', 'onnx_session', 'random_verify_inputs', 'verify_onnx'
]
