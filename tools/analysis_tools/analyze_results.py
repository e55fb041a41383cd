# Copyright (c) mmlesion contributors. All rights reserved.
"""Good and bad test images by per-image FROC or mAP (mmdet's tool, CT).

Same command line as mmdet's ``tools/analysis_tools/analyze_results.py``::

    python tools/test.py CONFIG CKPT --out results.pkl
    python tools/analysis_tools/analyze_results.py CONFIG results.pkl \\
        SHOW_DIR [--topk 20] [--show-score-thr 0.3] [--show] \\
        [--metric froc|mAP] [--fp-rate 4] [--window -160 240] \\
        [--cfg-options ...]

mmdet's tool refuses every lesion config: it keeps only mmdet's own image
loaders of the training pipeline (``get_loading_pipeline``), reads the
image with an 8-bit reader (a DeepLesion 16-bit PNG stores ``HU + 32768``)
and names pictures after the slice file, so series overwrite each other.
This tool ranks the test images of the config's ``test_dataloader`` (the
images of ``results.pkl``, in the same order; a mismatch is refused) and
writes the ``--topk`` best to ``SHOW_DIR/good`` and the ``--topk`` worst to
``SHOW_DIR/bad`` (``topk`` is capped at half the images, as in mmdet):

- ``--metric froc`` (default): the DeepLesion protocol at the test set's
  operating point of ``--fp-rate`` FPs per image (the headline ``sens@4``):
  per image, the fraction of its lesions hit by a kept detection; ties
  (e.g. every lesion found) are broken by the image's kept false
  positives, fewer is better, then by its number of lesions found. An
  image without lesions counts as fully found, so only its false
  positives rank it.
  (:func:`mmlesion.evaluation.functional.image_froc_at_fp`; ``iou_thr``
  and ``overlap`` from the config's ``FROCMetric``.)
- ``--metric mAP``: mmdet's per-image number, the mean VOC AP at IoU
  0.50:0.05:0.95 (:func:`~mmlesion.evaluation.functional.
  image_coco_style_map`).

Boxes are class-agnostic, as in ``FROCMetric``; ignored lesions are
neither hits nor false positives. A picture is the windowed key slice with
the ground truth (red) and the predictions scoring at least
``--show-score-thr`` (green), named ``<series>_<slice>_<score>.png``
(mmdet: ``<name>_<score><ext>``), written atomically. The prediction
pickle is read with an allow-list (it is data; nothing in it is run).
3D configs (boxes ``x1, y1, z1, x2, y2, z2``) are refused: use
``tools/analysis_tools/eval_lens_3d.py`` or ``tools/infer_volume.py``.
"""
import argparse
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config, DictAction

from mmlesion_cli import tool_parser
from mmlesion_cli.common_args import (add_display_window_argument,
                                      display_window)

METRICS = ('froc', 'mAP')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        'prediction_path', help='prediction pkl of tools/test.py --out')
    parser.add_argument(
        'show_dir', help='directory where painted images will be saved')
    parser.add_argument('--show', action='store_true', help='show results')
    parser.add_argument(
        '--wait-time',
        type=float,
        default=0,
        help='the interval of show (s), 0 is block')
    parser.add_argument(
        '--topk',
        default=20,
        type=int,
        help='number of the best and of the worst images saved')
    parser.add_argument(
        '--show-score-thr',
        type=float,
        default=0,
        help='predictions scoring below it are not drawn')
    parser.add_argument(
        '--metric',
        choices=METRICS,
        default='froc',
        help='per-image score: DeepLesion FROC at --fp-rate or '
        "mmdet's COCO-style mAP")
    parser.add_argument(
        '--fp-rate',
        type=float,
        default=4.,
        help='FROC operating point, FPs per image')
    add_display_window_argument(parser)
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs')
    args = parser.parse_args(argv)
    if args.topk <= 0:
        parser.error(f'--topk must be > 0, got {args.topk}')
    return args


def froc_options(cfg: Config) -> dict:
    """``iou_thr`` / ``overlap`` of the config's FROCMetric, if it has one."""
    evaluator = cfg.get('test_evaluator', {})
    evaluators = evaluator if isinstance(evaluator, (list, tuple)) else [
        evaluator
    ]
    for ev in evaluators:
        if isinstance(ev, dict) and ev.get('type') == 'FROCMetric':
            return dict(
                iou_thr=float(ev.get('iou_thr', 0.5)),
                overlap=ev.get('overlap', 'iou'))
    return dict(iou_thr=0.5, overlap='iou')


