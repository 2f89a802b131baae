"""The command line shared by ``tools/model_converters/<source>2fusion.py``."""
import argparse
import sys
from typing import Callable, List, Optional

from .common import ConversionError, convert_file

__all__ = ['converter_main']


def converter_main(name: str, convert: Callable, default_config: str, description: str,
                   argv: Optional[List[str]] = None) -> int:
    """Parse ``SRC DST [--force] [--config CFG] [--cfg-options ...]`` and convert.

    Args:
        name (str): Name of the source format (e.g. ``'EMANet'``).
        convert (Callable): The conversion function, e.g.
            :func:`~mmseg_fusion.converters.convert_emanet`.
        default_config (str): Target config used without ``--config``.
        description (str): Help text.
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` when None. Defaults to None.

    Returns:
        int: Exit status: 0 on success, 1 when the conversion failed (nothing written).
    """
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help=f'official {name} checkpoint')
    parser.add_argument('dst', help='output checkpoint (mmseg format: state_dict + meta)')
    parser.add_argument('--force', action='store_true',
                        help='overwrite DST if it exists (it is replaced atomically)')
    parser.add_argument('--config', default=default_config,
                        help=f'target config the result must load into strictly '
                             f'(default: {default_config})')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override settings of the target config, e.g. '
                             'model.decode_head.num_classes=19')
    args = parser.parse_args(argv)
    try:
        dst = convert_file(args.src, args.dst, convert, args.config, name,
                           cfg_options=args.cfg_options, force=args.force, progress=True)
    except (ConversionError, FileExistsError) as err:
        print(f'\n{name} conversion failed, nothing written: {err}', file=sys.stderr)
        return 1
    print(f'\nconverted {args.src} -> {dst} (loads strictly into {args.config})')
    return 0
