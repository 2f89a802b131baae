"""Fusions chosen by a config dict, the OpenMMLab way; the shorthand strings live here only.

Two kinds of registered fusion modules (``mmseg.registry.MODELS``):

- **pair fusions** merge two same-shaped feature maps, ``forward(x, y) -> z`` with ``x`` the
  shallow (or running) feature and ``y`` the deeper one: :class:`AFAFusion`,
  :class:`AFFFusion`, :class:`IAFFFusion`, :class:`ConcatFusion`, :class:`AddFusion`. The
  necks (:class:`~mmseg_fusion.models.AFANeck`, :class:`~mmseg_fusion.models.IAFFNeck`)
  take ``fusion=dict(type=...)``. A **level fusion** (the final fusion of ``AFANeck``) merges a
  list of K maps, ``forward([F_1, ..., F_K])``, deepest first: :class:`MultiAFAFusion`,
  :class:`ConcatFusion` / :class:`AddFusion` with ``num_inputs=K``, or any pair fusion folded
  over the levels (:class:`FoldFusion`).
- **scale fusions** fuse per-scale predictions in a stream (:class:`BaseScaleFusion`):
  :class:`SSRScaleFusion`, :class:`HMAScaleFusion`, :class:`SoftmaxScaleFusion`,
  :class:`MeanScaleFusion`, :class:`MaxScaleFusion`; ``SSREncoderDecoder`` takes
  ``fusion=dict(type=...)``.

A component offers its fusion what it knows (``channels``, ``conv_cfg``, ``norm_cfg``,
``act_cfg``, ``reduction``, ``num_inputs``); :func:`build_fusion` passes each offered argument
that the config does not set and that the fusion's constructor names (all of them to a
constructor with ``**kwargs``), so a user's own registered fusion takes what it needs.
"""
import inspect
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmseg.registry import MODELS

from .scale_fusions import BaseScaleFusion

__all__ = [
    'PAIR_FUSIONS', 'SCALE_FUSIONS', 'FoldFusion', 'build_fusion', 'build_level_fusion',
    'fusion_cfg', 'takes_argument'
]

#: Shorthand names of the pair fusions (the strings configs have always used).
PAIR_FUSIONS: Dict[str, str] = {
    'afa': 'AFAFusion', 'aff': 'AFFFusion', 'iaff': 'IAFFFusion', 'concat': 'ConcatFusion',
    'add': 'AddFusion'
}
#: Shorthand names of the scale fusions.
SCALE_FUSIONS: Dict[str, str] = {
    'ssr': 'SSRScaleFusion', 'hma': 'HMAScaleFusion', 'softmax': 'SoftmaxScaleFusion',
    'mean': 'MeanScaleFusion', 'max': 'MaxScaleFusion'
}

FusionCfg = Union[str, dict]


def fusion_cfg(fusion: FusionCfg, shorthands: Dict[str, str], owner: str,
               name: str = 'fusion') -> dict:
    """A fusion given as a shorthand string or a config dict, as a config dict.

    Args:
        fusion (str | dict): A key of ``shorthands`` or ``dict(type=..., ...)``.
        shorthands (dict[str, str]): :data:`PAIR_FUSIONS` or :data:`SCALE_FUSIONS`.
        owner (str): The component, for the error message.
        name (str): The argument, for the error message. Defaults to ``'fusion'``.

    Returns:
        dict: ``dict(type=..., ...)`` (a copy of a given dict).
    """
    if isinstance(fusion, str) and fusion in shorthands:
        return dict(type=shorthands[fusion])
    if isinstance(fusion, dict) and 'type' in fusion:
        return dict(fusion)
    raise ValueError(f'{owner}: {name} must be one of {tuple(shorthands)}, got {fusion!r} '
                     "(or a dict(type=...) naming a fusion registered in mmseg's MODELS)")


def _fusion_class(cfg: dict, owner: str, name: str) -> type:
    kind = cfg['type']
    cls = kind if isinstance(kind, type) else MODELS.get(kind)
    if cls is None:
        raise ValueError(f"{owner}: {name} type {kind!r} is not registered in mmseg's MODELS "
                         '(import the module that registers it, e.g. with custom_imports)')
    return cls


def takes_argument(cfg: dict, name: str, owner: str) -> bool:
    """Whether the fusion of ``cfg`` is given argument ``name`` by :func:`build_fusion`.

    Args:
        cfg (dict): ``dict(type=..., ...)``.
        name (str): The argument.
        owner (str): The component, for error messages.

    Returns:
        bool: True if its constructor names it (or takes ``**kwargs``).
    """
    params = inspect.signature(_fusion_class(cfg, owner, 'fusion')).parameters
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD
                                 for p in params.values())