def image_arrays(prediction_path: str, index: int, result: dict,
                 data_info: dict) -> Dict[str, np.ndarray]:
    """Detections and (ignored) lesions of one image as arrays.

    Args:
        prediction_path (str): the pickle (for error messages).
        index (int): position of the image in the test set.
        result (dict): its entry of the pickle.
        data_info (dict): the test dataset's ``get_data_info(index)``.

    Returns:
        dict: ``dets`` (N, 5), ``gts`` (M, 4), ``ignored`` (K, 4).
    """
    where = f'{prediction_path}, result {index} ({result.get("img_path")})'
    if osp.abspath(str(result.get('img_path'))) != osp.abspath(
            str(data_info.get('img_path'))):
        raise ValueError(
            f'{where}: the test set of the config has '
            f"{data_info.get('img_path')} at this position; the pickle was "
            'written for another test set (same config and --cfg-options '
            'as tools/test.py --out)')
    pred = result['pred_instances']
    boxes = np.asarray(pred['bboxes'], dtype=np.float64)
    if boxes.size and (boxes.ndim != 2 or boxes.shape[1] != 4):
        raise ValueError(
            f'{where}: predicted boxes of shape {tuple(boxes.shape)}, not '
            '(N, 4): 3D results are analysed by '
            'tools/analysis_tools/eval_lens_3d.py / tools/infer_volume.py')
    scores = np.asarray(pred['scores'], dtype=np.float64).reshape(-1, 1)
    dets = np.concatenate([boxes.reshape(-1, 4), scores], axis=1)
    gts, ignored = [], []
    for inst in data_info.get('instances', []):
        (ignored if inst.get('ignore_flag', 0) else gts).append(inst['bbox'])
    return dict(
        dets=dets,
        gts=np.asarray(gts, dtype=np.float64).reshape(-1, 4),
        ignored=np.asarray(ignored, dtype=np.float64).reshape(-1, 4))


def rank_images(arrays: Sequence[dict], metric: str, fp_rate: float,
                iou_thr: float, overlap: str) -> List[Tuple[int, float]]:
    """``(index, score)`` of every image, worst first.

    Args:
        arrays (Sequence[dict]): :func:`image_arrays` of every test image.
        metric (str): ``'froc'`` or ``'mAP'``.
        fp_rate (float): FROC operating point.
        iou_thr (float): FROC overlap threshold.
        overlap (str): FROC overlap (``'iou'`` / ``'iobb'``).

    Returns:
        list[tuple[int, float]]: sorted ascending (the best last).
    """
    from mmlesion.evaluation.functional import (image_coco_style_map,
                                                image_froc_at_fp)
    if metric == 'froc':
        found = image_froc_at_fp([a['dets'] for a in arrays],
                                 [a['gts'] for a in arrays], fp_rate,
                                 iou_thr, overlap)
        sens = np.nan_to_num(found.sensitivity(), nan=1.)
        keys = [(float(s), -int(f), int(h))
                for s, f, h in zip(sens, found.fps, found.hits)]
        scores = [float(s) for s in sens]
    else:
        scores = [
            image_coco_style_map(a['dets'], a['gts'], a['ignored'])
            for a in arrays
        ]
        keys = [(s, ) for s in scores]
    order = sorted(range(len(arrays)), key=lambda i: keys[i])  # stable
    return [(i, scores[i]) for i in order]


def main(argv: Optional[List[str]] = None) -> Dict[str, List[str]]:
    """Rank, draw and save; return the written files of good and bad."""
    args = parse_args(argv)
    import mmcv
    from mmdet.registry import DATASETS
    from mmdet.visualization import DetLocalVisualizer
    from mmengine.registry import init_default_scope
    from mmengine.utils import ProgressBar

    import mmlesion  # noqa: F401  (registers the components)
    from mmlesion.utils.writing.atomic import atomic_save_with
    from mmlesion.utils.checkpoints.results_pickle import load_prediction_pickle
    from mmlesion.visualization.lesion_visualizer import (
        PictureStyle, draw_lesion_detections, key_slice_name)
    window = display_window(args.window)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        from mmlesion.utils.configs.cfg_options import apply_cfg_options
        apply_cfg_options(cfg, args.cfg_options, source=args.config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg.test_dataloader.dataset.test_mode = True
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    results = load_prediction_pickle(args.prediction_path)
    if len(results) != len(dataset):
        raise ValueError(
            f'{args.prediction_path}: {len(results)} results but the test '
            f'set of {args.config} has {len(dataset)} images (same config '
            'and --cfg-options as tools/test.py --out)')
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    arrays = [
        image_arrays(args.prediction_path, i, r, info)
        for i, (r, info) in enumerate(zip(results, infos))
    ]
    ranked = rank_images(arrays, args.metric, args.fp_rate,
                         **froc_options(cfg))
    topk = args.topk if args.topk * 2 <= len(ranked) else len(ranked) // 2
    chosen = dict(good=ranked[len(ranked) - topk:], bad=ranked[:topk])

    drawer = DetLocalVisualizer(
        name='mmlesion_analyze_results', line_width=1, alpha=1.)
    drawer.dataset_meta = dataset.metainfo
    written: Dict[str, List[str]] = dict(good=[], bad=[])
    progress = ProgressBar(2 * topk)
    for kind, picks in chosen.items():
        for index, score in picks:
            info = infos[index]
            dets = arrays[index]['dets']
            drawn = draw_lesion_detections(
                info['img_path'],
                dets[:, :4],
                dets[:, 4],
                gt_boxes=np.concatenate(
                    [arrays[index]['gts'], arrays[index]['ignored']]),
                style=PictureStyle(window=window,
                                   score_thr=args.show_score_thr,
                                   visualizer=drawer))
            stem, ext = osp.splitext(
                key_slice_name(info['img_path'], info.get('file_name')))
            out_file = osp.join(args.show_dir, kind,
                                f'{stem}_{round(score, 3)}{ext}')
            if args.show:
                drawer.show(drawn, win_name=out_file, wait_time=args.wait_time)
            atomic_save_with(  # mmcv writes BGR
                out_file, lambda tmp, img=drawn: mmcv.imwrite(
                    img[..., ::-1], tmp))
            written[kind].append(out_file)
            progress.update()
    return written


if __name__ == '__main__':
    main()
