"""Shared machinery of the checkpoint converters (``tools/model_converters/*2fusion.py``).

A conversion is: read the source with ``weights_only=True`` semantics
(:func:`load_source_checkpoint`), map its keys with a pure function (``convert_<source>``),
check the result against the model built from the target config with strict key and shape
matching (:func:`check_state_dict`, every unmapped, missing or mis-shaped key reported at once),
and write it atomically without overwriting (:func:`save_converted`).
:func:`convert_file` strings these together for the command-line tools; on any error nothing is
written. Its source may be an ``http(s)://`` URL, downloaded into a cache and checked against
a sha256 first (:mod:`mmseg_fusion.converters.download`).

Helpers shared by the key maps: :func:`inplace_abn_to_bn` (InPlace-ABN stores a weight ``w`` and
computes with ``|w| + eps``), :func:`fill_num_batches_tracked` (old BN implementations did not
save ``num_batches_tracked``) and :func:`rename_by_prefix`.
"""
import os.path as osp
import sys
from collections import OrderedDict
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from ..engine.checkpoint import CheckpointSecurityError, load_checkpoint_file
from ..engine.publish import atomic_save, plain_value, sha256_file, software_versions

__all__ = [
    'INPLACE_ABN_EPS', 'ConversionError', 'build_target_model', 'check_state_dict',
    'check_tensors', 'convert_file', 'fill_num_batches_tracked', 'inplace_abn_to_bn',
    'load_source_checkpoint', 'norm_prefixes', 'rename_by_prefix', 'save_converted',
    'strip_prefix'
]

#: InPlace-ABN's default epsilon (mapillary/inplace_abn and CCNet's vendored ``libs``)
INPLACE_ABN_EPS = 1e-5


class ConversionError(ValueError):
    """A checkpoint could not be converted; the message says what was wrong."""


def load_source_checkpoint(path: str) -> Any:
    """Read a source checkpoint with ``weights_only=True`` semantics.

    Tensors, containers, numbers and strings load (plus what mmengine itself writes); any other
    object (a class from the source repository, ``argparse.Namespace``, ...) is refused without
    being unpickled.

    Args:
        path (str): The checkpoint file.

    Returns:
        Any: The loaded object (a dict).

    Raises:
        ConversionError: If the file is missing, truncated or not a checkpoint, or if it needs
            objects that ``weights_only`` loading refuses.
    """
    if not osp.isfile(path):
        raise ConversionError(f'source checkpoint {path!r} does not exist')
    try:
        return load_checkpoint_file(path, map_location='cpu')
    except CheckpointSecurityError as err:
        if not _names_an_object(str(err)):
            raise ConversionError(f'{path!r} could not be read as a PyTorch checkpoint '
                                  f'(truncated or corrupt?): {err}') from None
        raise ConversionError(
            f'{path!r} holds Python objects besides tensors, containers, numbers and strings, '
            'so it was not unpickled (a checkpoint is a pickle and can run code). If you trust '
            'it, re-save only its weights, e.g. torch.save({"state_dict": '
            'torch.load(path, weights_only=False)["state_dict"]}, "weights.pth"), and convert '
            f'that file. {err}') from None
    except Exception as err:  # noqa: BLE001 - torch raises many types on corrupt files
        # (RuntimeError, EOFError, UnpicklingError, struct.error, BadZipFile, ...)
        raise ConversionError(f'{path!r} could not be read as a PyTorch checkpoint (truncated '
                              f'or corrupt?): {type(err).__name__}: {err}') from None


def _names_an_object(message: str) -> bool:
    """Whether a refusal names a Python object (rather than an unreadable byte stream)."""
    return 'global' in message.lower() or 'getattr(' in message


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> Dict[str, Any]:
    """Remove ``prefix`` from the keys that start with it (all of them, if any does).

    Args:
        state_dict (Mapping[str, Tensor]): The state dict.
        prefix (str): E.g. ``'module.'`` (DataParallel) or ``'net.'`` (Lightning).

    Returns:
        OrderedDict[str, Tensor]: The renamed state dict (unchanged if no key has the prefix).
    """
    if not any(key.startswith(prefix) for key in state_dict):
        return OrderedDict(state_dict)
    return OrderedDict((key[len(prefix):] if key.startswith(prefix) else key, value)
                       for key, value in state_dict.items())


