"""The command line shared by ``tools/model_converters/<source>2fusion.py``."""
import argparse
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from .common import ConversionError, convert_file

__all__ = ['converter_main']


def converter_main(name: str, convert: Callable, default_config: Union[str, Callable[..., str]],
                   description: str, argv: Optional[List[str]] = None,
                   options: Sequence[Tuple[Tuple[str, ...], Dict[str, Any]]] = ()) -> int:
    """Parse ``SRC DST [--force] [--config CFG] [--cfg-options ...]`` and convert.

    Args:
        name (str): Name of the source format (e.g. ``'EMANet'``).
        convert (Callable): The conversion function, e.g.
            :func:`~mmseg_fusion.converters.convert_emanet`.
        default_config (str | Callable): Target config used without ``--config``, or
            ``default_config(checkpoint, **options) -> path`` choosing it from the source.
        description (str): Help text.
        argv (list[str], optional): Arguments; ``sys.argv[1:]`` when None. Defaults to None.
        options (Sequence[tuple]): Extra ``(flags, add_argument kwargs)`` whose values (when
            not None) are passed to ``convert`` and a callable ``default_config`` as keyword
            arguments named by their ``dest``. Defaults to ().

    Returns:
        int: Exit status: 0 on success, 1 when the conversion failed (nothing written).
    """
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help=f'official {name} checkpoint')
    parser.add_argument('dst', help='output checkpoint (mmseg format: state_dict + meta)')
    parser.add_argument('--force', action='store_true',
                        help='overwrite DST if it exists (it is replaced atomically)')
    default_help = ('chosen from the checkpoint' if callable(default_config)
                    else default_config)
    parser.add_argument('--config', default=None,
                        help=f'target config the result must load into strictly '
                             f'(default: {default_help})')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override settings of the target config, e.g. '
                             'model.decode_head.num_classes=19')
    dests = [parser.add_argument(*flags, **kwargs).dest for flags, kwargs in options]
    args = parser.parse_args(argv)
    convert_kwargs = {dest: getattr(args, dest) for dest in dests
                      if getattr(args, dest) is not None}
    chosen = {'config': args.config or default_config}

    def pick_config(checkpoint: Any, **kwargs) -> str:
        chosen['config'] = default_config(checkpoint, **kwargs)
        return chosen['config']

    config = pick_config if args.config is None and callable(default_config) else chosen['config']
    try:
        dst = convert_file(args.src, args.dst, convert, config, name,
                           cfg_options=args.cfg_options, force=args.force, progress=True,
                           convert_kwargs=convert_kwargs)
    except (ConversionError, FileExistsError) as err:
        print(f'\n{name} conversion failed, nothing written: {err}', file=sys.stderr)
        return 1
    print(f'\nconverted {args.src} -> {dst} (loads strictly into {chosen["config"]})')
    return 0
