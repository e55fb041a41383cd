from .cube_anchor_generator import CubeAnchorGenerator3D  # noqa: F401
