"""Publishing checkpoints: only the weights and plain metadata, written atomically.

MMSegmentation's ``tools/misc/publish_model.py`` (1.2.2) drops only ``optimizer``, keeps the
``message_hub`` (whose ``HistoryBuffer`` objects make the file unloadable with
``torch.load(weights_only=True)``), loads with a bare ``torch.load`` and names the output after
the hash of the *input* file. Here:

* the input is read with :func:`~mmseg_fusion.engine.load_checkpoint_file` (tensors, numpy and
  what mmengine writes; any other object is refused, not unpickled);
* the output holds ``state_dict`` (tensors only) and ``meta`` (plain Python values only: the
  config text, the dataset meta, the training progress and the versions of mmseg, mmcv,
  mmengine, torch and mmseg_fusion), so it loads with ``torch.load(path, weights_only=True)``;
* the file is written to a temporary file in the target folder, hashed, and moved to
  ``<stem>-<first 8 hex digits of its sha256>.pth`` by the package's atomic writer
  (:class:`~mmseg_fusion.utils.atomic_io.AtomicFile`: :func:`os.replace`, or a hard link,
  which also refuses an existing target; the mode a plain ``open`` would give); a failure
  leaves nothing behind and an existing file is never overwritten unless asked for.
"""
import hashlib
import os.path as osp
from collections import OrderedDict
from typing import Any, Dict, Mapping, Tuple

import numpy as np
import torch

from ..utils.atomic_io import AtomicFile
from .checkpoint import load_checkpoint_file

__all__ = [
    'atomic_save', 'hashed_filename', 'plain_value', 'publish_checkpoint',
    'publishable_checkpoint', 'sha256_file', 'software_versions'
]

#: ``meta`` entries of an mmengine checkpoint that a published model keeps
KEPT_META_KEYS = ('cfg', 'dataset_meta', 'epoch', 'iter', 'seed', 'experiment_name', 'time',
                  'mmengine_version')


