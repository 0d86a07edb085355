"""The one call picamera2 0.3.38 makes of every camera that libcamera's
Virtual camera cannot answer; for the `make pi-vm-check` guest only.

`Picamera2()` runs `_initialize_camera`, which calls `_get_raw_modes`
(picamera2.py): `camera.generate_configuration([StreamRole.Raw]).at(0)`.
The Virtual pipeline handler generates no configuration for the Raw role
(virtual.cpp `generateConfiguration`), so the binding returns None and
`Picamera2()` fails with "Camera __init__ sequence did not complete". A
camera without a raw sensor (a USB one) answers with its output formats,
which picamera2 lists as non-raw modes (`sensor_modes`: "Not a raw
sensor"); this answers the Virtual camera's Raw role the same way, with its
Viewfinder configuration. Nothing else is changed.

Loaded at interpreter start by virtual_camera.pth; it acts only once
`libcamera` is imported (a finder that patches the module after it runs).
"""

import importlib.abc
import importlib.machinery
import sys


def _patch(libcamera) -> None:
    original = libcamera.Camera.generate_configuration

    def generate_configuration(camera, roles):
        config = original(camera, roles)
        if config is None and list(roles) == [libcamera.StreamRole.Raw]:
            return original(camera, [libcamera.StreamRole.Viewfinder])
        return config

    libcamera.Camera.generate_configuration = generate_configuration


class _AfterLibcamera(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "libcamera":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


if not any(isinstance(finder, _AfterLibcamera) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AfterLibcamera())
