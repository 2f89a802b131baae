"""The command line shared by ``tools/model_converters/<source>2fusion.py``.

``SRC`` is a local file or an ``http(s)://`` URL (downloaded with progress into the cache,
``$TORCH_HOME/hub/checkpoints`` unless ``--cache-dir`` says otherwise, and reused by later
runs); ``--sha256 HEX`` checks it. On any error nothing is written to ``DST``.
"""
import argparse
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from .common import ConversionError, convert_file
from .download import default_cache_dir, normalise_sha256

__all__ = ['converter_main']


def _sha256_arg(text: str) -> str:
    """``--sha256``: 64 hex digits, in lower case (an argparse ``type``)."""
    try:
        return normalise_sha256(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def converter_main(name: str, convert: Callable, default_config: Union[str, Callable[..., str]],
                   description: str, argv: Optional[List[str]] = None,
                   options: Sequence[Tuple[Tuple[str, ...], Dict[str, Any]]] = ()) -> int:
    """Parse the arguments of a converter tool and convert.

    The arguments are ``SRC DST [--sha256 HEX] [--cache-dir DIR] [--force] [--config CFG]
    [--cfg-options ...]`` plus ``options``. ``SRC`` may be an ``http(s)://`` URL: it is
    downloaded (progress on stderr) into the cache folder, or read from there if an earlier
    run downloaded it (see :mod:`mmseg_fusion.converters.download`).

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
    parser.add_argument('src', help=f'official {name} checkpoint: a local file or an '
                        'http(s):// URL (downloaded once into the cache folder)')
    parser.add_argument('dst', help='output checkpoint (mmseg format: state_dict + meta)')
    parser.add_argument('--sha256', type=_sha256_arg, default=None, metavar='HEX',
                        help='expected sha256 of SRC (64 hex digits); on a mismatch nothing '
                             'is written and a bad download is not cached')
    parser.add_argument('--cache-dir', default=None, metavar='DIR',
                        help='where URL sources are downloaded to and reused from (default: '
                             '$TORCH_HOME/hub/checkpoints, here '
                             f'{default_cache_dir()})'.replace('%', '%%'))
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
                           convert_kwargs=convert_kwargs, sha256=args.sha256,
                           cache_dir=args.cache_dir)
    except (ConversionError, FileExistsError) as err:
        print(f'\n{name} conversion failed, nothing written: {err}', file=sys.stderr)
        return 1
    print(f'\nconverted {args.src} -> {dst} (loads strictly into {chosen["config"]})')
    return 0
