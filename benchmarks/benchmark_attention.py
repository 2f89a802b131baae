"""Speed and peak memory of attention modules: criss-cross (ours vs mmcv), and scaling with H x W.

Part 1 compares :class:`mmseg_fusion.layers.CrissCrossAttention` with mmcv's
``mmcv.ops.CrissCrossAttention`` on the same weights (``gamma = 0.5``) at (2, 512, 97, 97) (the
shape of mmcv's own benchmark) and at a small odd shape: forward (under ``no_grad``) and
forward + backward time, peak memory, their ratios, and the largest output difference.

Part 2 (``--scaling``) runs criss-cross attention, A² double attention
(:class:`mmseg_fusion.layers.DoubleAttention`), mmcv's ``NonLocal2d`` (embedded Gaussian) and the
EMANet heads (our ``EMAUHead`` vs mmseg's ``EMAHead``, same weights) as H = W grows, to show how
time and memory scale (non-local attention is quadratic in H x W, criss-cross
``O(HW (H + W))``, A² and EM attention linear).

Part 3 (``--video``) compares the 3D criss-cross attention of CCNet (TPAMI) on clips,
:class:`mmseg_fusion.layers.CrissCrossAttention3d` (case ``cca3d-tT``: a batch of ``B * T``
frames regrouped into B clips of T frames, attended over row, column and time line, and back),
with the 2D layer run on every frame (``cca2d-frames``: the same batch, same weights, no
temporal entries): what the temporal context costs per frame.

Method:

* Timing: every implementation is built once; the runs are interleaved (A, B, A, B, ...) so
  that a noisy machine affects all of them alike; the minimum and the median over
  ``--repeat`` runs are reported, after one warm-up run each. CPU threads: ``--threads``.
* Peak memory (:class:`harness.PeakMemory`). On CPU each case runs in a fresh Python process
  (:func:`harness.run_json`, environment :func:`harness.memory_env`: large blocks are mmap-ed
  and returned to the OS when freed, so the resident set follows the live tensors). The child
  builds the module, runs it once on a tiny input (lazy kernel and thread-pool set-up),
  creates the input and the upstream gradient, then runs the case once inside
  ``PeakMemory``: the kernel's resident-set high-water mark is reset (``echo 5 >
  /proc/self/clear_refs``, Linux >= 4.0; imports peak far above the steady state), and
  ``VmHWM`` after the run minus the resident set before it is the extra peak memory of the
  case: activations saved for backward, temporaries and gradients (parameter gradients
  included). A peak that is only an upper bound (the mark could not be reset) is noted. On
  GPU: ``torch.cuda.max_memory_allocated`` minus the allocation before the run, in-process.

Usage::

    python benchmarks/benchmark_attention.py                 # part 1, CPU (+ GPU if any)
    python benchmarks/benchmark_attention.py --scaling       # parts 1 and 2
    python benchmarks/benchmark_attention.py --scaling-only --sizes 33 65 97
    python benchmarks/benchmark_attention.py --video-only --clip-length 4

Exits with status 1 when outputs of compared implementations differ by more than ``--tol``
(relative to the output's largest magnitude).
"""
import argparse
import gc
import json
import os
import os.path as osp
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from harness import MIB, PeakMemory, run_json  # noqa: E402

Shape = Tuple[int, int, int, int]
CCA_SHAPES: Tuple[Shape, ...] = ((2, 512, 97, 97), (2, 64, 23, 29))
SCALING_CASES = ('cca-ours', 'a2', 'nonlocal', 'emau-ours', 'emau-mmseg')
PAIRS = (('cca-ours', 'cca-mmcv'), ('emau-ours', 'emau-mmseg'))


def _head_kwargs(channels: int) -> dict:
    """Arguments shared by the two EMANet heads (in = channels = ema_channels = C)."""
    return dict(in_channels=channels, channels=channels, ema_channels=channels,
                num_classes=19, num_bases=64, num_stages=3, concat_input=True,
                norm_cfg=dict(type='BN'), align_corners=False)


