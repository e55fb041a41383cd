# Copyright (c) mmlesion contributors. All rights reserved.
"""Several lesion datasets as one, each sample tagged with its dataset
(LENS, Yan et al., TMI 2020, Sec. IV-C)."""
import copy
from typing import Hashable, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmdet.registry import DATASETS
from mmengine.dataset import BaseDataset, ConcatDataset


@DATASETS.register_module()
class LENSMultiDataset(ConcatDataset):
    """mmengine's :class:`ConcatDataset` whose samples carry ``dataset_id``
    (and ``dataset_name``) in their metainfo, for :class:`~mmlesion.models.
    LENS` and :class:`~mmlesion.methods.lens.datasets.LENSDatasetBatchSampler`.

    Dataset ``i`` trains AFP ``i`` and detection expert ``i`` of LENS (the
    order of the model's ``dataset_names``); all must share ``classes``.
    Datasets with the same ``dataset_ids`` entry are one LENS dataset, e.g.
    all ``0`` for Table IV's "Data pooling" ("directly pooled DeepLesion
    and single-type datasets and treat them as one task").

    Args:
        datasets (Sequence[dict | BaseDataset]): the datasets.
        dataset_names (Sequence[str], optional): names for metainfo and
            logs, one per dataset id; defaults to ``dataset0`` ...
        dataset_ids (Sequence[int], optional): the LENS dataset of each of
            ``datasets`` (``0 .. k-1``, each used); defaults to its
            position.
        lazy_init (bool): as :class:`ConcatDataset`.
    """

    def __init__(self,
                 datasets: Sequence[Union[BaseDataset, dict]],
                 dataset_names: Optional[Sequence[str]] = None,
                 dataset_ids: Optional[Sequence[int]] = None,
                 lazy_init: bool = False) -> None:
        built: List[BaseDataset] = []
        for i, ds in enumerate(datasets):
            if isinstance(ds, dict):
                ds = DATASETS.build(ds)
            if not isinstance(ds, BaseDataset):
                raise TypeError(f'LENSMultiDataset: datasets[{i}] is a '
                                f'{type(ds).__name__}, not a dataset')
            built.append(ds)
        if not built:
            raise ValueError('LENSMultiDataset needs at least one dataset')
        ids = list(range(len(built))) if dataset_ids is None else [
            int(i) for i in dataset_ids]
        if len(ids) != len(built) or sorted(set(ids)) != list(
                range(len(set(ids)))):
            raise ValueError(
                f'LENSMultiDataset: dataset_ids {list(dataset_ids)} must give '
                f'each of the {len(built)} datasets an id, the ids 0 .. k-1')
        self._ids = ids
        if dataset_names is None:
            dataset_names = [f'dataset{i}' for i in range(len(set(ids)))]
        if len(dataset_names) != len(set(ids)):
            raise ValueError(
                f'LENSMultiDataset: {len(dataset_names)} dataset_names for '
                f'{len(set(ids))} dataset ids')
        classes = [tuple(ds.metainfo.get('classes', ())) for ds in built]
        for name, cls in zip(dataset_names, classes):
            if cls != classes[0]:
                raise ValueError(
                    f'LENSMultiDataset: dataset {name!r} has classes {cls}, '
                    f'the first dataset {classes[0]}; LENS needs the same '
                    'classes (e.g. ("lesion",)) in every dataset')
        ignore = sorted(
            {k for ds in built for k in ds.metainfo if k != 'classes'})
        self.dataset_names = tuple(dataset_names)
        super().__init__(built, lazy_init=lazy_init, ignore_keys=ignore)
        self._positive: Optional[np.ndarray] = None
        self._group: Optional[list] = None
        self._lesions: Optional[list] = None

    def dataset_id(self, idx: int) -> int:
        """The LENS dataset of sample ``idx``."""
        return self._ids[self._source(idx)]

    def _source(self, idx: int) -> int:
        """Index in ``datasets`` of the dataset of sample ``idx``."""
        if not self._fully_initialized:
            self.full_init()
        return self._get_ori_dataset_idx(idx)[0]

    def is_positive(self, idx: int) -> bool:
        """Whether sample ``idx`` has at least one non-ignored lesion."""
        if self._positive is None:
            self._positive = np.array([
                any(not ins.get('ignore_flag', 0)
                    for ins in self.get_data_info(i).get('instances', []))
                for i in range(len(self))
            ])
        return bool(self._positive[idx])

    def positive_group(self, idx: int):
        """The lesion group of sample ``idx`` (its data info's
        ``positive_group``, else itself)."""
        if self._group is None:
            self._group = [
                self.get_data_info(i).get('positive_group', ('sample', i))
                for i in range(len(self))
            ]
        return (self._source(idx), self._group[idx])

    def positive_lesions(self, idx: int) -> Tuple[Hashable, ...]:
        """The 3D lesions that sample ``idx`` shows (LENS Sec. VI-D): its
        data info's ``positive_lesions``, else its ``positive_group``, else
        one per non-ignored instance, prefixed with :meth:`_source`."""
        if self._lesions is None:
            out = []
            for i in range(len(self)):
                info = self.get_data_info(i)
                if 'positive_lesions' in info:
                    keys = list(info['positive_lesions'])
                elif 'positive_group' in info:
                    keys = [info['positive_group']]
                else:
                    keys = [('sample', i, j)
                            for j, ins in enumerate(info.get('instances', []))
                            if not ins.get('ignore_flag', 0)]
                out.append(tuple((self._source(i), k) for k in keys))
            self._lesions = out
        return self._lesions[idx]

    def get_data_info(self, idx: int) -> dict:
        info = copy.copy(super().get_data_info(idx))
        ds = self.dataset_id(idx)
        info.update(dataset_id=ds, dataset_name=self.dataset_names[ds])
        return info

    def __getitem__(self, idx: int) -> dict:
        data = super().__getitem__(idx)
        ds = self.dataset_id(idx)
        sample = data.get('data_samples') if isinstance(data, dict) else None
        if sample is None:
            raise TypeError(
                'LENSMultiDataset needs a pipeline ending in PackDetInputs '
                f'(dataset {self.dataset_names[ds]!r})')
        sample.set_metainfo(
            dict(dataset_id=ds, dataset_name=self.dataset_names[ds]))
        return data
