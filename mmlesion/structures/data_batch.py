# Copyright (c) mmlesion contributors. All rights reserved.
"""The batch mmengine's ``model.train_step`` / ``val_step`` take."""
from typing import TYPE_CHECKING, List, TypedDict, Union

if TYPE_CHECKING:
    import torch


class DataBatch(TypedDict):
    """A batch as a dataloader with mmengine's ``pseudo_collate`` gives it,
    the input of ``model.data_preprocessor`` and ``model.train_step``.

    Attributes:
        inputs (Tensor | list[Tensor]): the images (or volumes, patches),
            one tensor each or stacked.
        data_samples (list): one sample an image (``DetDataSample``, or the
            dict a method's preprocessor reads).
    """
    inputs: Union['torch.Tensor', List['torch.Tensor']]
    data_samples: list