def build_case(name: str, channels: int) -> Tuple[nn.Module, Callable]:
    """Build one implementation with deterministic weights.

    Args:
        name (str): ``cca-ours``, ``cca-mmcv``, ``a2``, ``nonlocal``, ``emau-ours`` or
            ``emau-mmseg``.
        channels (int): Channels C of the input.

    Returns:
        tuple[nn.Module, Callable]: The module and ``run(x) -> Tensor`` that calls it on an
        (N, C, H, W) input.
    """
    torch.manual_seed(0)
    if name.startswith('cca'):
        from mmseg_fusion.layers import CrissCrossAttention
        module = CrissCrossAttention(channels)
        for p in module.parameters():
            nn.init.normal_(p, std=0.02)
        module.gamma.scale.data.fill_(0.5)
        if name == 'cca-mmcv':
            from mmcv.ops import CrissCrossAttention as MMCVCrissCrossAttention
            ref = MMCVCrissCrossAttention(channels)
            ref.load_state_dict(module.state_dict(), strict=True)
            module = ref
        return module, module
    if name == 'cca2d-frames' or name.startswith('cca3d-t'):
        from mmseg_fusion.layers import CrissCrossAttention, CrissCrossAttention3d
        module = CrissCrossAttention(channels)
        for p in module.parameters():
            nn.init.normal_(p, std=0.02)
        module.gamma.scale.data.fill_(0.5)
        if name == 'cca2d-frames':
            return module, module
        clip = int(name[len('cca3d-t'):])
        module3d = CrissCrossAttention3d(channels)
        module3d.load_state_dict(module.state_dict(), strict=True)

        def run3d(x: torch.Tensor) -> torch.Tensor:
            # (B * T, C, H, W) frames -> (B, C, T, H, W) clips -> frames, as RCCA3DHead does
            n, c, h, w = x.shape
            y = module3d(x.view(n // clip, clip, c, h, w).transpose(1, 2))
            return y.transpose(1, 2).reshape(n, c, h, w)

        return module3d, run3d
    if name == 'a2':
        from mmseg_fusion.layers import DoubleAttention
        module = DoubleAttention(channels)
        return module, module
    if name == 'nonlocal':
        from mmcv.cnn import NonLocal2d
        module = NonLocal2d(channels)
        return module, module
    if name.startswith('emau'):
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules

        import mmseg_fusion  # noqa: F401  (registers EMAUHead)
        register_all_modules(init_default_scope=False)
        module = MODELS.build(dict(type='EMAUHead', **_head_kwargs(channels)))
        if name == 'emau-mmseg':
            ref = MODELS.build(dict(type='EMAHead', **_head_kwargs(channels)))
            ref.load_state_dict(module.state_dict(), strict=True)
            module = ref
        return module, lambda x: module([x])
    raise ValueError(f'benchmark_attention: unknown case {name!r}')


def _sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def run_once(run: Callable, x: torch.Tensor, backward: bool,
             grad_out: Optional[torch.Tensor] = None) -> None:
    """One forward (under ``no_grad``) or one forward + backward."""
    if not backward:
        with torch.no_grad():
            run(x)
        return
    out = run(x)
    out.backward(grad_out if grad_out is not None else torch.ones_like(out))
    x.grad = None


def time_cases(names: Sequence[str], shape: Shape, device: str, repeat: int,
               modules: Dict[str, Tuple[nn.Module, Callable]]) -> Dict[str, dict]:
    """Interleaved timing of forward and forward + backward; min and median in seconds."""
    x = torch.randn(shape, device=device)
    xg = x.clone().requires_grad_()
    grad_outs = {}
    for name in names:
        module, run = modules[name]
        module.to(device).train()
        with torch.no_grad():
            grad_outs[name] = torch.randn_like(run(x))
    times = {name: {'fwd': [], 'fwd+bwd': []} for name in names}
    for it in range(repeat + 1):  # the first round is a warm-up
        for mode, backward in (('fwd', False), ('fwd+bwd', True)):
            for name in names:
                module, run = modules[name]
                _sync(device)
                start = time.perf_counter()
                run_once(run, xg if backward else x, backward, grad_outs[name])
                _sync(device)
                if it:
                    times[name][mode].append(time.perf_counter() - start)
                module.zero_grad(set_to_none=True)
    return {name: {mode: (min(v), statistics.median(v)) for mode, v in t.items()}
            for name, t in times.items()}


def memory_child(name: str, shape: Shape, mode: str, threads: int) -> dict:
    """Run one case once in this (fresh) process and return its extra peak memory in MiB."""
    torch.set_num_threads(threads)
    module, run = build_case(name, shape[1])
    module.train()
    backward = mode == 'fwd+bwd'
    # warm-up on a tiny input: loads lazily initialised kernels and thread pools, whose
    # memory is not the case's
    # (a clip case needs whole clips)
    tiny = torch.randn(shape[0] if name.startswith('cca3d') else 1, shape[1], 5, 7,
                       requires_grad=True)
    run_once(run, tiny, True)
    x = torch.randn(shape).requires_grad_(backward)
    with torch.no_grad():
        grad_out = torch.randn_like(run(x.detach())) if backward else None
    module.zero_grad(set_to_none=True)
    gc.collect()
    with PeakMemory() as memory:
        run_once(run, x, backward, grad_out)
    return {'peak_mb': memory.peak_mib, 'exact': memory.exact}


def memory_cpu(name: str, shape: Shape, mode: str, threads: int) -> float:
    """Extra peak memory (MiB) of one case on CPU, measured in a fresh subprocess."""
    cmd = [sys.executable, os.path.abspath(__file__), '--memory-case', name,
           '--memory-shape', ','.join(map(str, shape)), '--memory-mode', mode,
           '--threads', str(threads)]
    try:
        result = run_json(cmd)
    except RuntimeError as e:
        raise RuntimeError(f'memory case {name} {shape} {mode} failed: {e}') from None
    if not result['exact']:
        print(f'  note: {name} {shape} {mode}: the high-water mark could not be reset; the '
              'peak is an upper bound')
    return result['peak_mb']


def memory_cuda(run: Callable, module: nn.Module, shape: Shape, mode: str) -> float:
    """Extra peak memory (MiB) of one case on CUDA."""
    backward = mode == 'fwd+bwd'
    x = torch.randn(shape, device='cuda').requires_grad_(backward)
    with torch.no_grad():
        grad_out = torch.randn_like(run(x.detach())) if backward else None
    module.zero_grad(set_to_none=True)
    with PeakMemory('cuda') as memory:
        run_once(run, x, backward, grad_out)
    return memory.peak / MIB


def max_difference(a: Callable, b: Callable, shape: Shape, device: str) -> float:
    """Largest output difference of two implementations, relative to the output's magnitude."""
    x = torch.randn(shape, device=device)
    with torch.no_grad():
        ya, yb = a(x), b(x)
    return ((ya - yb).abs().max() / yb.abs().max().clamp(min=1e-12)).item()


def measure(names: Sequence[str], shape: Shape, device: str, repeat: int, threads: int,
            skip_memory: bool) -> Dict[str, dict]:
    """Time and memory of several implementations at one shape on one device."""
    modules = {name: build_case(name, shape[1]) for name in names}
    for module, _ in modules.values():
        module.to(device)
    results = time_cases(names, shape, device, repeat, modules)
    for name in names:
        for mode in ('fwd', 'fwd+bwd'):
            if skip_memory:
                mem = float('nan')
            elif device == 'cpu':
                mem = memory_cpu(name, shape, mode, threads)
            else:
                mem = memory_cuda(modules[name][1], modules[name][0], shape, mode)
            results[name][f'mem {mode}'] = mem
    for a, b in PAIRS:
        if a in modules and b in modules:
            for module, _ in (modules[a], modules[b]):
                module.eval()
            results[a][f'diff vs {b}'] = max_difference(modules[a][1], modules[b][1], shape,
                                                        device)
    return results


def print_table(title: str, shape: Shape, results: Dict[str, dict],
                baseline: Optional[str] = None) -> None:
    """Markdown table: min (median) times in ms, peak memory in MiB, ratios to ``baseline``."""
    print(f'\n{title} {tuple(shape)}')
    print('| module | fwd ms | fwd+bwd ms | peak MiB fwd | peak MiB fwd+bwd |')
    print('|---|---|---|---|---|')
    for name, r in results.items():
        print(f'| {name} | {r["fwd"][0] * 1e3:.1f} ({r["fwd"][1] * 1e3:.1f}) '
              f'| {r["fwd+bwd"][0] * 1e3:.1f} ({r["fwd+bwd"][1] * 1e3:.1f}) '
              f'| {r["mem fwd"]:.0f} | {r["mem fwd+bwd"]:.0f} |')
    if baseline and baseline in results:
        base = results[baseline]
        for name, r in results.items():
            if name == baseline:
                continue
            ratios = [r[m][0] / base[m][0] for m in ('fwd', 'fwd+bwd')]
            # (a peak below malloc's mmap threshold can be 0: no ratio then)
            mems = [r[f'mem {m}'] / base[f'mem {m}'] if base[f'mem {m}'] > 0 else float('nan')
                    for m in ('fwd', 'fwd+bwd')]
            print(f'{name} / {baseline}: time fwd {ratios[0]:.2f}x, fwd+bwd {ratios[1]:.2f}x '
                  f'(min over runs); peak memory fwd {mems[0]:.2f}x, fwd+bwd {mems[1]:.2f}x')
    for name, r in results.items():
        for key, value in r.items():
            if key.startswith('diff'):
                print(f'{name} {key}: max |difference| / max |output| = {value:.2e}')


def cca_benchmark(devices: Sequence[str], repeat: int, threads: int, skip_memory: bool,
                  shapes: Sequence[Shape] = CCA_SHAPES) -> List[float]:
    """Part 1: our criss-cross attention vs mmcv's; returns the output differences."""
    diffs = []
    for device in devices:
        for shape in shapes:
            results = measure(('cca-mmcv', 'cca-ours'), shape, device, repeat, threads,
                              skip_memory)
            print_table(f'criss-cross attention, {device}, threads={threads}:', shape,
                        results, baseline='cca-mmcv')
            diffs.append(results['cca-ours']['diff vs cca-mmcv'])
    return diffs


def scaling_benchmark(devices: Sequence[str], sizes: Sequence[int], channels: int, batch: int,
                      repeat: int, threads: int, skip_memory: bool) -> List[float]:
    """Part 2: criss-cross, A², non-local and the EMANet heads as H = W grows.

    Returns the output differences of the compared pairs (EMAUHead vs mmseg EMAHead).
    """
    diffs = []
    for device in devices:
        for size in sizes:
            shape = (batch, channels, size, size)
            results = measure(SCALING_CASES, shape, device, repeat, threads, skip_memory)
            print_table(f'scaling, {device}, threads={threads}:', shape, results)
            diffs.append(results['emau-ours']['diff vs emau-mmseg'])
    return diffs


def video_benchmark(devices: Sequence[str], shapes: Sequence[Shape], clip_length: int,
                    repeat: int, threads: int, skip_memory: bool) -> None:
    """Part 3: 3D criss-cross attention on clips vs the 2D attention on every frame."""
    case3d = f'cca3d-t{clip_length}'
    for device in devices:
        for shape in shapes:
            if shape[0] % clip_length:
                raise ValueError(f'benchmark_attention: --video-shapes N = {shape[0]} must be a '
                                 f'multiple of --clip-length {clip_length}')
            results = measure(('cca2d-frames', case3d), shape, device, repeat, threads,
                              skip_memory)
            print_table(f'3D vs per-frame criss-cross attention ({shape[0] // clip_length} '
                        f'clips of {clip_length} frames), {device}, threads={threads}:', shape,
                        results, baseline='cca2d-frames')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', choices=('cpu', 'cuda', 'all'), default='all',
                        help='cpu, cuda, or all (= cpu plus cuda when available)')
    parser.add_argument('--repeat', type=int, default=5, help='timed runs per case')
    parser.add_argument('--threads', type=int, default=torch.get_num_threads(),
                        help='CPU threads (torch.set_num_threads)')
    parser.add_argument('--skip-memory', action='store_true', help='time only')
    parser.add_argument('--cca-shapes', nargs='+', default=['2,512,97,97', '2,64,23,29'],
                        help='N,C,H,W shapes of part 1')
    parser.add_argument('--scaling', action='store_true', help='also run part 2')
    parser.add_argument('--scaling-only', action='store_true', help='only run part 2')
    parser.add_argument('--sizes', type=int, nargs='+', default=[33, 65, 97],
                        help='H = W of part 2')
    parser.add_argument('--channels', type=int, default=256, help='C of part 2')
    parser.add_argument('--batch', type=int, default=1, help='N of part 2')
    parser.add_argument('--tol', type=float, default=1e-5,
                        help='largest allowed relative output difference')
    parser.add_argument('--video', action='store_true', help='also run part 3')
    parser.add_argument('--video-only', action='store_true', help='only run part 3')
    parser.add_argument('--video-shapes', nargs='+', default=['8,256,65,65', '8,64,23,29'],
                        help='N,C,H,W shapes of part 3 (N = clips x clip length frames)')
    parser.add_argument('--clip-length', type=int, default=4, help='T of part 3')
    parser.add_argument('--memory-case', help=argparse.SUPPRESS)
    parser.add_argument('--memory-shape', help=argparse.SUPPRESS)
    parser.add_argument('--memory-mode', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark; returns the exit status."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.memory_case:
        shape = tuple(int(v) for v in args.memory_shape.split(','))
        print(json.dumps(memory_child(args.memory_case, shape, args.memory_mode, args.threads)))
        return 0
    devices = ['cpu'] if args.device in ('cpu', 'all') else []
    if args.device in ('cuda', 'all') and torch.cuda.is_available():
        devices.append('cuda')
    if not devices:
        print('benchmark_attention: --device cuda asked for, but CUDA is not available')
        return 2
    print(f'torch {torch.__version__}, devices {devices}, CPU threads {args.threads}')
    diffs = []
    if not (args.scaling_only or args.video_only):
        shapes = [tuple(int(v) for v in s.split(',')) for s in args.cca_shapes]
        diffs += cca_benchmark(devices, args.repeat, args.threads, args.skip_memory, shapes)
    if (args.scaling or args.scaling_only) and not args.video_only:
        diffs += scaling_benchmark(devices, args.sizes, args.channels, args.batch,
                                   args.repeat, args.threads, args.skip_memory)
    if args.video or args.video_only:
        shapes = [tuple(int(v) for v in s.split(',')) for s in args.video_shapes]
        video_benchmark(devices, shapes, args.clip_length, args.repeat, args.threads,
                        args.skip_memory)
    worst = max(diffs) if diffs else 0.
    print(f'\nlargest relative output difference: {worst:.2e} (tolerance {args.tol:.0e})')
    return 0 if worst <= args.tol else 1


if __name__ == '__main__':
    sys.exit(main())
