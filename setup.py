# Copyright (c) mmlesion contributors. All rights reserved.
"""Install mmlesion.

mmcv 2.x has no binary wheel on PyPI and compiles against the installed
torch, so install the build requirements first (see README.md)::

    pip install -r requirements/build.txt
    pip install --no-build-isolation -e .
"""
import os.path as osp

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


setup(
    name='mmlesion',
    version=get_version(),
    description='Lesion detection in CT on top of MMDetection 3.x',
    long_description=open(osp.join(HERE, 'README.md')).read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'data')),
    include_package_data=True,
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
