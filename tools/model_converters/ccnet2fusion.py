"""Convert an official CCNet checkpoint (speedinghzl/CCNet) into mmseg_fusion's format.

Usage: ``python tools/model_converters/ccnet2fusion.py SRC DST [--force]``. The result loads
strictly into ``configs/ccnet/ccnet-official_r101-d8_4xb2-60k_cityscapes-769x769.py``; see
:mod:`mmseg_fusion.converters.ccnet` for the key map, the InPlace-ABN weight fix and the input
normalisation.
"""
import os.path as osp
import sys

from mmseg_fusion.converters import convert_ccnet
from mmseg_fusion.converters.cli import converter_main

CONFIG = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
                  'ccnet', 'ccnet-official_r101-d8_4xb2-60k_cityscapes-769x769.py')

if __name__ == '__main__':
    sys.exit(converter_main('CCNet', convert_ccnet, CONFIG,
                            'Convert an official CCNet checkpoint (bare state dict, '
                            'InPlace-ABN) into an RCCAHead model'))
