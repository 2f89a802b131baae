"""GPU check: the CUDA path of mmseg_fusion in one table (issue 23).

    bash benchmarks/gpu_check.sh [--device cuda|cpu] [--out FILE.md] [--jobs N]
                                 [--work-dir DIR] [--skip SECTION ...]

Four sections, each adding rows to one markdown table (printed at the end, and written to
``--out``); progress lines are printed as the checks run.

1. ``tests``: ``pytest tests/test_functional tests/test_layers tests/test_models --device
   DEVICE -m "not slow"``: the model and functional tests with ``torch.set_default_device
   (DEVICE)`` (``tests/conftest.py``), so a tensor created on the wrong device fails there.
   Passed, failed (errors included) and skipped counts come from pytest's JUnit XML. With
   ``--device cpu`` (the smoke run) only the three test files of :data:`CPU_TEST_FILES` run
   (criss-cross attention: function, layer, head), so the CPU mode stays within 2 minutes.
2. ``train``: every synthetic config (``configs/*/*synthetic*.py``; the video configs on
   their own synthetic clips) trains ``--iters`` iterations (20) through ``tools/train.py``
   on a small synthetic data set (64x64 crops, batch 2, logger interval 1, one validation
   and one checkpoint at the end). On CUDA with ``--amp``: mmengine's ``AmpOptimWrapper``,
   float16 autocast with dynamic loss scaling. mmengine 0.10.7's ``AmpOptimWrapper`` asserts
   that CUDA, NPU or MLU is available and has no CPU path, so the CPU mode trains in float32
   (``OptimWrapper``, ``tools/train.py`` without ``--amp``) and 4 iterations; CPU autocast
   (bfloat16 and float16) is covered by ``tests/test_models/test_amp.py``. A row passes when
   the run exits 0 and every logged loss is finite.
3. ``criss-cross``: forward + backward time (median of ``--repeat`` runs after a warm-up)
   and peak memory of :class:`mmseg_fusion.layers.CrissCrossAttention` vs
   ``mmcv.ops.CrissCrossAttention`` (same weights, ``gamma = 0.5``) and of the bare
   :func:`mmseg_fusion.functional.criss_cross_attention`, at (2, 512, 97, 97) on CUDA, in
   float32 and under float16 autocast. The CPU mode runs (2, 64, 33, 33) in float32 and
   under bfloat16 autocast. The layer rows give the largest difference from mmcv's output,
   relative to its largest magnitude.
4. ``ssr``: inference of one image over 5 scales: ``SSREncoderDecoder.predict`` (the scales
   streamed into a running fusion), ``SSRTTAModel`` and mmseg's ``SegTTAModel`` (5 views,
   no flip, each predicted at one scale, ``SegTTAModel`` keeps them all until it averages
   their softmax). On CUDA: the Cityscapes SSR config
   (``configs/ssr/ssr_deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py``, DeepLabV3+
   R50-D8, sliding 1024x1024 windows, scales 0.5-2.0) at 1024x2048 with random weights; on
   CPU the synthetic SSR config (ResNetV1c-18 at 1/4 width, whole-image inference) at
   64x128.

Peak memory is the memory a case allocates beyond what was allocated before it
(:class:`harness.PeakMemory`): on CUDA ``torch.cuda.max_memory_allocated`` minus
``torch.cuda.memory_allocated`` before the case (the caching allocator's count of live
tensors); on CPU the kernel's high-water mark of the resident set (``VmHWM``, reset through
``/proc/self/clear_refs``) minus the resident set before the case, in a child process started
with :func:`harness.memory_env` (blocks over 128 KiB are unmapped when freed, so the resident
set follows the live tensors). Where the mark cannot be reset the peak is an upper bound, and
the row's result says so.

The exit status is 1 when any row failed, 0 otherwise (skipped rows say why).
"""
import argparse
import json
import math
import os
import os.path as osp
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from harness import ROOT, PeakMemory, memory_env  # noqa: E402