def sha256_file(path: str, chunk_size: int = 1 << 20) -> str:
    """The sha256 of a file, as 64 hex digits.

    Args:
        path (str): The file.
        chunk_size (int): Bytes read at a time. Defaults to 1 MiB.

    Returns:
        str: The hex digest.
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_size), b''):
            digest.update(chunk)
    return digest.hexdigest()


def hashed_filename(out_file: str, sha256: str) -> str:
    """``<folder>/<stem>-<sha256[:8]>.pth`` for ``out_file`` ``<folder>/<stem>[.pth]``.

    Args:
        out_file (str): The requested output path.
        sha256 (str): Hex digest of the file written.

    Returns:
        str: The final path.
    """
    folder, name = osp.split(out_file)
    stem = name[:-len('.pth')] if name.endswith('.pth') else name
    if not stem:
        raise ValueError(f'publish: OUT_FILE must name a file, got {out_file!r}')
    return osp.join(folder, f'{stem}-{sha256[:8]}.pth')


def plain_value(value: Any, where: str = 'meta') -> Any:
    """Convert ``value`` into values ``torch.load(weights_only=True)`` reads back.

    Dicts (string keys), lists, tuples, ``str``, ``int``, ``float``, ``bool`` and ``None`` are
    kept (subclasses of them converted to the base type); numpy scalars and arrays become
    Python numbers and (nested) lists; 0-dim tensors become numbers.

    Args:
        value (Any): The value.
        where (str): Its location, for the error message. Defaults to ``'meta'``.

    Returns:
        Any: The plain value.

    Raises:
        TypeError: If the value (or a part of it) is of any other type.
    """
    if value is None:
        return value
    for kind in (bool, int, float, str):
        # subclasses (e.g. torch's TorchVersion, a str) are not plain: convert them
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        return value.item()
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f'publish: {where} has a key of type {type(key).__name__} '
                                f'({key!r}); expected str or int')
            out[key] = plain_value(item, f'{where}[{key!r}]')
        return out
    if isinstance(value, (list, tuple)):
        items = [plain_value(item, f'{where}[{i}]') for i, item in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    raise TypeError(f'publish: {where} is a {type(value).__module__}.{type(value).__name__}; '
                    'expected plain Python values (dict, list, tuple, str, int, float, bool, '
                    'None) or numpy values')


def software_versions() -> Dict[str, str]:
    """Versions of the software a published checkpoint was made with.

    Returns:
        dict[str, str]: ``mmseg_version``, ``mmcv_version``, ``mmengine_version``,
        ``torch_version`` and ``mmseg_fusion_version``.
    """
    import mmcv
    import mmengine
    import mmseg

    from ..version import __version__
    # str(): torch.__version__ is a TorchVersion, which weights_only loading refuses
    return dict(mmseg_version=str(mmseg.__version__), mmcv_version=str(mmcv.__version__),
                mmengine_version=str(mmengine.__version__), torch_version=str(torch.__version__),
                mmseg_fusion_version=str(__version__))


def publishable_checkpoint(checkpoint: Any) -> Dict[str, Any]:
    """Keep only the weights and plain metadata of a training checkpoint.

    Args:
        checkpoint (dict): A checkpoint as mmengine's ``Runner`` writes it (``state_dict``,
            ``meta``, ``optimizer``, ``message_hub``, ``param_schedulers`` ...) or a bare
            state dict.

    Returns:
        dict: ``{'state_dict': OrderedDict[str, Tensor], 'meta': dict}``. ``meta`` keeps
        ``cfg`` (the config text), ``dataset_meta``, ``epoch``, ``iter``, ``seed``,
        ``experiment_name`` and ``time`` where present, and records the current
        :func:`software_versions`; the mmengine version the checkpoint was trained with, if
        recorded, is kept as ``trained_with_mmengine_version``.

    Raises:
        ValueError: If there is no state dict, or an entry of it is not a tensor.
    """
    if not isinstance(checkpoint, Mapping):
        raise ValueError('publish: the checkpoint must be a dict with a "state_dict" (or a '
                         f'bare state dict), got {type(checkpoint).__name__}')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, Mapping) or not state_dict:
        raise ValueError('publish: the checkpoint has no (or an empty) "state_dict"')
    weights: Dict[str, torch.Tensor] = OrderedDict()
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f'publish: state_dict[{key!r}] is a {type(value).__name__}, '
                             'expected a tensor (is this a training checkpoint?)')
        weights[key] = value.detach().cpu()
    meta: Dict[str, Any] = {}
    old_meta = checkpoint.get('meta', None) if 'state_dict' in checkpoint else None
    if isinstance(old_meta, Mapping):
        for key in KEPT_META_KEYS:
            if key in old_meta:
                meta[key] = plain_value(old_meta[key], f'meta[{key!r}]')
    if 'mmengine_version' in meta:
        meta['trained_with_mmengine_version'] = meta.pop('mmengine_version')
    meta.update(software_versions())
    return {'state_dict': weights, 'meta': meta}


def atomic_save(obj: Any, path: str, overwrite: bool = False) -> str:
    """``torch.save`` into a temporary file next to ``path``, then move it into place.

    Args:
        obj (Any): What to save.
        path (str): The target file.
        overwrite (bool): Replace an existing ``path``. Defaults to False.

    Returns:
        str: ``path``.

    Raises:
        FileExistsError: If ``path`` exists and ``overwrite`` is False. Nothing is written.
    """
    with AtomicFile(path, overwrite=overwrite) as out:
        # a file object, so the archive's inner name does not depend on the temporary name
        torch.save(obj, out.open())
    return path


def publish_checkpoint(in_file: str, out_file: str,
                       overwrite: bool = False) -> Tuple[str, str]:
    """Write the publishable part of ``in_file`` as ``<out_file stem>-<sha256[:8]>.pth``.

    The file is written once, to a temporary file in the folder of ``out_file``; the hash is
    that of the bytes written, and the file is then moved to its final name.

    Args:
        in_file (str): A training checkpoint (mmengine format).
        out_file (str): The requested output name, e.g. ``work_dirs/ccnet.pth``.
        overwrite (bool): Replace an existing file of the final name. Defaults to False.

    Returns:
        tuple[str, str]: The path written and its full sha256 (hex).

    Raises:
        CheckpointSecurityError: If ``in_file`` holds objects other than what mmengine writes.
        FileExistsError: If the final file exists (and ``overwrite`` is False).
        ValueError: If ``in_file`` has no usable state dict.
    """
    if not osp.isfile(in_file):
        raise FileNotFoundError(f'publish: input checkpoint {in_file!r} does not exist')
    folder = osp.dirname(osp.abspath(out_file))
    if not osp.isdir(folder):
        raise FileNotFoundError(f'publish: output folder {folder!r} does not exist')
    hashed_filename(out_file, '0' * 64)  # validates the name before any work
    published = publishable_checkpoint(load_checkpoint_file(in_file, map_location='cpu'))
    # the temporary is named after out_file; the final name is that of the bytes' hash
    with AtomicFile(out_file) as out:
        torch.save(published, out.open())
        out.sync()
        sha256 = sha256_file(out.name)
        final = out.commit(hashed_filename(out_file, sha256), overwrite=overwrite)
    return final, sha256
