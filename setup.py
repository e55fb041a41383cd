# Copyright (c) mmlesion contributors. All rights reserved.
"""Install mmlesion.

mmcv 2.x has no binary wheel on PyPI and compiles against the installed
torch, so install the build requirements first (see README.md)::

    pip install -r requirements/build.txt
    pip install --no-build-isolation -e .
"""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def get_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'mmlesion', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(fname: str) -> list:
    """Read a requirements file, skipping comments and ``-r`` includes."""
    reqs = []
    with open(osp.join(HERE, fname)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-'):
                reqs.append(line)
    return reqs


def add_mim_extension() -> None:
    """Put the configs (and tools) inside the package, as mmdet does.

    ``mmlesion/.mim/configs`` and ``mmlesion/.mim/tools`` are copies for a
    wheel / sdist / install and links for a ``develop`` or editable
    install, so an installed mmlesion carries every config
    (:func:`mmlesion.utils.lesion_config_path` finds them), and
    ``mmlesion/.mim/model-index.yml`` is the repository's model index (it
    imports each method's ``configs/<method>/metafile.yml``), which ``mim``
    and mmengine read.
    """
    mode = 'symlink' if any(cmd in sys.argv for cmd in (
        'develop', 'editable_wheel')) else 'copy'
    if not any(cmd in sys.argv for cmd in (
            'develop', 'editable_wheel', 'install', 'bdist_wheel', 'sdist',
            'build', 'build_py', 'egg_info')):
        return
    mim_dir = osp.join(HERE, 'mmlesion', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for name in ('model-index.yml', 'configs', 'tools'):
        src, dst = osp.join(HERE, name), osp.join(mim_dir, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_dir), dst)
        elif osp.isfile(src):
            shutil.copyfile(src, dst)
        else:
            shutil.copytree(src, dst,
                            ignore=shutil.ignore_patterns('__pycache__'))


add_mim_extension()

setup(
    name='mmlesion',
    version=get_version(),
    description='Lesion detection in CT on top of MMDetection 3.x',
    long_description=open(osp.join(HERE, 'README.md')).read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    # the library and its command-line package only: not the laboratory
    # (tests, projects) nor any other folder of the clone
    packages=find_packages(
        include=('mmlesion', 'mmlesion.*', 'mmlesion_cli', 'mmlesion_cli.*')),
    include_package_data=True,
    package_data={
        'mmlesion': [
            '.mim/model-index.yml', '.mim/configs/**/*.py',
            '.mim/configs/**/*.md', '.mim/configs/**/*.yml',
            '.mim/tools/**/*.py', '.mim/tools/*.sh',
            # data the library and the tools' --help read
            '**/*.json'
        ]
    },
    python_requires='>=3.9',
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require={
        'tests': parse_requirements('requirements/tests.txt'),
        'torchvision': parse_requirements('requirements/optional.txt'),
        'dicom': parse_requirements('requirements/dicom.txt'),
    },
    license='Apache License 2.0',
    zip_safe=False,
)
