"""Publish a training checkpoint: keep the weights and plain metadata, name it by its hash.

Usage: ``python tools/misc/publish_model.py work_dirs/x/iter_80000.pth ccnet_r50.pth``
writes ``ccnet_r50-<sha256[:8]>.pth`` (``state_dict`` + ``meta``; no optimizer, message hub
or scheduler state) and prints its full sha256. The result loads with
``torch.load(path, weights_only=True)``. See :mod:`mmseg_fusion.engine.publish`.
"""
import argparse
import sys
from typing import List, Optional

from mmseg_fusion.engine.checkpoint import CheckpointSecurityError
from mmseg_fusion.engine.publish import publish_checkpoint


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Keep state_dict and plain meta of a checkpoint; name it by its sha256')
    parser.add_argument('in_file', help='input checkpoint (mmengine format)')
    parser.add_argument('out_file', help='output name; the hash is added: <stem>-<sha8>.pth')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        path, sha256 = publish_checkpoint(args.in_file, args.out_file)
    except (CheckpointSecurityError, FileExistsError, FileNotFoundError, ValueError,
            TypeError) as err:
        print(f'publish_model: error: {err}', file=sys.stderr)
        return 1
    print(f'published: {path}')
    print(f'sha256: {sha256}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
