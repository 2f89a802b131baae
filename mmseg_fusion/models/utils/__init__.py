"""Unregistered helpers of the registered components (build-time checks)."""
from .check import check_encoder_decoder, check_head_inputs, check_neck_in_channels, output_channels

__all__ = [
    'check_encoder_decoder', 'check_head_inputs', 'check_neck_in_channels', 'output_channels'
]
