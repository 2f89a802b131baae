"""Convert an official EMANet checkpoint (XiaLiPKU/EMANet) into mmseg_fusion's format.

Usage: ``python tools/model_converters/emanet2fusion.py SRC DST [--sha256 HEX] [--cache-dir
DIR] [--force]``. SRC is a local file or an ``http(s)://`` URL, downloaded with progress into
``$TORCH_HOME/hub/checkpoints`` (or ``--cache-dir``) and reused by later runs; ``--sha256``
checks it, and on any error nothing is written to DST. The result loads strictly into
``configs/emanet/emanet-official_r101-d8_4xb4-30k_voc12aug-512x512.py``; see
:mod:`mmseg_fusion.converters.emanet` for the key map and the input normalisation.
"""
import os.path as osp
import sys

from mmseg_fusion.converters import convert_emanet
from mmseg_fusion.converters.cli import converter_main

CONFIG = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
                  'emanet', 'emanet-official_r101-d8_4xb4-30k_voc12aug-512x512.py')

if __name__ == '__main__':
    sys.exit(converter_main('EMANet', convert_emanet, CONFIG,
                            'Convert an official EMANet checkpoint ({"net": ...}) into an '
                            'EMAUHead(official=True) model'))