SECTIONS = ('tests', 'train', 'criss-cross', 'ssr')
#: test folders whose tests run on ``--device`` (tests/conftest.py's DEVICE_FOLDERS)
TEST_FOLDERS = ('tests/test_functional', 'tests/test_layers', 'tests/test_models')
#: the CPU smoke run's tests: one file of each folder (criss-cross function, layer, head)
CPU_TEST_FILES = ('tests/test_functional/test_criss_cross.py',
                  'tests/test_layers/test_criss_cross.py',
                  'tests/test_models/test_decode_heads/test_rcca_head.py')
#: CUDA sizes and the CPU mode's smaller ones
CCA_SHAPE = {'cuda': (2, 512, 97, 97), 'cpu': (2, 64, 33, 33)}
SSR_CONFIG = {'cuda': 'configs/ssr/ssr_deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py',
              'cpu': 'configs/ssr/ssr_fcn_r18-d8_1xb8-600_synthetic-128x128.py'}
SSR_SIZE = {'cuda': (1024, 2048), 'cpu': (64, 128)}
AUTOCAST_DTYPE = {'cuda': 'float16', 'cpu': 'bfloat16'}


@dataclass
class Row:
    """One row of the table.

    Args:
        check (str): The section (``tests``, ``train``, ``criss-cross``, ``ssr``).
        case (str): What ran.
        setting (str): Device, precision, size.
        status (str): ``ok``, ``FAIL`` or ``skipped``.
        result (str): The outcome in words and numbers.
        time_s (float, optional): Seconds (wall time of the run, or of one call).
        peak_mib (float, optional): Peak memory in MiB beyond what was allocated before.
    """

    check: str
    case: str
    setting: str
    status: str
    result: str
    time_s: Optional[float] = None
    peak_mib: Optional[float] = None


