# Copyright (c) mmlesion contributors. All rights reserved.
"""The size of a study's test set, reported beside every verdict.

A verdict on a sensitivity is only as fine as one lesion: with 76 test
lesions one lesion is 1.3 points, and a one-lesion swing can decide a step.
Every study therefore states how many lesions (nodules for the LUNA16
studies) it tests on, on how many images or scans, from which data seeds,
with which training seeds, and gives no verdict when the test set is below
the minimum (150 lesions for the 2D studies, 60 nodules for the 3D ones).
"""
import copy
from dataclasses import asdict, dataclass, field
from typing import Sequence, Tuple

#: Fewest test lesions a 2D study needs for a verdict.
MIN_TEST_LESIONS = 150
#: Fewest test nodules a 3D (LUNA16-style) study needs for a verdict.
MIN_TEST_NODULES = 60


@dataclass(frozen=True)
class StudyTestSet:
    """What a study's verdicts are measured on.

    Args:
        lesions (int): findings of the test set (the denominator of the
            sensitivity).
        images (int): key slices or scans they lie on.
        unit (str): what a finding is (``'lesions'``, ``'nodules'``).
        image_unit (str): what an image is (``'key slices'``, ``'scans'``).
        data_seeds (tuple[int]): seeds of the generated data.
        minimum (int): fewest findings for a verdict.
    """
    lesions: int
    images: int
    unit: str = 'lesions'
    image_unit: str = 'key slices'
    data_seeds: Tuple[int, ...] = field(default=(0, ))
    minimum: int = MIN_TEST_LESIONS

    def __post_init__(self) -> None:
        if self.lesions < 0 or self.images < 0:
            raise ValueError(f'a test set has >= 0 findings and images, got '
                             f'{self.lesions} and {self.images}')
        object.__setattr__(self, 'data_seeds',
                           tuple(int(s) for s in self.data_seeds))

    @property
    def large_enough(self) -> bool:
        """Whether a verdict may be given (``lesions >= minimum``)."""
        return self.lesions >= self.minimum

    def to_dict(self, training_seeds: Sequence[int] = ()) -> dict:
        """JSON form, with the training seeds and one finding's share."""
        out = asdict(self)
        out['data_seeds'] = list(self.data_seeds)
        out['training_seeds'] = [int(s) for s in training_seeds]
        out['one_finding'] = 1.0 / self.lesions if self.lesions else None
        out['large_enough'] = self.large_enough
        return out

    def describe(self, training_seeds: Sequence[int] = ()) -> str:
        """One line for a report."""
        one = (f'one {self.unit[:-1]} = {100.0 / self.lesions:.2f} points'
               if self.lesions else 'no findings')
        line = (f'Test set: {self.lesions} {self.unit} on {self.images} '
                f'{self.image_unit} ({one}); data seed(s) '
                f'{list(self.data_seeds)}; training seeds '
                f'{[int(s) for s in training_seeds]}.')
        if not self.large_enough:
            line += (f' Below the minimum of {self.minimum} {self.unit} for '
                     'a verdict: no step is judged.')
        return line


def config_test_set(cfg, unit: str = 'lesions',
                    image_unit: str = 'key slices',
                    minimum: int = MIN_TEST_LESIONS,
                    data_seeds: Sequence[int] = (0, )) -> StudyTestSet:
    """Count the test set a study row's config tests on: its
    ``test_dataloader.dataset`` built as it is (data root, split, indices and
    any ``--cfg-options`` applied), findings that are not ignored.

    Args:
        cfg (Config): a row's config (e.g. from
            :func:`~projects.study_demo.study.build_row_config`).
        unit, image_unit, minimum, data_seeds: as :class:`StudyTestSet`.

    Returns:
        StudyTestSet: the count.
    """
    from mmdet.registry import DATASETS
    from mmengine.registry import DefaultScope
    ds_cfg = copy.deepcopy(cfg.test_dataloader.dataset)
    ds_cfg['pipeline'] = []
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmdet')):
        dataset = DATASETS.build(ds_cfg)
    dataset.full_init()
    findings = sum(not inst.get('ignore_flag', 0)
                   for i in range(len(dataset))
                   for inst in dataset.get_data_info(i)['instances'])
    return StudyTestSet(findings, len(dataset), unit=unit,
                        image_unit=image_unit, data_seeds=data_seeds,
                        minimum=minimum)
