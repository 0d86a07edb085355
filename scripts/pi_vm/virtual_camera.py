"""What picamera2 0.3.38 does that libcamera's Virtual camera cannot take,
answered as a camera without an ISP would; for the `make pi-vm-check` guest
only. Two things:

1. The Raw role.
`Picamera2()` runs `_initialize_camera`, which calls `_get_raw_modes`
(picamera2.py): `camera.generate_configuration([StreamRole.Raw]).at(0)`.
The Virtual pipeline handler generates no configuration for the Raw role
(virtual.cpp `generateConfiguration`), so the binding returns None and
`Picamera2()` fails with "Camera __init__ sequence did not complete". A
camera without a raw sensor (a USB one) answers with its output formats,
which picamera2 lists as non-raw modes (`sensor_modes`: "Not a raw
sensor"); this answers the Virtual camera's Raw role the same way, with its
Viewfinder configuration.

2. Buffers of one plane. picamera2's DmaAllocator (allocators/
dmaallocator.py `allocate`) gives each buffer a single plane spanning the
whole frame, which the Pi's pipeline handlers accept for NV12 and YUV420;
the Virtual camera's frame generator writes each plane of the format it
maps (virtual/frame_generator: `planes()[1]` for NV12's chroma), and libcamera
aborts on the missing one ("Assertion '__n < this->size()' failed", seen in
the guest). Here each such buffer is described by its planes instead:
the same dma-buf, at the offsets the format puts them.

Nothing else is changed. Loaded at interpreter start by virtual_camera.pth;
each patch acts only once its module is imported (a finder that patches a
module after it runs).
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


# Each plane's share of stride x height, for the formats with more than one.
PLANES = {"NV12": (1.0, 0.5), "NV21": (1.0, 0.5), "YUV420": (1.0, 0.25, 0.25)}


def _patch_allocator(module) -> None:
    import libcamera

    original = module.DmaAllocator.allocate

    def allocate(self, libcamera_config, use_case):
        original(self, libcamera_config, use_case)
        for stream_config in libcamera_config:
            shares = PLANES.get(str(stream_config.pixel_format))
            stream = stream_config.stream
            if shares is None or stream not in self.frame_buffers:
                continue
            rows = stream_config.stride * stream_config.size.height
            planned = []
            for buffer in self.frame_buffers[stream]:
                old_fd, planes, offset = buffer.planes[0].fd, [], 0
                for share in shares:
                    plane = libcamera.FrameBuffer.Plane()
                    plane.fd = old_fd  # libcamera keeps its own copy of the descriptor
                    plane.offset, plane.length = offset, int(rows * share)
                    offset += plane.length
                    planes.append(plane)
                described = libcamera.FrameBuffer(planes)
                # picamera2 tracks buffers by their first plane's descriptor
                new_fd = described.planes[0].fd
                self.mapped_buffers[described] = self.mapped_buffers.pop(buffer)
                self.mapped_buffers_used[new_fd] = self.mapped_buffers_used.pop(old_fd)
                self.libcamera_fds = [new_fd if fd == old_fd else fd for fd in self.libcamera_fds]
                planned.append(described)
            self.frame_buffers[stream] = planned

    module.DmaAllocator.allocate = allocate


PATCHES = {"libcamera": _patch, "picamera2.allocators.dmaallocator": _patch_allocator}


class _AfterImport(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.done: set[str] = set()

    def find_spec(self, name, path=None, target=None):
        if name not in PATCHES or name in self.done:
            return None
        self.done.add(name)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            PATCHES[name](module)

        spec.loader.exec_module = exec_module
        return spec


if not any(isinstance(finder, _AfterImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AfterImport())