def log(msg: str) -> None:
    """A progress line, printed at once."""
    print(f'[gpu_check {time.strftime("%H:%M:%S")}] {msg}', flush=True)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The command line, with the device's defaults filled in."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', choices=('cuda', 'cpu'), default='cuda',
                        help='cuda (the check), or cpu (a smoke run of the same script)')
    parser.add_argument('--out', help='also write the table (markdown) to this file')
    parser.add_argument('--iters', type=int, help='training iterations (cuda 20, cpu 4)')
    parser.add_argument('--jobs', type=int,
                        help='training runs at a time (cuda 4, cpu: the CPU count, at most 2)')
    parser.add_argument('--repeat', type=int, help='timed runs per case (cuda 10, cpu 3)')
    parser.add_argument('--work-dir', help='keep data and logs here (default: a temporary '
                        'folder, removed at the end)')
    parser.add_argument('--skip', nargs='+', choices=SECTIONS, default=[],
                        help='sections left out')
    parser.add_argument('--worker', choices=('criss-cross', 'ssr'), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cuda = args.device == 'cuda'
    args.iters = args.iters or (20 if cuda else 4)
    args.jobs = args.jobs or (4 if cuda else max(1, min(2, os.cpu_count() or 1)))
    args.repeat = args.repeat or (10 if cuda else 3)
    if args.iters < 1 or args.jobs < 1 or args.repeat < 1:
        parser.error(f'--iters, --jobs and --repeat must be >= 1, got {args.iters}, '
                     f'{args.jobs}, {args.repeat}')
    return args


def child_env(**extra: str) -> Dict[str, str]:
    """The environment of the child processes (unbuffered output, no version warning)."""
    env = dict(os.environ, PYTHONUNBUFFERED='1', MMSEG_FUSION_SKIP_VERSION_CHECK='1')
    env.pop('LOCAL_RANK', None)
    env.update(extra)
    return env


# ------------------------------------------------------------------------------- 1. tests
def junit_counts(path: str) -> Dict[str, int]:
    """``tests``, ``failures``, ``errors`` and ``skipped`` summed over a JUnit XML file."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == 'testsuite' else root.findall('testsuite')
    return {key: sum(int(s.get(key, 0)) for s in suites)
            for key in ('tests', 'failures', 'errors', 'skipped')}


def check_tests(args: argparse.Namespace, work_dir: str) -> List[Row]:
    """Run the model and functional tests with ``--device``; one row with the counts."""
    paths = TEST_FOLDERS if args.device == 'cuda' else CPU_TEST_FILES
    xml = osp.join(work_dir, 'pytest.xml')
    cmd = [sys.executable, '-m', 'pytest', *paths, '--device', args.device, '-m', 'not slow',
           '-q', '-p', 'no:cacheprovider', f'--junitxml={xml}']
    log(f'tests: {" ".join(cmd[1:])}')
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=child_env(), check=False)
    seconds = time.perf_counter() - start
    setting = f'--device {args.device}, -m "not slow"'
    case = ('pytest ' + ' '.join(p.replace('tests/', '') for p in paths)
            if args.device == 'cpu' else 'pytest test_functional test_layers test_models')
    if not osp.isfile(xml):
        return [Row('tests', case, setting, 'FAIL', f'pytest exited {proc.returncode} '
                    'without a report', seconds)]
    n = junit_counts(xml)
    failed = n['failures'] + n['errors']
    passed = n['tests'] - failed - n['skipped']
    ok = proc.returncode == 0 and failed == 0 and passed > 0
    result = f'{passed} passed, {failed} failed, {n["skipped"]} skipped'
    if args.device == 'cpu':
        result += ' (CPU smoke: a subset)'
    return [Row('tests', case, setting, 'ok' if ok else 'FAIL', result, seconds)]


# ------------------------------------------------------------------------------- 2. train
def synthetic_configs() -> List[str]:
    """``configs/*/*synthetic*.py``, relative to the repository, sorted."""
    configs = []
    for folder in sorted(os.listdir(osp.join(ROOT, 'configs'))):
        path = osp.join(ROOT, 'configs', folder)
        if folder.startswith('_') or not osp.isdir(path):
            continue
        configs += [f'configs/{folder}/{name}' for name in sorted(os.listdir(path))
                    if name.endswith('.py') and 'synthetic' in name]
    return configs


def train_options(config: str, data: Dict[str, str], iters: int) -> List[str]:
    """``--cfg-options`` of a short run of a synthetic config on the small data sets.

    Args:
        config (str): The config (relative path); ``synthetic-video`` configs use the video
            data (clips of 4 frames; batch = one clip), the others the multi-scale data
            (64x64 crops, batch 2).
        data (dict): ``{'scales': root, 'video': root}``.
        iters (int): Training iterations.

    Returns:
        list[str]: ``key=value`` options.
    """
    video = 'synthetic-video' in config
    opts = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.data_root={data["video" if video else "scales"]}',
                 f'{loader}.num_workers=0', f'{loader}.persistent_workers=False']
    opts += [f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
             f'param_scheduler.0.end={iters}', f'default_hooks.checkpoint.interval={iters}',
             'default_hooks.logger.interval=1', 'randomness.seed=0']
    if video:  # the frames are generated at 64x64; the pipeline has no resize or crop
        opts += ['train_dataloader.batch_size=4']
    else:  # the synthetic pipelines: [load, load_ann, RandomResize, RandomCrop, ...]
        opts += ['train_dataloader.batch_size=2', 'model.data_preprocessor.size=(64,64)',
                 'train_dataloader.dataset.pipeline.2.scale=(64,64)',
                 'train_dataloader.dataset.pipeline.3.crop_size=(64,64)',
                 'val_dataloader.dataset.pipeline.1.scale=(64,64)',
                 'test_dataloader.dataset.pipeline.1.scale=(64,64)']
    return opts


LOSS_RE = re.compile(r'Iter\(train\).*?\sloss: ([-+0-9.e]+|nan|inf|-inf)\s')


def train_one(config: str, args: argparse.Namespace, data: Dict[str, str], work_dir: str,
              threads: int) -> Row:
    """Train one config through ``tools/train.py``; its row: is every logged loss finite."""
    name = osp.splitext(osp.basename(config))[0]
    run_dir = osp.join(work_dir, 'train', name)
    os.makedirs(run_dir, exist_ok=True)
    amp = args.device == 'cuda'
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), osp.join(ROOT, config),
           '--work-dir', run_dir, *(['--amp'] if amp else []), '--cfg-options',
           *train_options(config, data, args.iters),
           # every run starts from random weights: a retrofit config's load_from names a
           # checkpoint this check has not made (tests/ check the retrofit loading)
           'load_from=None',
           *(['optim_wrapper.dtype=float16'] if amp else [])]
    setting = (f'{args.device}, AmpOptimWrapper float16, {args.iters} it, random weights' if amp
               else f'cpu, float32 OptimWrapper (AMP refuses CPU), {args.iters} it, random weights')
    start = time.perf_counter()
    with open(osp.join(run_dir, 'stdout.log'), 'w') as out:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=False,
                              env=child_env(OMP_NUM_THREADS=str(threads)))
    seconds = time.perf_counter() - start
    with open(osp.join(run_dir, 'stdout.log')) as f:
        text = f.read()
    losses = [float(v) for v in LOSS_RE.findall(text)]
    finite = [v for v in losses if math.isfinite(v)]
    ok = proc.returncode == 0 and len(losses) == args.iters and len(finite) == len(losses)
    if losses:
        result = (f'{len(finite)}/{args.iters} logged losses finite, '
                  f'{losses[0]:.3f} -> {losses[-1]:.3f}')
    else:
        result = f'0/{args.iters} logged losses'
    if proc.returncode != 0:
        last = [line for line in text.strip().splitlines() if line.strip()][-1:] or ['']
        result += f'; exit {proc.returncode}: {last[0][-120:]}'
        log(f'train: {name} failed; the end of its log ({run_dir}/stdout.log):\n'
            f'{text[-3000:]}')
    return Row('train', name, setting, 'ok' if ok else 'FAIL', result.replace('|', '/'),
               seconds)


def check_train(args: argparse.Namespace, work_dir: str) -> List[Row]:
    """Generate the small data sets, train every synthetic config; one row per config."""
    sys.path.insert(0, ROOT)
    from mmseg_fusion.datasets import generate_dataset, generate_video_dataset
    data = {'scales': osp.join(work_dir, 'data', 'synthetic_scales'),
            'video': osp.join(work_dir, 'data', 'synthetic_video')}
    if not osp.isdir(data['scales']):
        generate_dataset(data['scales'], num_train=12, num_val=4, image_size=64, seed=0)
    if not osp.isdir(data['video']):
        generate_video_dataset(data['video'], num_train=2, num_val=1, num_frames=8,
                               image_size=64, seed=0)
    configs = synthetic_configs()
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    log(f'train: {len(configs)} synthetic configs, {args.iters} iterations each, '
        f'{args.jobs} at a time')
    rows: Dict[str, Row] = {}

    def run(config: str) -> None:
        row = train_one(config, args, data, work_dir, threads)
        rows[config] = row
        log(f'train [{len(rows)}/{len(configs)}] {row.case}: {row.status}, {row.result} '
            f'({row.time_s:.1f} s)')

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(run, configs))
    return [rows[c] for c in configs]


# -------------------------------------------------------------------- 3-4. timed workers
def sync(device: str) -> None:
    """Wait for the device (CUDA kernels run asynchronously)."""
    if device == 'cuda':
        import torch
        torch.cuda.synchronize()


def measure(fn: Callable[[], object], device: str,
            repeat: int) -> Tuple[float, float, bool]:
    """Warm up once, then the peak memory of one call and the median time of ``repeat``.

    Returns:
        tuple[float, float, bool]: Seconds, peak MiB and whether the peak is exact (not an
        upper bound, see :class:`harness.PeakMemory`).
    """
    fn()
    sync(device)
    times = []
    with PeakMemory(device) as peak:
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    for _ in range(repeat - 1):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), peak.peak_mib, peak.exact


def _bound(exact: bool) -> str:
    """What a row's result adds when its peak is only an upper bound."""
    return '' if exact else '; peak memory: an upper bound (VmHWM not reset)'


def worker_criss_cross(args: argparse.Namespace) -> List[Row]:
    """Criss-cross attention forward + backward: ours (layer, function) vs mmcv's module."""
    import torch
    import torch.nn as nn

    from mmseg_fusion.functional import criss_cross_attention
    from mmseg_fusion.layers import CrissCrossAttention
    device = args.device
    n, c, h, w = CCA_SHAPE[device]
    note = ', smaller CPU size' if device == 'cpu' else ''
    torch.manual_seed(0)
    ours = CrissCrossAttention(c)
    for p in ours.parameters():
        nn.init.normal_(p, std=0.02)
    ours.gamma.scale.data.fill_(0.5)
    modules = {'CrissCrossAttention (ours)': ours.to(device)}
    mmcv_error = None
    try:
        from mmcv.ops import CrissCrossAttention as MMCVCrissCrossAttention
        ref = MMCVCrissCrossAttention(c)
        ref.load_state_dict(ours.state_dict(), strict=True)
        modules['mmcv.ops.CrissCrossAttention'] = ref.to(device)
    except Exception as e:  # noqa: BLE001 (mmcv without its compiled ops: say why)
        mmcv_error = f'{type(e).__name__}: {e}'.replace('|', '/')[:150]
    x = torch.randn(n, c, h, w, device=device, requires_grad=True)
    grad = torch.randn(n, c, h, w, device=device)
    qk = [torch.randn(n, c // 8, h, w, device=device, requires_grad=True) for _ in range(2)]
    v = torch.randn(n, c, h, w, device=device, requires_grad=True)
    rows = []
    for precision in ('float32', AUTOCAST_DTYPE[device]):
        dtype = getattr(torch, precision)
        label = 'float32' if precision == 'float32' else f'autocast {precision}'
        setting = f'{device}, {label}, x ({n}, {c}, {h}, {w}){note}, fwd+bwd'

        def context(dtype: 'torch.dtype' = dtype):
            return torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32)

        with torch.no_grad(), context():
            outputs = {name: module(x).float() for name, module in modules.items()}
        for name, module in modules.items():

            def step(module: nn.Module = module) -> None:
                with context():
                    out = module(x)
                out.backward(grad.to(out.dtype))
                x.grad = None
                module.zero_grad(set_to_none=True)

            seconds, peak, exact = measure(step, device, args.repeat)
            result = 'finite' if torch.isfinite(outputs[name]).all() else 'NOT FINITE'
            status = 'ok' if result == 'finite' else 'FAIL'
            if 'ours' in name and len(modules) > 1:
                ref_out = outputs['mmcv.ops.CrissCrossAttention']
                diff = ((ref_out - outputs[name]).abs().max() / ref_out.abs().max()).item()
                result += f', max diff from mmcv {diff:.1e} (relative)'
                if diff > (1e-4 if precision == 'float32' else 5e-2):
                    status = 'FAIL'
            rows.append(Row('criss-cross', name, setting, status, result + _bound(exact),
                            seconds, peak))
            log(f'criss-cross {name} {setting}: {seconds * 1e3:.1f} ms, peak {peak:.1f} MiB')

        def step_function() -> None:
            with context():
                out = criss_cross_attention(*qk, v)
            out.backward(grad.to(out.dtype))
            for t in (*qk, v):
                t.grad = None

        with torch.no_grad(), context():
            finite = bool(torch.isfinite(criss_cross_attention(*qk, v)).all())
        seconds, peak, exact = measure(step_function, device, args.repeat)
        rows.append(Row('criss-cross', 'criss_cross_attention (ours, function)',
                        f'{device}, {label}, q, k ({n}, {c // 8}, {h}, {w}), v ({n}, {c}, '
                        f'{h}, {w}){note}, fwd+bwd', 'ok' if finite else 'FAIL',
                        f'{"finite" if finite else "NOT FINITE"}; no convolutions, no residual'
                        + _bound(exact), seconds, peak))
        log(f'criss-cross function {setting}: {seconds * 1e3:.1f} ms, peak {peak:.1f} MiB')
        if mmcv_error:
            rows.append(Row('criss-cross', 'mmcv.ops.CrissCrossAttention', setting,
                            'skipped', mmcv_error))
    return rows


def ssr_views(height: int, width: int, scales: Sequence[float], seed: int = 0) -> tuple:
    """One random image, as one batch (``SSREncoderDecoder``) and as test-time views.

    Returns:
        tuple[dict, dict]: ``test_step`` data of the image, and of its views (one per scale,
        no flip; ``inputs`` and ``data_samples`` hold one list per view, as mmcv's
        ``TestTimeAug`` and ``pseudo_collate`` give them).
    """
    import torch
    import torch.nn.functional as F
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(seed)
    img = (torch.rand(3, height, width, generator=g) * 255).to(torch.uint8)

    def sample(size: Tuple[int, int]) -> 'SegDataSample':
        return SegDataSample(metainfo=dict(
            img_path='gpu_check.png', ori_shape=(height, width), img_shape=size,
            pad_shape=size, scale_factor=(size[1] / width, size[0] / height), flip=False,
            flip_direction=None))

    single = dict(inputs=[img], data_samples=[sample((height, width))])
    inputs, samples = [], []
    for scale in scales:
        size = (int(round(height * scale)), int(round(width * scale)))
        view = F.interpolate(img[None].float(), size=size, mode='bilinear',
                             align_corners=False)[0].round().clamp(0, 255).to(torch.uint8)
        inputs.append([view])
        samples.append([sample(size)])
    return single, dict(inputs=inputs, data_samples=samples)


def worker_ssr(args: argparse.Namespace) -> List[Row]:
    """SSR over 5 scales vs mmseg's ``SegTTAModel`` over the same 5 views (no flips)."""
    import torch
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS
    device = args.device
    config = SSR_CONFIG[device]
    cfg = Config.fromfile(osp.join(ROOT, config))  # imports mmseg_fusion (custom_imports)
    init_default_scope('mmseg')
    scales = tuple(cfg.model.test_cfg.scales)
    height, width = SSR_SIZE[device]
    cfg.model.pretrained = None  # random weights: nothing is downloaded
    cfg.model.backbone.init_cfg = None

    def build(test_scales: Sequence[float]) -> torch.nn.Module:
        model_cfg = cfg.model.copy()
        model_cfg.test_cfg = dict(model_cfg.test_cfg, scales=tuple(test_scales))
        torch.manual_seed(0)
        return revert_sync_batchnorm(MODELS.build(model_cfg)).to(device).eval()

    ssr = build(scales)
    single = build((1.0, ))
    single.load_state_dict(ssr.state_dict())
    cases = {
        'SSREncoderDecoder.predict': ssr,
        'SSRTTAModel': MODELS.build(dict(type='SSRTTAModel', module=single)).eval(),
        'SegTTAModel (mmseg)': MODELS.build(dict(type='SegTTAModel', module=single)).eval(),
    }
    one, views = ssr_views(height, width, scales)
    mode = cfg.model.test_cfg.get('mode', 'whole')
    what = (f'{cfg.model.backbone.type}-{cfg.model.backbone.get("depth", "")} '
            f'{cfg.model.decode_head.type}, {mode}').replace('-,', ',')
    rows = []
    for name, model in cases.items():
        data = one if name.startswith('SSREncoder') else views
        preds: list = []

        def run(model: torch.nn.Module = model, data: dict = data, preds: list = preds) -> None:
            with torch.no_grad():
                preds[:] = model.test_step(data)

        seconds, peak, exact = measure(run, device, max(1, args.repeat // 3))
        shape = tuple(preds[0].pred_sem_seg.data.shape[-2:])
        ok = shape == (height, width)
        setting = (f'{device}, float32, {height}x{width}, scales {scales}'
                   + (', small CPU size' if device == 'cpu' else ''))
        result = (f'{len(scales)} {"scales" if name.startswith("SSREncoder") else "views"}, '
                  f'{what}; prediction {shape[0]}x{shape[1]}' + _bound(exact))
        rows.append(Row('ssr', name, setting, 'ok' if ok else 'FAIL', result, seconds, peak))
        log(f'ssr {name}: {seconds:.3f} s, peak {peak:.1f} MiB')
    return rows


def run_worker(section: str, args: argparse.Namespace) -> List[Row]:
    """Run a timed section in a fresh child process (own allocator and memory counters)."""
    cmd = [sys.executable, '-u', osp.abspath(__file__), '--worker', section, '--device',
           args.device, '--repeat', str(args.repeat)]
    # a fixed mmap threshold: the resident set follows the live tensors
    env = memory_env()
    env.pop('LOCAL_RANK', None)
    log(f'{section}: running in a child process')
    rows_line = None
    with subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout:  # the child's progress lines, as they come
            if line.startswith('ROWS '):
                rows_line = line[len('ROWS '):]
            else:
                print(line, end='', flush=True)
    if proc.returncode != 0 or rows_line is None:
        return [Row(section, f'{section} benchmark', args.device, 'FAIL',
                    f'the worker exited {proc.returncode} (its output is above)')]
    return [Row(**r) for r in json.loads(rows_line)]


# ----------------------------------------------------------------------------- the table
def fmt(value: Optional[float], digits: int = 4) -> str:
    """A number with ``digits`` significant digits, or ``-``."""
    if value is None:
        return '-'
    return f'{value:.{digits}g}'


def table(rows: Sequence[Row]) -> str:
    """The rows as a markdown table."""
    lines = ['| check | case | setting | status | result | time (s) | peak memory (MiB) |',
             '|---|---|---|---|---|---:|---:|']
    for r in rows:
        lines.append(f'| {r.check} | {r.case} | {r.setting} | {r.status} | {r.result} | '
                     f'{fmt(r.time_s)} | {fmt(r.peak_mib)} |')
    return '\n'.join(lines)


def environment(device: str) -> str:
    """One line: the device and the versions of the stack."""
    import torch
    versions = [f'torch {torch.__version__}']
    for module in ('mmcv', 'mmengine', 'mmseg'):
        try:
            versions.append(f'{module} {__import__(module).__version__}')
        except Exception:  # noqa: BLE001
            versions.append(f'{module} not importable')
    if device == 'cuda' and torch.cuda.is_available():
        where = f'{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})'
    else:
        where = f'CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)'
    return f'{where}; {", ".join(versions)}'


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the sections, print the table (and write ``--out``); 1 if a row failed."""
    args = parse_args(argv)
    if args.worker:
        import torch
        if args.device == 'cpu':  # one thread: steadier times on a shared machine
            torch.set_num_threads(1)
        rows = (worker_criss_cross if args.worker == 'criss-cross' else worker_ssr)(args)
        print('ROWS ' + json.dumps([asdict(r) for r in rows]), flush=True)
        return 0
    if args.device == 'cuda':
        import torch
        if not torch.cuda.is_available():
            print('gpu_check: --device cuda needs CUDA (torch.cuda.is_available() is False, '
                  f'torch {torch.__version__}); use --device cpu for the CPU smoke run',
                  file=sys.stderr)
            return 2
    start = time.perf_counter()
    work_dir = args.work_dir or tempfile.mkdtemp(prefix='gpu_check-')
    os.makedirs(work_dir, exist_ok=True)
    log(f'device {args.device}; work dir {work_dir}')
    rows: List[Row] = []
    try:
        if 'tests' not in args.skip:
            rows += check_tests(args, work_dir)
        if 'train' not in args.skip:
            rows += check_train(args, work_dir)
        for section in ('criss-cross', 'ssr'):
            if section not in args.skip:
                rows += run_worker(section, args)
    finally:
        if not args.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    seconds = time.perf_counter() - start
    failed = [r for r in rows if r.status == 'FAIL']
    text = (f'GPU check (`benchmarks/gpu_check.sh --device {args.device}`): '
            f'{environment(args.device)}; {len(rows)} rows, {len(failed)} failed; '
            f'wall time {seconds:.0f} s\n\n{table(rows)}\n')
    print('\n' + text, flush=True)
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            f.write(text)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
