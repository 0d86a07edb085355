"""emotion-edge: real-time facial-emotion recognition for the Raspberry Pi.

Nothing in this package imports TensorFlow: the Pi runs the int8 model with
the LiteRT interpreter alone. Hardware libraries (picamera2, the
window system) are imported by their backends when used, never here.
"""

__version__ = "0.1.0"
