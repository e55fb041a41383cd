# Copyright (c) mmlesion contributors. All rights reserved.
"""A distributed worker that trains the demo :class:`~mmlesion.models.LENS`
for a few steps under mmengine's ``MMDistributedDataParallel``, each rank on
its own dataset, for ``tests/test_models/test_detectors/
test_lens_ddp_step.py``.

The worker lives in the package (not in a test file) because
``torch.multiprocessing.spawn`` must import it by name in the child
processes, which pytest's ``--import-mode=importlib`` test modules are not.
"""
import copy
import os.path as osp
from datetime import timedelta
from typing import Dict, List

import torch
import torch.distributed as dist
from mmdet.structures import DetDataSample

from mmlesion.testing.det_batches import det_sample
from .lens_models import LENS_DEMO_CFG

#: The optimizer of the full-size LENS configs
#: (``configs/_base_/schedules/schedule_lens_radam_8e.py``).
LENS_OPTIM_CFG = 'lens/lens-afp-multi-fusion_densenet121-2.5d_fpn_1xb4-radam-8e_deeplesion-luna16-lits-nihln-9slice.py'


def lens_batch(dataset_id: int,
               seed: int,
               num_images: int = 2,
               size: int = 64,
               num_slices: int = 9) -> dict:
    """Random 2.5D images with one lesion box each, all of ``dataset_id``.

    ``dataset_id`` and ``dataset_name`` are set in the metainfo as
    :class:`~mmlesion.methods.lens.datasets.LENSMultiDataset` sets them.

    Args:
        dataset_id (int): the dataset of every image.
        seed (int): random seed of the images and boxes.
        num_images (int): images in the batch.
        size (int): image height and width.
        num_slices (int): channels (slices) per image.

    Returns:
        dict: ``inputs`` and ``data_samples``, the input of
        ``model.data_preprocessor`` (and of ``train_step``).
    """
    gen = torch.Generator().manual_seed(seed)
    inputs: List[torch.Tensor] = []
    samples: List[DetDataSample] = []
    for i in range(num_images):
        img = torch.rand(num_slices, size, size, generator=gen) * 0.4 - 0.6
        w, h = torch.randint(10, 24, (2, ), generator=gen).tolist()
        x1 = int(torch.randint(0, size - w, (1, ), generator=gen))
        y1 = int(torch.randint(0, size - h, (1, ), generator=gen))
        img[:, y1:y1 + h, x1:x1 + w] += 0.8
        inputs.append(img)
        sample = det_sample(i, size, [[x1, y1, x1 + w, y1 + h]], [0])
        sample.set_metainfo(
            dict(dataset_id=dataset_id, dataset_name=f'd{dataset_id}'))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def lens_dataset_params(model, dataset_id: int) -> Dict[str, torch.Tensor]:
    """Names of the layers of one dataset: its AFP and its expert's
    classification and box layers (``LENSBBoxHead``).

    Args:
        model (LENS): the detector (not the DDP wrapper).
        dataset_id (int): the dataset.

    Returns:
        dict[str, Tensor]: parameter name -> parameter.
    """
    prefixes = (f'rpn_heads.{dataset_id}.',
                f'roi_head.bbox_head.fc_cls.experts.{dataset_id}.',
                f'roi_head.bbox_head.fc_reg.experts.{dataset_id}.')
    return {
        n: p
        for n, p in model.named_parameters() if n.startswith(prefixes)
    }


