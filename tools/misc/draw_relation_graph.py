# Copyright (c) mmlesion contributors. All rights reserved.
"""Draw the relation graph learned by ElixirNet's Auto-lesion Block.

ElixirNet (Jiang et al., AAAI 2020), Figure 5: "Visualization of learned
relation G from ALB. The centers of regions are plotted and connected by the
learned edges E. Edges thickness correspond to the strength of the graph edge
weights." Ground truth is drawn in red.

For each chosen image of the test split the tool runs the detector
(``test_step``), takes the graph ``E`` of the ALB's Non-local operator over
that image's proposals (``roi_head.bbox_head.last_adjacency``) and the
proposals themselves (``roi_head.last_rois``, same order), keeps the
``--num-nodes`` first proposals (the RPN returns them by decreasing
objectness) with the sub-matrix of ``E`` between them (weights as learned,
not renormalised), draws the ``--top-k`` strongest undirected edges
(``(E_ij + E_ji) / 2``) on the key slice, and writes one PNG per image.
Everything is drawn in the network-input frame (after the test pipeline's
resize); ground-truth boxes are scaled into it.

Example::

    python tools/misc/draw_relation_graph.py \
        configs/elixirnet/demo/elixirnet_r18-tiny_fpn_1x_deeplesion-demo.py \
        work_dirs/elixirnet_r18-tiny_fpn_1x_deeplesion-demo/epoch_12.pth \
        --out-dir work_dirs/relation_graphs --num-images 4

Works with any detector whose RoI head is ``ALBRoIHead`` and whose box head
is an ``ALBBBoxHead`` / ``RTMBBoxHead`` with a Non-local operation.
"""
import argparse
import os
import os.path as osp
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

import numpy as np

from mmlesion_cli.common_args import add_trust_checkpoint_argument

if TYPE_CHECKING:
    import torch
from mmlesion_cli import tool_parser
from mmlesion_cli.common_args import add_cfg_options_argument


def collect_relation_graph(model: 'torch.nn.Module', data: dict,
                           num_nodes: Optional[int] = 20) -> Dict:
    """Run the detector on one packed sample and read its relation graph.

    Args:
        model (nn.Module): an ElixirNet-style detector in eval mode.
        data (dict): one pipeline output (``inputs``: (C, H, W) tensor,
            ``data_samples``: DetDataSample), not collated.
        num_nodes (int, optional): keep the first ``num_nodes`` proposals
            (None: all).

    Returns:
        dict: ``image`` (C, H, W) float numpy input, ``boxes`` (N, 4)
        proposals and ``adjacency`` (N, N) graph in the input frame,
        ``gt_boxes`` (M, 4) in the input frame, ``pred`` (the detector's
        InstanceData) and ``num_proposals`` (before ``num_nodes``).

    Raises:
        ValueError: if the model exposes no relation graph.
    """
    import torch
    from mmengine.dataset import pseudo_collate
    roi_head = getattr(model, 'roi_head', None)
    bbox_head = getattr(roi_head, 'bbox_head', None)
    if not hasattr(bbox_head, 'last_adjacency') or not hasattr(
            roi_head, 'last_rois'):
        raise ValueError(
            'The model has no relation graph: use a config whose roi_head is '
            "ALBRoIHead with an ALBBBoxHead / RTMBBoxHead (e.g. configs/"
            'elixirnet/elixirnet_*.py)')
    with torch.no_grad():
        result = model.test_step(pseudo_collate([data]))[0]
    graphs = bbox_head.last_adjacency
    if not graphs:
        raise ValueError(
            'The ALB head produced no graph: its genotype has no non_local '
            'operation')
    rois = roi_head.last_rois
    boxes = rois[rois[:, 0] == 0, 1:].cpu().numpy()
    adjacency = graphs[0].cpu().numpy()
    if adjacency.shape != (len(boxes), len(boxes)):
        raise ValueError(f'graph of shape {adjacency.shape} does not match '
                         f'the {len(boxes)} proposals of the image')
    num_proposals = len(boxes)
    if num_nodes is not None:
        boxes = boxes[:num_nodes]
        adjacency = adjacency[:num_nodes, :num_nodes]

    sample = data['data_samples']
    scale = np.asarray(sample.metainfo.get('scale_factor', (1.0, 1.0)),
                       dtype=np.float64).reshape(-1)[:2]
    instances = sample.metainfo.get('instances')
    if instances is not None:
        gts = [
            inst['bbox'] for inst in instances
            if not inst.get('ignore_flag', 0)
        ]
        gt_boxes = np.asarray(gts, dtype=np.float64).reshape(-1, 4)
        gt_boxes = gt_boxes * np.tile(scale, 2)
    elif 'gt_instances' in sample:
        gt_boxes = sample.gt_instances.bboxes.cpu().numpy().reshape(-1, 4)
    else:
        gt_boxes = np.zeros((0, 4))
    return dict(
        image=data['inputs'].float().cpu().numpy(),
        boxes=boxes,
        adjacency=adjacency,
        gt_boxes=gt_boxes,
        pred=result.pred_instances,
        num_proposals=num_proposals)


