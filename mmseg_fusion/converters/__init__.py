"""Checkpoint converters from the official releases to mmseg_fusion configs.

Pure functions ``convert_<source>(checkpoint, progress=False) -> (state_dict, unmapped_keys)``
plus the shared loading (local files, or ``http(s)://`` URLs downloaded into a cache and
checked against a sha256), strict checking and atomic writing used by
``tools/model_converters/<source>2fusion.py``.
"""
from .ccnet import CCNET_INPUT_NORMALISATION, CCNET_RULES, convert_ccnet
from .common import (
    INPLACE_ABN_EPS,
    ConversionError,
    build_target_model,
    check_state_dict,
    check_tensors,
    convert_file,
    fill_num_batches_tracked,
    inplace_abn_to_bn,
    load_source_checkpoint,
    norm_prefixes,
    rename_by_prefix,
    save_converted,
    strip_prefix,
)
from .dlaafa import (
    DLAAFA_CONFIGS,
    DLAAFA_INPUT_NORMALISATION,
    convert_dlaafa,
    dlaafa_default_config,
    dlaafa_flavour,
    dlaafa_rules,
)
from .download import (
    ChecksumError,
    DownloadError,
    cache_path,
    default_cache_dir,
    is_url,
    resolve_source,
)
from .emanet import EMANET_INPUT_NORMALISATION, EMANET_RULES, convert_emanet

__all__ = [
    'CCNET_INPUT_NORMALISATION', 'CCNET_RULES', 'DLAAFA_CONFIGS', 'DLAAFA_INPUT_NORMALISATION',
    'EMANET_INPUT_NORMALISATION', 'EMANET_RULES', 'INPLACE_ABN_EPS', 'ChecksumError',
    'ConversionError', 'DownloadError', 'build_target_model', 'cache_path', 'check_state_dict',
    'check_tensors', 'convert_ccnet', 'convert_dlaafa', 'convert_emanet', 'convert_file',
    'default_cache_dir', 'dlaafa_default_config', 'dlaafa_flavour', 'dlaafa_rules',
    'fill_num_batches_tracked', 'inplace_abn_to_bn', 'is_url', 'load_source_checkpoint',
    'norm_prefixes', 'rename_by_prefix', 'resolve_source', 'save_converted', 'strip_prefix'
]
