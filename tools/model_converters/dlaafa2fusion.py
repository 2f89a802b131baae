"""Convert an official AFA checkpoint (SysCV/dla-afa Lightning ``.ckpt``) into our format.

Usage: ``python tools/model_converters/dlaafa2fusion.py SRC DST [--sha256 HEX] [--cache-dir
DIR] [--force] [--inplace-abn true|false] [--config CFG]``. SRC is a local file or an
``http(s)://`` URL, downloaded with progress into ``$TORCH_HOME/hub/checkpoints`` (or
``--cache-dir``) and reused by later runs; ``--sha256`` checks it, and on any error nothing is
written to DST. Without ``--config`` the target config is chosen from the checkpoint's
``hyper_parameters`` (DLA architecture and norm flavour, see
``mmseg_fusion.converters.DLAAFA_CONFIGS``); the result loads strictly into it. See
:mod:`mmseg_fusion.converters.dlaafa` for the key map, the InPlace-ABN handling and the input
normalisation.
"""
import sys

from mmseg_fusion.converters import convert_dlaafa, dlaafa_default_config
from mmseg_fusion.converters.cli import converter_main


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value not in ('true', 'false'):
        raise ValueError(f'expected true or false, got {text!r}')
    return value == 'true'


if __name__ == '__main__':
    sys.exit(converter_main(
        'AFA', convert_dlaafa, dlaafa_default_config,
        'Convert an official AFA-DLA-Up + OCR + SSR checkpoint (dla-afa Lightning .ckpt) '
        'into a DLA + AFANeck + OCRBlockHead + SSREncoderDecoder model',
        options=[(('--inplace-abn',), dict(
            type=_bool, default=None, dest='inplace_abn', metavar='true|false',
            help='norm flavour of the checkpoint when hyper_parameters does not record it '
                 '(true: InPlace-ABN, leaky ReLU 0.01, |w| + eps; false: BatchNorm + ReLU)'))]))
