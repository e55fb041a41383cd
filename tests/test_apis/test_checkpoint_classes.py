# Copyright (c) mmlesion contributors. All rights reserved.
"""A detector trained on other classes (a COCO checkpoint given to a
one-class lesion config) is refused naming its classes against the
config's: the names its meta records, else the number its classifier is
shaped for (an RoI head's softmax with background, an anchor head's
outputs per prior); in one line (the tools print it alone)."""
import pytest
import torch
from mmdet.evaluation import get_classes

from mmlesion.apis import init_lesion_detector
from mmlesion.testing import get_config
from mmlesion.utils.checkpoints.loader import CheckpointMismatchError

FASTER = 'demo/faster-rcnn_r18_fpn_36e_deeplesion-demo.py'
RETINA = 'retinanet_lesion/demo/retinanet_r18-tiny_fpn_1x_deeplesion-demo.py'
COCO = tuple(get_classes('coco'))


def _coco_checkpoint(config: str, path, meta: bool) -> str:
    """The config's model for COCO's 80 classes, its weights saved (with
    the class names in its meta, or none)."""
    cfg = get_config(config)
    head = cfg.model.roi_head.bbox_head if 'roi_head' in cfg.model else \
        cfg.model.bbox_head
    head.num_classes = len(COCO)
    torch.manual_seed(0)
    ckpt = dict(state_dict=init_lesion_detector(cfg).model.state_dict())
    if meta:
        ckpt['meta'] = dict(dataset_meta=dict(classes=COCO))
    torch.save(ckpt, path)
    return str(path)


def _refusal(config: str, checkpoint: str) -> CheckpointMismatchError:
    with pytest.raises(CheckpointMismatchError) as err:
        init_lesion_detector(get_config(config), checkpoint)
    summary = err.value.summary
    assert '\n' not in summary and str(err.value).startswith(
        summary.split('. Keys: ')[0])
    assert summary.startswith(f'{checkpoint}: the checkpoint does not fit')
    return err.value


def test_classes_named_from_the_meta(tmp_path):
    path = _coco_checkpoint(FASTER, tmp_path / 'coco.pth', meta=True)
    summary = _refusal(FASTER, path).summary
    assert ("the checkpoint is for 80 classes ('person', 'bicycle', 'car', "
            "'motorcycle', 'airplane', ... 75 more) by its meta, the config "
            "for 1 class ('lesion'); roi_head.bbox_head.fc_cls.weight: "
            '[81, 128] in the checkpoint, [2, 128] in the model') in summary
    assert 'Keys: 4 of another shape (roi_head.bbox_head.fc_cls.weight' \
        in summary


@pytest.mark.parametrize('config,key,shapes', [
    (FASTER, 'roi_head.bbox_head.fc_cls.weight', '[81, 128] in the '
     'checkpoint, [2, 128]'),
    # 9 anchors per position, sigmoid: 9 x 80 outputs against 9 x 1
    (RETINA, 'bbox_head.retina_cls.weight', '[720, 32, 3, 3] in the '
     'checkpoint, [9, 32, 3, 3]'),
])
def test_classes_counted_from_the_classifier(tmp_path, config, key, shapes):
    path = _coco_checkpoint(config, tmp_path / 'coco.pth', meta=False)
    summary = _refusal(config, path).summary
    assert ("the checkpoint is for 80 classes by its classifier, the config "
            f"for 1 class ('lesion'); {key}: {shapes} in the model") \
        in summary


def test_other_mismatches_keep_their_words(tmp_path):
    """A checkpoint of the same classes that lacks a key: no word on
    classes."""
    cfg = get_config(FASTER)
    state = init_lesion_detector(cfg).model.state_dict()
    state.pop('rpn_head.rpn_conv.bias')
    torch.save(dict(state_dict=state), tmp_path / 'cut.pth')
    summary = _refusal(FASTER, str(tmp_path / 'cut.pth')).summary
    assert '(a checkpoint of another model or config?)' in summary
    assert 'class' not in summary
    assert summary.endswith('Keys: 1 missing (rpn_head.rpn_conv.bias)')
