"""Convert an official CCNet checkpoint (speedinghzl/CCNet) into mmseg_fusion's format.

Usage: ``python tools/model_converters/ccnet2fusion.py SRC DST [--sha256 HEX] [--cache-dir DIR]
[--force]``. SRC is a local file or an ``http(s)://`` URL, downloaded with progress into
``$TORCH_HOME/hub/checkpoints`` (or ``--cache-dir``) and reused by later runs; ``--sha256``
checks it, and on any error nothing is written to DST. The result loads strictly into
``configs/ccnet/ccnet-official_r101-d8_4xb2-60k_cityscapes-769x769.py``; see
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
