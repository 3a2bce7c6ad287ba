"""Index tables into the 478-point MediaPipe face mesh, defined once for the whole package.

Point ids follow MediaPipe's ``face_mesh_connections`` (checked against it by the tests). "Right"
and "left" are the subject's: ``RIGHT_EYE_*`` is the eye on the image's left side.
"""

from __future__ import annotations

import numpy as np

N_POINTS = 478
"""Points of the refined mesh (468 face + 10 iris)."""

LIPS_UPPER_OUTER = np.array([61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291])
LIPS_LOWER_OUTER = np.array([61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291])
LIPS_UPPER_INNER = np.array([78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308])
LIPS_LOWER_INNER = np.array([78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308])

LIPS_ALL = np.unique(np.concatenate([LIPS_UPPER_OUTER, LIPS_LOWER_OUTER, LIPS_UPPER_INNER, LIPS_LOWER_INNER]))
"""The 40 lip points."""

MOUTH_INNER_LOOP = np.concatenate([LIPS_UPPER_INNER, LIPS_LOWER_INNER[::-1][1:-1]])
"""Closed polygon of the inner lip contour (upper left->right, then lower right->left)."""

INNER_LIP_PAIRS = np.array([[80, 88], [81, 178], [82, 87], [13, 14], [312, 317], [311, 402], [310, 318]])
"""Vertically facing (upper, lower) inner-lip points, left to right."""
INNER_LIP_COLUMNS = np.stack([LIPS_UPPER_INNER[1:-1], LIPS_LOWER_INNER[1:-1]], 1)
"""Every facing (upper, lower) pair of inner-lip points between the corners, left to right (the 7
:data:`INNER_LIP_PAIRS` and the two next to the corners)."""

MOUTH_CORNERS = np.array([61, 291])
UPPER_LIP_CENTRE, LOWER_LIP_CENTRE = 13, 14
UPPER_LIP_TOP, LOWER_LIP_BOTTOM = 0, 17
CHIN, NOSE_TIP = 152, 1

FACE_OVAL = np.array([10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378,
                      400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21,
                      54, 103, 67, 109])
"""Closed face outline, clockwise from the forehead top."""

JAW = np.array([58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365, 397, 288])
"""Lower face outline from the subject's right jaw angle to the left one."""

RIGHT_EYE_UPPER = np.array([246, 161, 160, 159, 158, 157, 173])
RIGHT_EYE_LOWER = np.array([7, 163, 144, 145, 153, 154, 155])
LEFT_EYE_UPPER = np.array([466, 388, 387, 386, 385, 384, 398])
LEFT_EYE_LOWER = np.array([249, 390, 373, 374, 380, 381, 382])
RIGHT_EYE_CORNERS = np.array([33, 133])
LEFT_EYE_CORNERS = np.array([263, 362])
RIGHT_EYE_CREASE = np.array([247, 30, 29, 27, 28, 56, 190])
LEFT_EYE_CREASE = np.array([467, 260, 259, 257, 258, 286, 414])
"""Points just above each upper lid, paired one to one with the ``*_EYE_UPPER`` points."""
RIGHT_IRIS = np.arange(468, 473)
LEFT_IRIS = np.arange(473, 478)

RIGHT_BROW = np.array([70, 63, 105, 66, 107, 46, 53, 52, 65, 55])
LEFT_BROW = np.array([300, 293, 334, 296, 336, 276, 283, 282, 295, 285])
BROWS = np.concatenate([RIGHT_BROW, LEFT_BROW])

EYE_UPPER = np.concatenate([RIGHT_EYE_UPPER, LEFT_EYE_UPPER])
EYE_LOWER = np.concatenate([RIGHT_EYE_LOWER, LEFT_EYE_LOWER])
EYE_CREASE = np.concatenate([RIGHT_EYE_CREASE, LEFT_EYE_CREASE])
OUTER_EYE_CORNERS = np.array([33, 263])
"""Their distance is the unit of the canonical mesh."""

POSE = np.array([1, 4, 5, 6, 168, 197, 195, 10, 151, 9, 8, 108, 337, 67, 297, 109, 338,
                 33, 133, 362, 263, 234, 454, 127, 356, 93, 323, 116, 345, 123, 352])
"""Rigid points (forehead, nose, eye corners, temples, cheekbones) used to fit head pose."""

# IP_LAP's landmark sets (Zhong et al. 2023, released code): the mesh points of MediaPipe's lips, eyes,
# brows, nose and lower face-oval connections. The upper-face points give the pose prior; the lips
# and the lower jaw are the content predicted from audio.
IPLAP_NOSE_LINES = ((168, 6, 197, 195, 5, 4), (4, 45, 220, 115, 48), (4, 275, 440, 344, 278))
IPLAP_OVAL_LINE = (389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136,
                   172, 58, 132, 93, 234, 127, 162)
"""The face oval below the eyes, from the subject's left temple round the chin to the right one."""
IPLAP_CHEEKS = np.array([162, 127, 234, 93, 389, 356, 454, 323])
"""Oval points beside the eyes: pose, not content."""

IPLAP_LIPS = LIPS_ALL
"""40 lip points (predicted from audio)."""
IPLAP_JAW = np.array([p for p in IPLAP_OVAL_LINE if p not in IPLAP_CHEEKS])
"""17 lower-face outline points (predicted from audio)."""
IPLAP_POSE = np.unique(np.concatenate([*map(np.array, IPLAP_NOSE_LINES), RIGHT_EYE_UPPER, RIGHT_EYE_LOWER,
                                       LEFT_EYE_UPPER, LEFT_EYE_LOWER, RIGHT_EYE_CORNERS, LEFT_EYE_CORNERS,
                                       RIGHT_BROW, LEFT_BROW, IPLAP_CHEEKS]))
"""74 upper-face points (eyes, brows, nose, cheeks): the pose prior."""
IPLAP_CONTENT = np.concatenate([IPLAP_LIPS, IPLAP_JAW])
"""57 content points, lips first."""
IPLAP_REFERENCE = np.concatenate([IPLAP_POSE, IPLAP_CONTENT])
"""131 reference points: pose then content."""

IPLAP_SKETCH_PARTS: dict[str, tuple[tuple[int, ...], ...]] = {
    "lips": tuple(tuple(int(p) for p in c) for c in (LIPS_UPPER_OUTER, LIPS_LOWER_OUTER, LIPS_UPPER_INNER,
                                                       LIPS_LOWER_INNER)),
    "eyes": tuple(tuple(int(p) for p in (c[0], *lid, c[1])) for c, lids in
                  ((RIGHT_EYE_CORNERS, (RIGHT_EYE_UPPER, RIGHT_EYE_LOWER)),
                   (LEFT_EYE_CORNERS, (LEFT_EYE_UPPER, LEFT_EYE_LOWER))) for lid in lids),
    "brows": (tuple(RIGHT_BROW[:5].tolist()), tuple(RIGHT_BROW[5:].tolist()), tuple(LEFT_BROW[:5].tolist()),
              tuple(LEFT_BROW[5:].tolist())),
    "nose": IPLAP_NOSE_LINES,
    "oval": (IPLAP_OVAL_LINE,),
}
"""Polylines of the landmark sketch, by part (every point is in IPLAP_REFERENCE)."""