def check_tensors(state_dict: Any, source: str) -> None:
    """Raise unless ``state_dict`` is a non-empty mapping from str to tensors.

    Args:
        state_dict (Any): The candidate.
        source (str): Name of the source format, for the message.
    """
    if not isinstance(state_dict, Mapping) or not state_dict:
        raise ConversionError(f'{source}: expected a non-empty state dict, got '
                              f'{type(state_dict).__name__}')
    bad = [key for key, value in state_dict.items()
           if not isinstance(key, str) or not isinstance(value, torch.Tensor)]
    if bad:
        raise ConversionError(f'{source}: these entries are not tensors: {bad}')


def rename_by_prefix(
        state_dict: Mapping[str, torch.Tensor], rules: Sequence[Tuple[str, str]],
        progress: bool = False) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Rename keys by the longest matching source prefix.

    Args:
        state_dict (Mapping[str, Tensor]): The source state dict.
        rules (Sequence[tuple[str, str]]): ``(source prefix, target prefix)`` pairs; a prefix
            matches a key equal to it or starting with it followed by ``'.'``.
        progress (bool): Show mmengine's progress bar. Defaults to False.

    Returns:
        tuple[OrderedDict[str, Tensor], list[str]]: The renamed entries and the keys no rule
        matched.
    """
    ordered = sorted(rules, key=lambda rule: len(rule[0]), reverse=True)
    out: Dict[str, torch.Tensor] = OrderedDict()
    unmapped: List[str] = []
    bar = _progress_bar(len(state_dict)) if progress else None
    for key, value in state_dict.items():
        for src, dst in ordered:
            if key == src or key.startswith(src + '.'):
                out[dst + key[len(src):]] = value
                break
        else:
            unmapped.append(key)
        if bar is not None:
            bar.update()
    return out, unmapped


def _progress_bar(total: int) -> Any:
    """A text progress bar (mmengine's) for ``total`` steps."""
    from mmengine.utils import ProgressBar

    # the current stdout (mmengine's default is bound when mmengine is imported)
    return ProgressBar(total, file=sys.stdout)


def norm_prefixes(state_dict: Mapping[str, torch.Tensor]) -> List[str]:
    """Prefixes of the normalisation layers (modules that hold a ``running_var``).

    Args:
        state_dict (Mapping[str, Tensor]): A state dict.

    Returns:
        list[str]: E.g. ``['bn1', 'layer1.0.bn1', ...]``.
    """
    return [key[:-len('.running_var')] for key in state_dict if key.endswith('.running_var')]


def inplace_abn_to_bn(state_dict: Dict[str, torch.Tensor], prefixes: Iterable[str],
                      eps: float = INPLACE_ABN_EPS) -> None:
    """Turn InPlace-ABN weights into BatchNorm weights, in place: ``w <- |w| + eps``.

    InPlace-ABN (mapillary/inplace_abn, and the copy vendored by CCNet) normalises with
    ``(|w| + eps) / sqrt(var + eps)`` so that the activation stays invertible; a plain
    ``BatchNorm2d`` that computes the same needs ``|w| + eps`` as its weight. Bias and running
    statistics are unchanged.

    Args:
        state_dict (dict[str, Tensor]): The state dict to modify.
        prefixes (Iterable[str]): Module prefixes of the InPlace-ABN layers.
        eps (float): The layers' epsilon. Defaults to 1e-5.
    """
    for prefix in prefixes:
        key = f'{prefix}.weight'
        if key not in state_dict:
            raise ConversionError(f'InPlace-ABN layer {prefix!r} has no weight ({key!r})')
        state_dict[key] = state_dict[key].abs() + eps


def fill_num_batches_tracked(state_dict: Dict[str, torch.Tensor]) -> List[str]:
    """Add ``num_batches_tracked = 0`` to every norm layer that lacks it, in place.

    Args:
        state_dict (dict[str, Tensor]): The state dict.

    Returns:
        list[str]: The keys added.
    """
    added = []
    for prefix in norm_prefixes(state_dict):
        key = f'{prefix}.num_batches_tracked'
        if key not in state_dict:
            state_dict[key] = torch.tensor(0, dtype=torch.long)
            added.append(key)
    return added


def build_target_model(config: str, cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build the model of a config, without pretrained weights or initialisation.

    Args:
        config (str): Path of an mmseg config (with ``custom_imports`` of mmseg_fusion).
        cfg_options (dict, optional): Overrides, as ``--cfg-options`` gives them.
            Defaults to None.

    Returns:
        nn.Module: The segmentor.
    """
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    if not osp.isfile(config):
        raise ConversionError(f'target config {config!r} does not exist')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model_cfg = cfg.model
    model_cfg.pretrained = None
    if model_cfg.get('backbone') is not None:
        model_cfg.backbone.init_cfg = None
    # types such as SegDataPreProcessor resolve in mmseg's scope (what tools/train.py sets)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmseg')):
        return MODELS.build(model_cfg)


def check_state_dict(state_dict: Mapping[str, torch.Tensor], model: torch.nn.Module,
                     unmapped: Sequence[str] = (), source: str = 'checkpoint') -> None:
    """Check a converted state dict against a model with strict key and shape matching.

    Args:
        state_dict (Mapping[str, Tensor]): The converted weights.
        model (nn.Module): The target model.
        unmapped (Sequence[str]): Source keys the converter could not map. Defaults to ().
        source (str): Name of the source format, for the message. Defaults to
            ``'checkpoint'``.

    Raises:
        ConversionError: Listing every unmapped source key, every key of the model the
            conversion did not produce (missing), every produced key the model does not have
            (unexpected) and every shape mismatch.
    """
    expected = model.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    shapes = [f'{key}: converted {tuple(state_dict[key].shape)}, model '
              f'{tuple(expected[key].shape)}'
              for key in expected if key in state_dict
              and tuple(state_dict[key].shape) != tuple(expected[key].shape)]
    problems = []
    for title, items in (('source keys with no mapping', list(unmapped)),
                         ('model keys missing from the conversion', missing),
                         ('converted keys the model does not have', unexpected),
                         ('shape mismatches', shapes)):
        if items:
            problems.append(f'{len(items)} {title}:\n  ' + '\n  '.join(items))
    if problems:
        raise ConversionError(f'{source} does not match the target model; nothing was '
                              'written.\n' + '\n'.join(problems))
    model.load_state_dict(state_dict, strict=True)


def save_converted(state_dict: Mapping[str, torch.Tensor], dst: str, meta: Mapping[str, Any],
                   force: bool = False) -> str:
    """Write ``{'state_dict', 'meta'}`` atomically; an existing ``dst`` needs ``force``.

    Args:
        state_dict (Mapping[str, Tensor]): The converted weights.
        dst (str): Output path.
        meta (Mapping[str, Any]): Plain metadata (see
            :func:`~mmseg_fusion.engine.publish.plain_value`).
        force (bool): Overwrite an existing ``dst``. Defaults to False.

    Returns:
        str: ``dst``.
    """
    folder = osp.dirname(osp.abspath(dst))
    if not osp.isdir(folder):
        raise ConversionError(f'output folder {folder!r} does not exist')
    if osp.lexists(dst) and not force:
        raise FileExistsError(f'{dst} exists; refusing to overwrite it (pass --force)')
    payload = {'state_dict': OrderedDict((k, v.contiguous()) for k, v in state_dict.items()),
               'meta': plain_value(dict(meta))}
    return atomic_save(payload, dst, overwrite=force)


def convert_file(src: str, dst: str, convert: Callable[..., Dict[str, torch.Tensor]],
                 config: Union[str, Callable[..., str]], name: str,
                 cfg_options: Optional[dict] = None, force: bool = False,
                 progress: bool = False, extra_meta: Optional[Mapping[str, Any]] = None,
                 convert_kwargs: Optional[Mapping[str, Any]] = None,
                 sha256: Optional[str] = None, cache_dir: Optional[str] = None) -> str:
    """Read, convert, check against the target config and write a checkpoint.

    Args:
        src (str): Source checkpoint: a local file, or an ``http(s)://`` URL that is
            downloaded into ``cache_dir`` first (or read from there if an earlier run
            downloaded it, see :mod:`mmseg_fusion.converters.download`).
        dst (str): Output path.
        convert (Callable): ``convert(checkpoint, progress=..., **convert_kwargs) ->
            (state_dict, unmapped)``, e.g. :func:`~mmseg_fusion.converters.convert_emanet`.
        config (str | Callable): Target config, whose model must accept the result strictly,
            or ``config(checkpoint, **convert_kwargs) -> path`` choosing it from the source
            (e.g. :func:`~mmseg_fusion.converters.dlaafa_default_config`).
        name (str): Name of the source format (for messages and ``meta['converted_from']``).
        cfg_options (dict, optional): Overrides of the config. Defaults to None.
        force (bool): Overwrite an existing ``dst``. Defaults to False.
        progress (bool): Show a progress bar while mapping keys. Defaults to False.
        extra_meta (Mapping, optional): More plain metadata. Defaults to None.
        convert_kwargs (Mapping, optional): Options of ``convert`` (and of a callable
            ``config``). Defaults to None.
        sha256 (str, optional): Expected sha256 of the source file (64 hex digits); a
            mismatch is an error. Defaults to None (not checked).
        cache_dir (str, optional): Cache folder of URL sources. Defaults to None
            (``$TORCH_HOME/hub/checkpoints``, see
            :func:`~mmseg_fusion.converters.download.default_cache_dir`).

    Returns:
        str: ``dst``.

    Raises:
        ConversionError: On any problem with the source or the mapping (nothing written),
            including :class:`~mmseg_fusion.converters.download.DownloadError` and
            :class:`~mmseg_fusion.converters.download.ChecksumError`.
        FileExistsError: If ``dst`` exists and ``force`` is False (checked first, before
            any download).
    """
    # imported here: the download module imports ConversionError from this one
    from .download import is_url, resolve_source, url_file_name

    if osp.lexists(dst) and not force:
        raise FileExistsError(f'{dst} exists; refusing to overwrite it (pass --force)')
    folder = osp.dirname(osp.abspath(dst))
    if not osp.isdir(folder):
        raise ConversionError(f'output folder {folder!r} does not exist')
    local, source_sha256 = resolve_source(src, sha256, cache_dir, progress=progress)
    try:
        checkpoint = load_source_checkpoint(local)
    except ConversionError as err:
        if not is_url(src):
            raise
        raise ConversionError(f'{err} (downloaded from {src}; delete {local!r} to download '
                              'it again, and pass --sha256 to check it)') from None
    convert_kwargs = dict(convert_kwargs or {})
    state_dict, unmapped = convert(checkpoint, progress=progress, **convert_kwargs)
    if callable(config):
        config = config(checkpoint, **convert_kwargs)
    model = build_target_model(config, cfg_options)
    check_state_dict(state_dict, model, unmapped, source=f'{name} checkpoint {src!r}')
    meta = dict(converted_from=name, source_file=osp.basename(src),
                source_sha256=source_sha256 or sha256_file(local), config=osp.basename(config),
                cfg_options=dict(cfg_options or {}))
    if is_url(src):
        meta.update(source_file=url_file_name(src), source_url=src)
    meta.update(extra_meta or {})
    meta.update(software_versions())
    return save_converted(state_dict, dst, meta, force=force)
