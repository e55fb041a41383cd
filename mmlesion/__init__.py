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
each made by one function called once at the end of this file (why each:
``docs/get_started_gpu.md``):

1. mmengine's loader of local checkpoints (the ``''`` scheme of
   ``mmengine.runner.CheckpointLoader``) becomes mmlesion's
   (:func:`~mmlesion.utils.checkpoints.loader.register_checkpoint_loader`).
2. ``mmengine.logging.HistoryBuffer.__getstate__`` leaves out the four
   built-in statistics
   (:func:`~mmlesion.utils.checkpoints.loader.patch_history_buffer_pickling`).
3. mmengine's loader of ``torchvision://`` and ``modelzoo://`` names
   becomes mmlesion's
   (:func:`~mmlesion.utils.checkpoints.pretrained.register_torchvision_loader`).
4. ``mmlesion`` joins ``mmengine.config.utils.MODULE2PACKAGE`` and the
   config parser's ``get_installed_path`` answers ``'mmlesion'`` with this
   package's folder
   (:func:`~mmlesion.utils.configs.lookup.register_config_scope`).

Nothing else (``tests/test_cli/test_import_mmlesion.py``).
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
