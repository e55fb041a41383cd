# Copyright (c) mmlesion contributors. All rights reserved.
"""mmlesion: lesion detection in CT on top of MMDetection 3.x.

Importing this package registers every mmlesion component into mmdet's
registries (``MODELS``, ``DATASETS``, ``TRANSFORMS``, ``METRICS``, ...), so a
config only needs::

    custom_imports = dict(imports=['mmlesion'], allow_failed_imports=False)

Importing it changes no global state beyond these registrations: it
installs no warnings filter (the tools silence the stack's known start-up
warnings themselves, by importing ``mmlesion_cli`` first).
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

from . import datasets, evaluation, models, utils  # noqa: E402,F401
from .utils import register_checkpoint_loader  # noqa: E402
from . import nas  # noqa: E402,F401  (ALB search loop, dataset, optimizers)
from . import engine, visualization  # noqa: E402,F401  (hooks, drawing)
from . import structures  # noqa: E402,F401  (3D boxes: IoU, NMS)

# Resuming mmengine checkpoints needs this on torch >= 2.6 (see utils).
register_checkpoint_loader()
# torchvision:// weights resolve without a (working) torchvision (see utils).
from .utils import register_torchvision_loader  # noqa: E402

register_torchvision_loader()
# 'mmlesion::<config>' bases, built through mmlesion's registry tree.
from . import registry  # noqa: E402,F401
from .utils.package_configs import register_config_scope  # noqa: E402

register_config_scope()

__all__ = ['__version__', 'version_info']
