"""Unregistered helpers of the registered components (build-time checks, input resizing)."""
from .check import check_encoder_decoder, check_head_inputs, check_neck_in_channels, output_channels
from .size_divisor import multiple_size, resize_to_multiple

__all__ = [
    'check_encoder_decoder', 'check_head_inputs', 'check_neck_in_channels', 'multiple_size',
    'output_channels', 'resize_to_multiple'
]
