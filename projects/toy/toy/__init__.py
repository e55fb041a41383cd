# Copyright (c) mmlesion contributors. All rights reserved.
"""The toy method (docs/adding_a_method.md): mmdet's Faster R-CNN keeping at
most ``test_cfg.max_per_slice`` boxes of a slice, added from outside the
package as mmdet's ``projects/`` plugins are. Importing this package (its
config's ``custom_imports``) registers the detector in mmdet's ``MODELS``
and the ``test_cfg`` key it reads in the whole-config check's registry;
``tables.py`` registers its table for ``tools/reproduce.py``
(``--custom-imports projects.toy.toy.tables``)."""
from mmdet.models.detectors import FasterRCNN
from mmdet.registry import MODELS

from mmlesion.utils.configs.whole_config import (CONFIG_KEYS, TWO_STAGE_KEYS,
                                                 ConfigKeys)


@MODELS.register_module()
class ToyDetector(FasterRCNN):
    """Faster R-CNN keeping the ``test_cfg.max_per_slice`` highest-scoring
    boxes of each slice (after the box head's own ``max_per_img``; None:
    all of them)."""

    def predict(self, batch_inputs, batch_data_samples, rescale=True):
        samples = super().predict(batch_inputs, batch_data_samples,
                                  rescale=rescale)
        cap = self.test_cfg.get('max_per_slice')
        if cap is not None:
            for sample in samples:
                found = sample.pred_instances
                order = found.scores.argsort(descending=True)
                sample.pred_instances = found[order[:cap]]
        return samples


CONFIG_KEYS.register(ConfigKeys(
    name='toy',
    keys={
        'ToyDetector': {
            **TWO_STAGE_KEYS,
            'test_cfg': TWO_STAGE_KEYS['test_cfg'] | {'max_per_slice'},
        }
    }))
