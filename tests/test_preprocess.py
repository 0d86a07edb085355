import numpy as np
import pytest

from edge.preprocess import crop_face, square_box, to_gray


def test_square_box_grows_the_longer_side_and_lifts_the_centre():
    left, top, w, h = square_box((100, 100, 80, 100), margin=0.1, lift=0.1)
    assert w == h == 120  # 100 * (1 + 2 * 0.1)
    assert left == 140 - 60  # centred horizontally
    assert top == (150 - 10 - 60)  # centre 10 px (0.1 * 100) higher


def test_crop_is_square_gray_uint8_at_model_size():
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    face = crop_face(image, (200, 150, 120, 160), size=48)
    assert face.shape == (48, 48)
    assert face.dtype == np.uint8


def test_crop_takes_the_right_region():
    image = np.zeros((200, 200), np.uint8)
    image[50:150, 50:150] = 255
    face = crop_face(image, (50, 50, 100, 100), size=20, margin=0.0, lift=0.0)
    assert face.min() == 255  # exactly the white square
    wide = crop_face(image, (50, 50, 100, 100), size=20, margin=0.25, lift=0.0)
    assert wide[0, 0] == 0 and wide[10, 10] == 255  # margin shows the black border


def test_crop_outside_the_frame_replicates_the_border():
    image = np.full((100, 100), 200, np.uint8)
    face = crop_face(image, (-30, -30, 80, 80), size=32)
    assert face.shape == (32, 32)
    assert face.min() == 200  # no black band where the square leaves the image


def test_crop_of_a_box_entirely_outside_is_an_error():
    with pytest.raises(ValueError, match="outside"):
        crop_face(np.zeros((100, 100), np.uint8), (500, 500, 20, 20))


def test_whole_image_crop_is_a_resize():
    image = np.arange(96 * 96, dtype=np.uint32).reshape(96, 96).astype(np.uint8)
    assert crop_face(image, None, 48).shape == (48, 48)
    same = np.full((48, 48), 7, np.uint8)
    assert np.array_equal(crop_face(same, None, 48), same)


def test_to_gray_accepts_gray_bgr_and_bgra():
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 2] = 255  # red
    assert to_gray(bgr)[0, 0] == 76  # ITU-R 601 weight of red
    assert to_gray(np.dstack([bgr, np.full((4, 4), 255, np.uint8)]))[0, 0] == 76
    with pytest.raises(ValueError, match="shape"):
        to_gray(np.zeros((4, 4, 2), np.uint8))