def build_fusion(cfg: dict, owner: str, name: str = 'fusion', base: Optional[type] = None,
                 **offered) -> nn.Module:
    """Build a registered fusion, passing the offered arguments its constructor takes.

    Args:
        cfg (dict): ``dict(type=..., ...)`` (see :func:`fusion_cfg`).
        owner (str): The component, for error messages.
        name (str): The argument, for error messages. Defaults to ``'fusion'``.
        base (type, optional): The class the fusion must derive from (e.g.
            :class:`BaseScaleFusion`), checked before it is built. Defaults to None: a pair
            or level fusion (anything but a scale fusion).
        **offered: Arguments the component offers (``channels``, ``norm_cfg``, ...); each is
            passed unless ``cfg`` sets it or the constructor does not name it.

    Returns:
        nn.Module: The fusion.
    """
    cls = _fusion_class(cfg, owner, name)
    if base is not None and not issubclass(cls, base):
        raise ValueError(f'{owner}: {name} must be a {base.__name__} (a registered '
                         f'{base.__name__} subclass), got {cls.__name__}')
    if base is None and issubclass(cls, BaseScaleFusion):
        raise ValueError(f'{owner}: {name} must be a pair fusion (forward(x, y)) or a level '
                         f'fusion, got the scale fusion {cls.__name__}')
    args = {k: v for k, v in offered.items()
            if k not in cfg and takes_argument(cfg, k, owner)}
    return MODELS.build(dict(cfg, **args))


class FoldFusion(nn.Module):
    """A level fusion made of K - 1 pair fusions: ``x = F_K``, then ``x = fuse_k(x, F_k)``.

    The levels are folded from the shallowest (the last, which is the running feature ``x``)
    to the deepest, each deeper level entering as ``y``, as the nodes of IDA-Up fold deeper
    inputs into a shallow one. Keys: ``fusions.{k}.*``.

    Args:
        fusions (Sequence[nn.Module]): K - 1 pair fusions; ``fusions[k]`` folds in level k.
    """

    def __init__(self, fusions: Sequence[nn.Module]) -> None:
        super().__init__()
        self.fusions = nn.ModuleList(fusions)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Fuse K = ``len(fusions) + 1`` maps of shape (N, C, H, W), deepest first.

        Args:
            features (Sequence[Tensor]): The K maps.

        Returns:
            Tensor: The fused map (N, C, H, W).
        """
        if len(features) != len(self.fusions) + 1:
            raise ValueError(f'FoldFusion: expected {len(self.fusions) + 1} features, '
                             f'got {len(features)}')
        x = features[-1]
        for k in range(len(self.fusions) - 1, -1, -1):
            x = self.fusions[k](x, features[k])
        return x


def build_level_fusion(fusion: Optional[FusionCfg], pair_cfg: dict, num_inputs: int,
                       owner: str, **offered) -> nn.Module:
    """Build a level fusion of ``num_inputs`` maps (``forward(features) -> Tensor``).

    ``fusion`` None takes the pair fusion's own level fusion: the one its class names
    (``multi_input_type``, e.g. ``AFAFusion`` -> ``MultiAFAFusion``, with the same
    arguments). A level fusion (a class with ``level_fusion = True`` or a ``num_inputs``
    argument, e.g. ``MultiAFAFusion``, ``ConcatFusion``, ``AddFusion``) is built with
    ``num_inputs``; any other (pair) fusion is folded over the levels (:class:`FoldFusion`).

    Args:
        fusion (str | dict, optional): The level fusion, a shorthand of
            :data:`PAIR_FUSIONS` or a config dict; None: derived from ``pair_cfg``.
        pair_cfg (dict): The component's pair fusion.
        num_inputs (int): K.
        owner (str): The component, for error messages.
        **offered: As :func:`build_fusion` (``num_inputs`` is offered too).

    Returns:
        nn.Module: The level fusion.
    """
    if fusion is None:
        cfg = pair_cfg
        multi = getattr(_fusion_class(cfg, owner, 'fusion'), 'multi_input_type', None)
        if multi is not None:
            cfg = dict(cfg, type=multi)
    else:
        cfg = fusion_cfg(fusion, PAIR_FUSIONS, owner, 'final_fusion')
    cls = _fusion_class(cfg, owner, 'final_fusion')
    if getattr(cls, 'level_fusion', False) or 'num_inputs' in inspect.signature(cls).parameters:
        return build_fusion(cfg, owner, 'final_fusion', num_inputs=num_inputs, **offered)
    return FoldFusion([build_fusion(cfg, owner, 'final_fusion', **offered)
                       for _ in range(num_inputs - 1)])