def build_model_and_dataset(config: str,
                            checkpoint: Optional[str],
                            split: Optional[str] = None,
                            cfg_options: Optional[dict] = None,
                            device: str = 'cpu'):
    """Build the detector (weights from ``checkpoint``) and its test set."""
    from mmdet.registry import DATASETS
    from mmengine.registry import DefaultScope

    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.apis import DetectorLoadSettings, init_lesion_detector
    if not osp.isfile(config):
        raise FileNotFoundError(f'Config not found: {config}')
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'Checkpoint not found: {checkpoint}')
    loaded = init_lesion_detector(
        config, checkpoint,
        DetectorLoadSettings(device=device, cfg_options=cfg_options))
    dataset_cfg = loaded.cfg.test_dataloader.dataset
    if split is not None:
        dataset_cfg.split = split
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(dataset_cfg)
    return loaded.model, dataset


def draw_images(model, dataset, indices: Sequence[int], out_dir: str,
                num_nodes: Optional[int] = 20, top_k: Optional[int] = 30,
                draw_boxes: bool = False) -> List[str]:
    """Draw the graphs of ``dataset[i]`` for ``i`` in ``indices``.

    Returns:
        list[str]: the written PNG paths.
    """
    import mmlesion  # noqa: F401  (registers components)
    from mmlesion.visualization import (RelationGraphStyle,
                                        draw_relation_graph)
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for idx in indices:
        if not 0 <= idx < len(dataset):
            raise ValueError(f'image index {idx} out of range for the '
                             f'{len(dataset)} images of the dataset')
        data = dataset[idx]
        graph = collect_relation_graph(model, data, num_nodes)
        meta = data['data_samples'].metainfo
        stem = osp.splitext(
            osp.basename(str(meta.get('img_path', f'image_{idx}'))))[0]
        series = osp.basename(osp.dirname(str(meta.get('img_path', ''))))
        name = f'{idx:04d}_{series}_{stem}.png' if series else \
            f'{idx:04d}_{stem}.png'
        out_file = osp.join(out_dir, name)
        draw_relation_graph(
            graph['image'],
            graph['boxes'],
            graph['adjacency'],
            gt_boxes=graph['gt_boxes'],
            out_file=out_file,
            style=RelationGraphStyle(
                top_k=top_k, draw_boxes=draw_boxes,
                title=(f'{series}/{stem}: {len(graph["boxes"])} of '
                       f'{graph["num_proposals"]} proposals')))
        written.append(out_file)
    return written


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = tool_parser(__doc__)
    parser.add_argument('config', help='ElixirNet config')
    parser.add_argument('checkpoint', help='trained weights')
    parser.add_argument(
        '--out-dir', default='work_dirs/relation_graphs', help='PNG folder')
    parser.add_argument(
        '--indices', type=int, nargs='+', help='dataset indices to draw')
    parser.add_argument(
        '--num-images',
        type=int,
        default=4,
        help='draw the first N images (when --indices is not given)')
    parser.add_argument(
        '--split', help='dataset split to draw (default: the test split)')
    parser.add_argument(
        '--num-nodes',
        type=int,
        default=20,
        help='proposals (graph nodes) to keep, by RPN rank; 0 keeps all')
    parser.add_argument(
        '--top-k',
        type=int,
        default=30,
        help='strongest edges to draw; 0 draws all')
    parser.add_argument(
        '--draw-boxes', action='store_true', help='also outline proposals')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    add_cfg_options_argument(parser)
    add_trust_checkpoint_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> List[str]:
    args = parse_args(argv)
    import mmlesion  # noqa: F401  (registers components)
    model, dataset = build_model_and_dataset(args.config, args.checkpoint,
                                             args.split, args.cfg_options,
                                             args.device)
    indices = args.indices if args.indices else list(
        range(min(args.num_images, len(dataset))))
    written = draw_images(
        model,
        dataset,
        indices,
        args.out_dir,
        num_nodes=args.num_nodes or None,
        top_k=args.top_k or None,
        draw_boxes=args.draw_boxes)
    for path in written:
        print(path)
    return written


if __name__ == '__main__':
    main()
