# Copyright (c) mmlesion contributors. All rights reserved.
"""mmlesion: lesion detection in CT on top of MMDetection 3.x.

Importing this package registers every component of the core under a new
name: into mmdet's registries (``MODELS``, ``DATASETS``, ``TRANSFORMS``,
``METRICS``, ...), its FROC plots into mmengine's ``FUNCTIONS`` and its
atomic file backend as mmengine's ``'atomic_local'``, so a config only
needs::

    custom_imports = dict(imports=['mmlesion'], allow_failed_imports=False)

A paper method's own components register with its home, which a config
using them imports too (``imports=['mmlesion', 'mmlesion.methods.<name>']``).

Beyond these registrations it changes the process in exactly four ways,
each made by one function called once at the end of this file (and listed
in ``docs/get_started_gpu.md``):

1. mmengine's loader of local checkpoints (the ``''`` scheme of
   ``mmengine.runner.CheckpointLoader``) becomes mmlesion's
   (:func:`~mmlesion.utils.checkpoints.loader.register_checkpoint_loader`).
   Why: on torch >= 2.6 ``torch.load`` defaults to ``weights_only=True``
   and mmengine 0.10.7 passes nothing, so resuming an mmengine checkpoint
   fails with ``Unsupported global``; mmlesion's loader loads with
   ``weights_only=True`` and an allow-list of exactly what mmengine / mmdet
   checkpoints hold, and refuses any other file naming it.
2. ``mmengine.logging.HistoryBuffer.__getstate__`` leaves out the four
   built-in statistics (``min``, ``max``, ``current``, ``mean``), which
   every ``HistoryBuffer()`` registers again
   (:func:`~mmlesion.utils.checkpoints.loader.patch_history_buffer_pickling`).
   Why: the checkpoints this process writes then name no ``getattr``:
   they load with ``torch.load(weights_only=True)`` where ``HistoryBuffer``
   alone is allowed, and are smaller.
3. mmengine's loader of ``torchvision://`` and ``modelzoo://`` names
   becomes mmlesion's
   (:func:`~mmlesion.utils.checkpoints.pretrained.register_torchvision_loader`).
   Why: mmengine imports torchvision to resolve them, so without a working
   torchvision (missing, or PyPI's CUDA build beside a CPU torch) every
   config naming ImageNet weights crashed at model init; mmlesion's loader
   resolves the names offline from torchvision's table when it imports and
   mmengine's bundled table otherwise.
4. ``mmlesion`` joins mmengine's packages with configs
   (``mmengine.config.utils.MODULE2PACKAGE``), and the config parser's
   ``get_installed_path`` (``mmengine.config.config``) answers
   ``'mmlesion'`` with the folder of this package
   (:func:`~mmlesion.utils.configs.lookup.register_config_scope`). Why:
   ``_base_ = 'mmlesion::<config>'`` bases, built through mmlesion's
   registry tree (:mod:`mmlesion.registry`); mmengine 0.10.7 looks the
   folder up from the distribution, which for an editable install has no
   ``mmlesion/``.

Nothing else: no warnings filter, environment variable, logging, random
state or torch setting (the tools silence the stack's known start-up
warnings themselves, by importing ``mmlesion_cli`` first).
``tests/test_cli/test_import_mmlesion.py`` checks each change and that
there is no other.
"""
import mmcv
import mmdet
import mmengine
from mmengine.utils import digit_version

from .version import __version__, version_info

# The verified set (see README / requirements): mmdet 3.3 refuses mmcv 2.2.
mmcv_minimum_version = '2.0.0rc4'
mmcv_maximum_version = '2.2.0'
mmdet_minimum_version = '3.0.0'
mmdet_maximum_version = '3.4.0'
mmengine_minimum_version = '0.7.1'
mmengine_maximum_version = '1.0.0'


def _check(name: str, installed: str, low: str, high: str) -> None:
    version = digit_version(installed)
    if not (digit_version(low) <= version < digit_version(high)):
        raise ImportError(
            f'{name}=={installed} is installed but mmlesion needs '
            f'{name}>={low}, <{high}. Install the verified set with '
            f'`pip install -r requirements.txt` (see README.md).')


_check('mmcv', mmcv.__version__, mmcv_minimum_version, mmcv_maximum_version)
_check('mmdet', mmdet.__version__, mmdet_minimum_version,
       mmdet_maximum_version)
_check('mmengine', mmengine.__version__, mmengine_minimum_version,
       mmengine_maximum_version)

# The registrations.
from . import datasets, evaluation, models, utils  # noqa: E402,F401
from . import engine, visualization  # noqa: E402,F401  (hooks, drawing)
from . import structures  # noqa: E402,F401  (3D boxes: IoU, NMS)
from . import registry  # noqa: E402,F401  (scope 'mmlesion')
# The four changes of the docstring, in its order.
from .utils.checkpoints.loader import (  # noqa: E402
    patch_history_buffer_pickling, register_checkpoint_loader)
from .utils.configs.lookup import register_config_scope  # noqa: E402
from .utils.checkpoints.pretrained import (  # noqa: E402
    register_torchvision_loader)

register_checkpoint_loader()
patch_history_buffer_pickling()
register_torchvision_loader()
register_config_scope()

__all__ = ['__version__', 'version_info']