def lens_ddp_step_worker(rank: int, world_size: int, init_file: str,
                         out_dir: str, steps: int) -> None:
    """One rank of a gloo group: ``steps`` DDP training steps of the demo
    LENS, rank ``r`` always on a batch of dataset ``r``.

    Saves ``out_dir/rank{rank}.pth`` with the initial and final parameters,
    the losses of every step, the DDP (all-reduced) gradients of step 0 and
    the gradients a single process gets from this rank's step-0 batch
    (computed on a copy of the model before wrapping).

    Step 0 is run by hand (forward through the wrapper, ``backward``, record
    the gradients, ``step``), the others with
    ``MMDistributedDataParallel.train_step`` as mmengine's loops call it.

    Args:
        rank (int): this process's rank (``torch.multiprocessing.spawn``
            passes it first).
        world_size (int): number of processes (the model has 2 datasets,
            rank ``r`` feeds dataset ``r % 2``).
        init_file (str): file of the ``file://`` rendezvous.
        out_dir (str): where each rank writes its record.
        steps (int): training steps.
    """
    from mmdet.registry import MODELS
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    import mmlesion  # noqa: F401  (registers LENS)
    from mmlesion.utils.configs.lookup import get_config
    torch.set_num_threads(1)
    dist.init_process_group('gloo',
                            init_method=f'file://{init_file}',
                            rank=rank,
                            world_size=world_size,
                            timeout=timedelta(seconds=120))
    try:
        cfg = get_config(LENS_DEMO_CFG)
        optim_cfg = get_config(LENS_OPTIM_CFG).optim_wrapper
        wrapper_cfg = get_config(LENS_OPTIM_CFG).model_wrapper_cfg
        torch.manual_seed(0)  # the same initial model on every rank
        with DefaultScope.overwrite_default_scope('mmdet'):
            model = MODELS.build(copy.deepcopy(cfg.model))
        model.init_weights()
        model.train()
        dataset_id = rank % model.num_datasets
        batches = [
            lens_batch(dataset_id, seed=100 * rank + s) for s in range(steps)
        ]

        # what one process alone would get from this rank's first batch
        # (the same RNG state for both forwards: RoI sampling is random)
        torch.manual_seed(1000 + rank)
        single = copy.deepcopy(model)
        data = single.data_preprocessor(copy.deepcopy(batches[0]), True)
        loss, _ = single.parse_losses(single(**data, mode='loss'))
        loss.backward()
        single_grads = {
            n: p.grad.clone()
            for n, p in single.named_parameters() if p.grad is not None
        }
        del single

        init = {n: p.detach().clone() for n, p in model.named_parameters()}
        wrapper_cfg = dict(wrapper_cfg)
        assert wrapper_cfg.pop('type') == 'MMDistributedDataParallel'
        ddp = MMDistributedDataParallel(module=model, **wrapper_cfg)
        with DefaultScope.overwrite_default_scope('mmdet'):
            optim = build_optim_wrapper(ddp, copy.deepcopy(optim_cfg))
        losses = []
        # step 0 by hand, to see the all-reduced gradients
        torch.manual_seed(1000 + rank)
        with optim.optim_context(ddp):
            data = model.data_preprocessor(copy.deepcopy(batches[0]), True)
            loss, log_vars = model.parse_losses(ddp(**data, mode='loss'))
        optim.backward(loss)
        ddp_grads = {
            n: p.grad.clone()
            for n, p in model.named_parameters() if p.grad is not None
        }
        optim.step()
        optim.zero_grad()
        losses.append({k: float(v) for k, v in log_vars.items()})
        for batch in batches[1:]:
            log_vars = ddp.train_step(copy.deepcopy(batch), optim)
            losses.append({k: float(v) for k, v in log_vars.items()})
        torch.save(
            dict(rank=rank,
                 dataset_id=dataset_id,
                 optimizer=type(optim.optimizer).__name__,
                 losses=losses,
                 init=init,
                 final={
                     n: p.detach().clone()
                     for n, p in model.named_parameters()
                 },
                 single_grads=single_grads,
                 ddp_grads=ddp_grads,
                 dataset_params={
                     d: sorted(lens_dataset_params(model, d))
                     for d in range(model.num_datasets)
                 }), osp.join(out_dir, f'rank{rank}.pth'))
        dist.barrier()
    finally:
        dist.destroy_process_group()


__all__ = ['lens_batch', 'lens_dataset_params', 'lens_ddp_step_worker']
