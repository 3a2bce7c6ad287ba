"""StyleHEAT: motion generators, flow composition, calibration, training stages and edit directions (tiny configs)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import assert_pasted_into_face, mouth_follows_phonemes, optimise
from talkinghead.motion.styleheat.model import StyleHeat
from talkinghead.nn.layers import compose_flows, warp
from talkinghead.render.stylegan.model import Generator
from talkinghead.train.stylegan import STYLEGAN_CONFIGS
from talkinghead.train.styleheat import (
    EDIT_NAMES,
    STYLEHEAT_CONFIGS,
    attribute_offset,
    labelled_direction,
    soft_mouth_mask,
)

GEN = STYLEGAN_CONFIGS["tiny"].generator
TINY = replace(STYLEHEAT_CONFIGS["tiny"], flow_input=32, warp_resolution=16, feature_channels=GEN.channels_at(16),
               n_latents=GEN.n_latents, w_dim=GEN.w_dim, edit_names=["smile"])


def _inputs(b: int = 2) -> tuple[Generator, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    generator = Generator(GEN).eval()
    w = torch.randn(b, GEN.n_latents, GEN.w_dim)
    with torch.no_grad():
        source, _ = generator(w, noise="none")
    return generator, w, source, torch.randn(b, TINY.window, TINY.n_coefficients), torch.randn(b, 16, 80)


def test_untrained_model_reproduces_the_unwarped_generator_output() -> None:
    generator, w, source, coefficients, mels = _inputs()
    model = StyleHeat(TINY)
    with torch.no_grad():
        flow, descriptor = model.motion(source, coefficients, mels)
        image, feature = model.render(generator, w, flow, descriptor)
        _, plain_feature = generator(w, noise="none", features=16)
    assert flow.shape == (2, 2, 16, 16) and not flow.any()  # zero-initialised flow heads
    assert torch.allclose(image, source, atol=1e-5)  # zero flow + untouched calibration = the generator's image
    assert torch.allclose(feature, plain_feature, atol=1e-5)


def test_zero_flow_reproduces_the_generator_output_and_calibration_changes_it() -> None:
    generator, w, source, _, _ = _inputs()
    model = StyleHeat(TINY)
    zero = torch.zeros(2, 2, 16, 16)
    with torch.no_grad():
        assert torch.allclose(model.render(generator, w, zero, None, calibrate=False)[0], source, atol=1e-5)
        model.calibrator.shift.bias.fill_(0.5)
        assert (model.render(generator, w, zero, None)[0] - source).abs().amax() > 1e-2


def test_one_source_image_drives_a_batch_like_its_copies() -> None:
    """``motion`` with one source image for B drivers (encoded once) gives the flows of B copies of it."""
    _, _, source, coefficients, mels = _inputs()
    model = StyleHeat(TINY).eval()
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.05)  # non-zero flow heads
        one, copies = source[:1], source[:1].expand(2, -1, -1, -1)
        for drivers in ((coefficients, mels), (coefficients, None), (None, mels)):
            flow, _ = model.motion(one, *drivers)
            assert flow.shape == (2, 2, 16, 16) and flow.abs().amax() > 0.1
            assert torch.allclose(flow, model.motion(copies, *drivers)[0], atol=1e-5)

def test_composed_flow_equals_warping_twice() -> None:
    """Smooth image and flows (bilinear resampling of noise would differ by its blur alone)."""
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    x = torch.stack([torch.sin(xs / 5) + torch.cos(ys / 7), torch.sin((xs + ys) / 6)])[None]
    first = torch.stack([1.5 * torch.sin(xs / 4), torch.cos(xs / 5)])[None]
    second = torch.stack([2 + 0.5 * torch.cos(ys / 6), 0.8 * torch.sin(xs / 7)])[None]
    inside = (slice(None), slice(None), slice(4, -4), slice(4, -4))  # away from the border clamp
    twice, once = warp(warp(x, first), second), warp(x, compose_flows(first, second))
    assert (twice - once)[inside].abs().max() < 0.02 * x.abs().max()
    shift = torch.zeros(1, 2, 16, 16)
    shift[:, 0] = 1.0  # one pixel right, twice: exactly two
    assert torch.allclose(compose_flows(shift, shift), 2 * shift)
    naive = warp(x, first + second)  # adding the flows is not the same
    assert (twice - naive)[inside].abs().max() > 5 * (twice - once)[inside].abs().max()


def test_audio_flow_moves_only_the_lower_face() -> None:
    _, _, source, _, mels = _inputs()
    model = StyleHeat(TINY)
    with torch.no_grad():
        model.audio_flow.head.bias.fill_(1.0)
        flow = model.audio_motion(source, mels)
    rows = flow.abs().amax((0, 1, 3))
    assert not rows[:8].any() and (rows[8:] > 0.5).all()  # mouth_from 0.5 of 16 rows


def test_whisper_windows_drive_the_audio_flow(tmp_path: Path) -> None:
    """The speech switch: a window of Whisper features per frame through a small MLP in place of the mel mapper
    drives the lower-face flow; the model round-trips with its kind."""
    _, _, source, _, _ = _inputs()
    model = StyleHeat(replace(TINY, speech="whisper"))
    speech = torch.randn(2, 5, 384)
    with torch.no_grad():
        model.audio_flow.head.bias.fill_(1.0)
        flow = model.audio_motion(source, speech)
    rows = flow.abs().amax((0, 1, 3))
    assert flow.shape == (2, 2, 16, 16) and not rows[:8].any() and (rows[8:] > 0.5).all()
    model.save(tmp_path / "sh.pt")
    again = StyleHeat.load(tmp_path / "sh.pt").eval()
    with torch.no_grad():
        assert again.config.speech == "whisper" and torch.equal(again.motion(source, None, speech)[0],
                                                                  model.eval().motion(source, None, speech)[0])


@pytest.mark.slow
def test_training_lowers_a_flow_loss_and_round_trips(tmp_path: Path) -> None:
    """A training step of the whole motion path (both generators, calibration) lowers an image loss towards a
    shifted target; save/load keeps every output."""
    generator, w, source, coefficients, mels = _inputs()
    target = torch.roll(source, 1, dims=-1)
    model = StyleHeat(TINY)

    def loss() -> torch.Tensor:
        flow, descriptor = model.motion(source, coefficients, mels)
        image, _ = model.render(generator, w, flow, descriptor)
        return (image - target).abs().mean()

    losses = optimise(model, loss, steps=30, lr=3e-3)
    assert np.isfinite(losses).all() and losses[-1] < 0.9 * losses[0]
    model.edit_directions.normal_()
    model.save(tmp_path / "sh.pt")
    again = StyleHeat.load(tmp_path / "sh.pt")
    with torch.no_grad():
        model.eval()
        a, b = model.motion(source, coefficients, mels), again.motion(source, coefficients, mels)
    assert torch.equal(a[0], b[0]) and torch.equal(model.edit_directions, again.edit_directions)


MESH = replace(TINY, flows="mesh")


def _posed_canonical(shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The canonical mesh at 60 px per unit, centred in a 256 px crop (plus ``shift``): (478, 3) crop pixels."""
    from talkinghead.face.pose import canonical_mesh

    return 60.0 * canonical_mesh() + np.array([128.0 + shift[0], 128.0 + shift[1], 0.0])


def test_mesh_flows_carry_the_photo_onto_each_mesh() -> None:
    """A face moved 8 px right is drawn by a flow that reads 8 px to the left (one pixel of a 32 px grid) inside the
    face; the crop's border stays; the same mesh gives no flow; a warped image lands where the mesh says."""
    from talkinghead.face.indices import NOSE_TIP
    from talkinghead.motion.styleheat.flows import mesh_flows

    source = _posed_canonical()
    flows = mesh_flows(source[:, :2], np.stack([source, _posed_canonical((8.0, 0.0))])[..., :2], size=256,
                       resolution=32)
    assert flows.shape == (2, 2, 32, 32) and flows.dtype == torch.float32
    assert flows[0].abs().max() < 1e-5
    x, y = ((source[NOSE_TIP, :2] + 8 + 0.5) / 8 - 0.5).round().astype(int)  # the moved nose's grid pixel
    assert flows[1, 0, y, x].item() == pytest.approx(-1.0, abs=1e-4) and abs(flows[1, 1, y, x].item()) < 1e-4
    assert flows[1, :, 0].abs().max() < 0.1 and flows[1, :, :, -1].abs().max() < 0.1  # the border barely moves
    image = torch.zeros(1, 1, 32, 32)
    image[..., y, x - 1] = 1.0  # a dot where the nose was
    assert warp(image, flows[1:])[0, 0, y, x].item() == pytest.approx(1.0, abs=1e-4)


def test_mesh_path_builds_no_hourglass_and_learns_expression(tmp_path: Path) -> None:
    """Mesh flows: the audio mapper and its head map speech inputs to expression coefficients (a training step lowers
    the error towards known ones), no flow network is built, and save/load keeps the output."""
    model = StyleHeat(MESH)
    assert not any(name.startswith(("video_", "audio_flow")) for name, _ in model.named_parameters())
    mels = torch.randn(6, 16, 80, generator=torch.Generator().manual_seed(0))
    target = torch.randn(6, MESH.n_expression, generator=torch.Generator().manual_seed(1))
    losses = optimise(model, lambda: (model.expression(mels) - target).pow(2).mean(), steps=30, lr=3e-3)
    assert np.isfinite(losses).all() and losses[-1] < 0.7 * losses[0]
    model.save(tmp_path / "mesh.pt")
    again = StyleHeat.load(tmp_path / "mesh.pt")
    with torch.no_grad():
        assert torch.equal(model.eval().expression(mels), again.eval().expression(mels))
    with pytest.raises(ValueError, match="flows must be one of network, mesh"):
        replace(MESH, flows="optical")


def _mesh_flows(model: StyleHeat, mesh: np.ndarray, speech: np.ndarray, **kw: object) -> torch.Tensor:
    """The mesh path's flows at 32 px of a 256 px crop that is the frame itself (:func:`mesh_motion`)."""
    from talkinghead.face.crop import FaceCrop
    from talkinghead.face.model import default_face_model
    from talkinghead.motion.styleheat.infer import crop_flows, mesh_motion

    crop = FaceCrop(matrix=np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), size=256)
    targets = mesh_motion(model, mesh, speech, face_model=default_face_model(), **kw)  # type: ignore[arg-type]
    return crop_flows(mesh, crop, targets, resolution=32)


def test_mesh_motion_moves_the_lower_face_and_follows_the_driving_head() -> None:
    """Without a driving video the predicted coefficients (the first lower-face component at 2 of its standard
    deviations in speech) open the mouth and move the eyes and the nose far less; a driving clip's head turn moves
    the whole face."""
    from talkinghead.face.indices import LOWER_LIP_CENTRE, NOSE_TIP, OUTER_EYE_CORNERS
    from talkinghead.face.model import default_face_model

    face_model = default_face_model()
    model = StyleHeat(replace(MESH, n_expression=face_model.lower_face.size))
    with torch.no_grad():
        model.audio_expression[1].weight.zero_()
        model.audio_expression[1].bias.zero_()[0] = 0.5  # component 0 is a lower-face one
    mesh = _posed_canonical()
    mels = np.zeros((3, 16, 80), np.float32)
    flows = _mesh_flows(model, mesh, mels)

    def at(point: int, f: torch.Tensor) -> float:
        x, y = ((mesh[point, :2] + 0.5) / 8 - 0.5).round().astype(int)
        return float(f[0, :, y, x].abs().max())

    assert face_model.lower_face[0]
    lip = at(LOWER_LIP_CENTRE, flows)  # the head ring follows the face oval, jaw included: the rest moves a little
    assert lip > 0.15 and at(OUTER_EYE_CORNERS[0], flows) < lip / 3 and at(NOSE_TIP, flows) < lip / 3
    wider = _mesh_flows(model, mesh, mels, mouth_scale=2.0)
    assert at(LOWER_LIP_CENTRE, wider) > 1.3 * lip  # the user's amplitude (--expression-scale)
    model.mouth_gain.fill_(0.0)  # the fitted gain scales the same coefficients: none, no motion
    still = _mesh_flows(model, mesh, mels)
    assert (still - still[:1]).abs().max() < 1e-5  # every frame the photo's lower-face rest shape (next test)
    model.mouth_gain.fill_(1.0)
    c, s = np.cos(0.5), np.sin(0.5)  # a roll of 0.5 rad in the last frame
    turn = np.stack([np.eye(3), np.eye(3), np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])])
    driving = (np.zeros((3, face_model.lower_face.size), np.float32), turn)
    turned = _mesh_flows(model, mesh, mels, driving=driving)
    assert at(OUTER_EYE_CORNERS[0], turned[2:]) > 0.5 and at(OUTER_EYE_CORNERS[0], turned[:1]) > 0.05


def test_mesh_motion_moves_a_photo_from_its_lower_face_rest_shape(media: Path) -> None:
    """The predicted coefficients are offsets from a clip's mean shape, so they move the photo with its mouth at rest
    (:func:`photo_rest_mouth`): with no speech motion a closed-mouth photo's lips part towards a speaking mouth's mean
    gap, its eyes and brows stay; without that, every closing coefficient would press its closed lips together."""
    from talkinghead.face import indices as ix
    from talkinghead.face.expression import GAP, eye_openness, mouth_features
    from talkinghead.face.mesh import mesh_image
    from talkinghead.face.model import default_face_model
    from talkinghead.face.pose import pose_free
    from talkinghead.io import read_image
    from talkinghead.motion.styleheat.infer import mesh_motion

    face_model = default_face_model()
    model = StyleHeat(replace(MESH, n_expression=face_model.lower_face.size))
    model.mouth_gain.fill_(0.0)
    mesh, _ = mesh_image(read_image(media / "faces" / "liveportrait_s0.jpg"), source="photo")  # lips closed
    moved = mesh_motion(model, mesh.astype(np.float64), np.zeros((2, 16, 80), np.float32), face_model=face_model)
    own, rest = pose_free(np.stack([mesh.astype(np.float64), moved[0]]))
    assert mouth_features(own)[GAP] < 0.01 and mouth_features(rest)[GAP] > 0.02
    assert eye_openness(rest) == pytest.approx(eye_openness(own), abs=0.005)
    assert np.abs(rest[ix.BROWS] - own[ix.BROWS]).max() < 0.005


def test_pasted_crops_move_the_photo_around_the_face_with_its_meshes(media: Path) -> None:
    """With the meshes each crop was drawn for, the photo around the face moves with them: a face moved 12 px right
    shows, just beyond its pasted oval, the photo's pixels from 12 px to the left. An unmoved mesh gives the still
    paste, and without meshes the photo around the face stays. Where a mesh parts the lips, the inside of the mouth is
    drawn between them."""
    from types import SimpleNamespace

    from talkinghead.constants import CROP_SIZE, DATA_FPS
    from talkinghead.face.crop import crop_face
    from talkinghead.face.indices import FACE_OVAL, INNER_LIP_PAIRS
    from talkinghead.face.mesh import mesh_image
    from talkinghead.io import read_image, resize_longer
    from talkinghead.render.stylegan.spec import MASK_SCALE, PastedCrops
    from talkinghead.spec import Performance

    photo = resize_longer(read_image(media / "faces" / "liveportrait_s7.jpg"), 384)
    mesh, _ = mesh_image(photo, source="photo")
    crop, _ = crop_face(photo, mesh, size=CROP_SIZE)
    scene = SimpleNamespace(clip=SimpleNamespace(frames=photo[None]), meshes=mesh[None], n_frames=2,
                            features=SimpleNamespace(fps=DATA_FPS))
    crops = np.stack([crop, crop])
    moved = np.stack([mesh, mesh + np.array([12.0, 0.0, 0.0], np.float32)])
    still, shifted = PastedCrops().frames(None, scene, Performance(crops=crops, crop_meshes=moved))  # type: ignore
    plain = list(PastedCrops().frames(None, scene, Performance(crops=crops)))  # type: ignore[arg-type]
    oval = mesh[FACE_OVAL, :2]
    x = round(float(oval[:, 0].mean() + 12 + (MASK_SCALE + 0.05) * np.ptp(oval[:, 0]) / 2))  # beyond the moved mask
    y = round(float(oval[:, 1].mean()))
    rows = slice(y - 20, y + 20)

    def differ(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a.astype(np.float32) - b).mean())

    assert differ(still, plain[0]) < 0.5 and differ(plain[1][rows, x - 3:x + 3], photo[rows, x - 3:x + 3]) < 0.5
    assert differ(shifted[rows, x - 3:x + 3], photo[rows, x - 15:x - 9]) < 1.5
    assert differ(shifted[rows, x - 3:x + 3], photo[rows, x - 3:x + 3]) > 20
    opened = mesh.copy()  # the lower inner lip 8 px down: the painter draws a mouth's inside between the lips
    opened[INNER_LIP_PAIRS[:, 1], 1] += 8
    parted = Performance(crops=crops, crop_meshes=np.stack([mesh, opened]))
    _, drawn = PastedCrops().frames(None, scene, parted)  # type: ignore[arg-type]
    upper = mesh[INNER_LIP_PAIRS[:, 0], :2]
    x0, x1 = np.round(np.percentile(upper[:, 0], [30, 70])).astype(int)
    y0 = round(float(upper[:, 1].mean())) + 2
    assert differ(drawn[y0:y0 + 4, x0:x1], still[y0:y0 + 4, x0:x1]) > 10


def test_shipped_model_follows_the_phonemes_of_real_speech(one_clip_dataset: Path) -> None:
    """The shipped model (mesh flows) on a real clip it never saw: its lower-face coefficients open the mouth wider
    on open vowels than on bilabial closures, and the opening follows the real one."""
    from talkinghead.data.clip import clip_dir, load_clip
    from talkinghead.face.model import default_face_model
    from talkinghead.train.datasets import clip_speech_inputs

    model, clip = StyleHeat.default().eval(), load_clip(clip_dir(one_clip_dataset, "a"))
    assert model.config.flows == "mesh"
    with torch.no_grad():
        predicted = model.expression(torch.from_numpy(clip_speech_inputs(model.config.speech, clip)).float()).numpy()
    coefficients = np.where(default_face_model().lower_face[:predicted.shape[1]], predicted, 0.0)
    gap, corr = mouth_follows_phonemes(clip_dir(one_clip_dataset, "a"), coefficients)
    assert gap > 0.015 and corr > 0.3


def test_soft_mouth_mask() -> None:
    mask = soft_mouth_mask(100, 0.2)[0, 0]
    assert mask.shape == (100, 100)
    assert mask[67, 50] == 1.0 and mask[5, 5] == pytest.approx(0.2) and mask[67, 5] == pytest.approx(0.2)
    assert mask.min() == pytest.approx(0.2)


def test_labelled_direction_finds_a_planted_attribute() -> None:
    rng = torch.Generator().manual_seed(0)
    codes = torch.randn(500, 16, generator=rng)
    true = torch.zeros(16)
    true[3], true[7] = 0.6, -0.8
    values = codes @ true + 0.05 * torch.randn(500, generator=rng)
    direction, std = labelled_direction(codes, values)
    assert torch.dot(direction, true) > 0.99 and std == pytest.approx(1.0, abs=0.1)


def test_attribute_offset_is_the_face_change_that_goes_with_the_attribute() -> None:
    """Coefficients whose component 2 is the attribute (twice, with a little noise): one standard deviation of the
    attribute goes with one of component 2 and nothing else."""
    rng = torch.Generator().manual_seed(0)
    coefficients = torch.randn(4000, 6, generator=rng) + 3.0  # not centred: the offset must not care
    values = 2.0 * coefficients[:, 2] + 0.01 * torch.randn(4000, generator=rng)
    expected = torch.zeros(6)
    expected[2] = 1.0
    assert torch.allclose(attribute_offset(coefficients, values), expected, atol=0.05)


@pytest.fixture(scope="module")
def tiny_styleheat(one_clip_dataset: Path, tiny_stylegan: Path, tmp_path_factory: pytest.TempPathFactory
                   ) -> tuple[Path, dict]:
    import shutil

    from talkinghead.train.styleheat import train_styleheat

    root = tmp_path_factory.mktemp("styleheat")
    data = shutil.copytree(one_clip_dataset, root / "data")
    (data / "splits" / "val.txt").write_text("a\n")  # the same clip validates: the validation step runs
    path = root / "sh.pt"
    metrics = train_styleheat([data], path, stylegan=tiny_stylegan, syncnet=tiny_stylegan / "sync.pt",
                              config=STYLEHEAT_CONFIGS["tiny"], warp_steps=2, calibrate_steps=2, batch=2, frames=10,
                              direction_frames=60, quiet=True)
    return path, metrics


@pytest.mark.train
@pytest.mark.slow
def test_train_styleheat_tiny(tiny_styleheat: tuple[Path, dict], tiny_stylegan: Path) -> None:
    from talkinghead.nn.checkpoint import checkpoint_meta

    path, metrics = tiny_styleheat
    assert {"train_warp", "train_mouth", "train_sync", "val_psnr"} <= set(metrics["warp"])
    assert {"train_mouth", "train_regular", "train_domain", "train_adversarial", "train_sync",
            "train_disc"} <= set(metrics["calibrate"])
    assert all(np.isfinite(v) for stage in ("warp", "calibrate") for v in metrics[stage].values())
    assert metrics["warp"]["train_warp"] < metrics["warp"]["first_train_warp"], metrics  # the warp loss fell
    model = StyleHeat.load(path)
    c = model.config
    assert (c.flow_input, c.warp_resolution, c.n_latents, c.w_dim) == (32, 16, 8, 32)  # the tiny generator's
    assert c.edit_names == EDIT_NAMES and checkpoint_meta(path)["steps"] == {"warp": 2, "calibrate": 2}
    norms = model.edit_directions.norm(dim=1)
    assert torch.allclose(norms, torch.ones(len(EDIT_NAMES)), atol=1e-5) and (model.edit_stds > 0).all()
    assert model.edit_layers[:2].tolist() == [[0, 8], [0, 8]] and model.edit_layers[2:, 1].eq(4).all()
    assert all(-1 <= metrics["edits"][k] <= 1 for k in ("smile", "mouth_open"))


def _plain_and_smiling(models: object, media: Path, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """StyleHEAT's crops (frames, 32, 32, 3) of a photo and random mels, unedited and with smile=3 ramping in: the
    first frames are the same (the edit starts at nothing)."""
    from talkinghead.io import read_image
    from talkinghead.motion.styleheat.infer import styleheat_crops

    crop = read_image(media / "faces" / "liveportrait_s7.jpg")[:256, :256]
    mels = np.random.default_rng(0).normal(size=(frames, 16, 80)).astype(np.float32)
    plain = styleheat_crops(models, crop, mels)  # type: ignore[arg-type]
    edited = styleheat_crops(models, crop, mels, edits={"smile": 3.0})  # type: ignore[arg-type]
    assert plain.shape == (frames, 32, 32, 3) and np.array_equal(plain[0], edited[0])
    return plain, edited


def test_edits_ramp_from_none_to_full(tiny_styleheat: tuple[Path, dict], tiny_stylegan: Path, media: Path) -> None:
    from talkinghead.motion.styleheat.infer import edited_codes, load_models

    models = load_models({"styleheat": tiny_styleheat[0], "generator": tiny_stylegan / "generator.pt",
                          "encoder": tiny_stylegan / "encoder.pt"})
    model = models.model
    w = torch.randn(GEN.n_latents, GEN.w_dim)
    codes = edited_codes(model, w, {"smile": 2.0, "pc1": -1.0}, 5)
    smile, pc1 = (model.edit_directions[i] * model.edit_stds[i] for i in (0, 3))
    assert torch.equal(codes[0], w)
    assert torch.allclose(codes[-1, :4], w[:4] + 2.0 * smile - pc1, atol=1e-5)  # pc edits move the first half
    assert torch.allclose(codes[-1, 4:], w[4:] + 2.0 * smile, atol=1e-5)
    assert torch.allclose(codes[2], (codes[0] + codes[-1]) / 2, atol=1e-5)
    plain, edited = _plain_and_smiling(models, media, 6)
    assert np.abs(plain[-1].astype(int) - edited[-1]).max() > 0


@pytest.mark.slow
def test_generate_styleheat(media: Path, tiny_styleheat: tuple[Path, dict], tiny_stylegan: Path,
                            tmp_path: Path) -> None:
    """A photo and speech (and a driving video, and an edit) -> a full-frame video of the right length, pasted into
    the face only; the method's errors."""
    from talkinghead.api import generate
    from talkinghead.errors import TalkingHeadError

    models = {"styleheat": tiny_styleheat[0], "generator": tiny_stylegan / "generator.pt",
              "encoder": tiny_stylegan / "encoder.pt"}
    face, speech = media / "faces" / "liveportrait_s7.jpg", media / "talking" / "videoretalking_face1.mp4"
    out = tmp_path / "sh.mp4"
    result = generate(image=face, audio=speech, output=out, method="styleheat", size=256, checkpoints=models,
                      motion_from=media / "motion" / "liveportrait_d3.mp4", edits={"smile": 1.0}, quiet=True)
    assert result.method == "styleheat"
    assert assert_pasted_into_face(out, face, 256) == result.frames == round(result.duration * 25)
    still = generate(image=face, audio=speech, output=tmp_path / "still.mp4", method="styleheat", size=256,
                     checkpoints=models, quiet=True)  # no driving video: the photo drives itself
    assert still.frames == result.frames
    with pytest.raises(TalkingHeadError, match="unknown edit 'age'"):
        generate(image=face, audio=speech, output=tmp_path / "x.mp4", method="styleheat", checkpoints=models,
                 edits={"age": 1.0})
    with pytest.raises(TalkingHeadError, match="between -3 and 3"):
        generate(image=face, audio=speech, output=tmp_path / "x.mp4", method="styleheat", checkpoints=models,
                 edits={"smile": 4.0})
    with pytest.raises(TalkingHeadError, match="--edit does not apply to --method viseme .*styleheat"):
        generate(image=face, audio=speech, output=tmp_path / "x.mp4", edits={"smile": 1.0})
    with pytest.raises(TalkingHeadError, match="--expression-scale needs a StyleHEAT model with mesh flows"):
        generate(image=face, audio=speech, output=tmp_path / "x.mp4", method="styleheat", expression_scale=1.5,
                 checkpoints=models)
    with pytest.raises(TalkingHeadError, match="--still does not apply to --method styleheat"):
        generate(image=face, audio=speech, output=tmp_path / "x.mp4", method="styleheat", still=True,
                 checkpoints=models)
    assert not (tmp_path / "x.mp4").exists()


def _gap_spreads(model: StyleHeat, dataset: Path) -> tuple[float, float]:
    """(the real, the predicted times the mouth gain) lip gap's standard deviation on a dataset's clip "a"."""
    from talkinghead.data.clip import clip_dir, load_clip
    from talkinghead.face.expression import mouth_features
    from talkinghead.face.model import default_face_model
    from talkinghead.train.datasets import clip_speech_inputs

    clip, face_model = load_clip(clip_dir(dataset, "a")), default_face_model()
    lower = face_model.lower_face[:model.config.n_expression]
    with torch.no_grad():
        inputs = torch.from_numpy(clip_speech_inputs(model.config.speech, clip)).float()
        predicted = (model.eval().expression(inputs) * model.mouth_gain).numpy()
    return tuple(float(mouth_features(face_model.expression_meshes(clip.neutral, np.where(lower, c, 0.0)))[:, 0].std())
                 for c in (clip.expression[:, :len(lower)], predicted))  # type: ignore[return-value]


def _edits_move_the_mesh(model: StyleHeat, dataset: Path) -> None:
    """A mesh-flow model's labelled edits move its attribute on the clip's neutral mesh the way they say (at +1 above
    -1), the unlabelled ones are orthogonal; an edit's flows ramp in from none at the first frame."""
    from talkinghead.audio.speech import input_shape
    from talkinghead.data.clip import clip_dir, load_clip
    from talkinghead.face.model import default_face_model
    from talkinghead.motion.styleheat.infer import edited_expressions
    from talkinghead.train.styleheat import LABELLED_EDITS, mesh_attributes

    face_model, neutral = default_face_model(), load_clip(clip_dir(dataset, "a")).neutral
    for name in LABELLED_EDITS:
        meshes = face_model.expression_meshes(neutral, np.concatenate([edited_expressions(model, {name: s}, 1)
                                                                       for s in (-1.0, 1.0)]))
        low, high = mesh_attributes(meshes)[name]
        assert high > low + 1e-3, name
    pcs = model.edit_expressions[len(LABELLED_EDITS):]
    gram = pcs @ pcs.T
    assert torch.allclose(gram - torch.diag(torch.diag(gram)), torch.zeros_like(gram), atol=1e-4 * gram.max())
    speech = np.zeros((3, *input_shape(model.config.speech)), np.float32)
    plain = _mesh_flows(model, _posed_canonical(), speech)
    smiling = _mesh_flows(model, _posed_canonical(), speech, edits={"smile": 2.0})
    assert torch.equal(plain[0], smiling[0]) and (plain[-1] - smiling[-1]).abs().max() > 0.01


@pytest.mark.train
@pytest.mark.slow
def test_train_and_generate_on_mesh_flows(one_clip_dataset: Path, tiny_stylegan: Path, media: Path,
                                          tmp_path: Path) -> None:
    """Mesh flows train the expression stage alone (and the edit directions), refuse the image stages and a
    SyncNet, and generate a video from a photo, with a driving video and an edit and without either."""
    from talkinghead.api import generate
    from talkinghead.errors import TalkingHeadError
    from talkinghead.nn.checkpoint import checkpoint_meta
    from talkinghead.train.styleheat import train_styleheat

    path = tmp_path / "mesh.pt"
    config = replace(STYLEHEAT_CONFIGS["tiny"], flows="mesh")
    metrics = train_styleheat([one_clip_dataset], path, stylegan=tiny_stylegan, syncnet=None, config=config,
                              warp_steps=0, calibrate_steps=0, expression_steps=2, batch=2, frames=4,
                              direction_frames=60, quiet=True)
    assert {"train_expression", "first_train_expression"} <= set(metrics["expression"])
    assert all(np.isfinite(v) for v in metrics["expression"].values())
    assert checkpoint_meta(path)["steps"] == {"expression": 2} and StyleHeat.load(path).config.flows == "mesh"
    model = StyleHeat.load(path)
    assert float(model.mouth_gain) == pytest.approx(metrics["mouth_gain"]["gain"], rel=1e-6)
    real, drawn = _gap_spreads(model, one_clip_dataset)  # one training clip: the gain matches their spreads
    assert drawn == pytest.approx(real, rel=1e-3)
    _edits_move_the_mesh(model, one_clip_dataset)
    for bad in ({"warp_steps": 2, "expression_steps": 2}, {"expression_steps": 0}):
        with pytest.raises(TalkingHeadError, match="--flows mesh trains the expression stage alone"):
            train_styleheat([one_clip_dataset], tmp_path / "x.pt", stylegan=tiny_stylegan, syncnet=None,
                            config=config, **{"warp_steps": 0, "calibrate_steps": 0, **bad})  # type: ignore[arg-type]
    with pytest.raises(TalkingHeadError, match="--flows mesh takes no --syncnet"):
        train_styleheat([one_clip_dataset], tmp_path / "x.pt", stylegan=tiny_stylegan,
                        syncnet=tiny_stylegan / "sync.pt", config=config, warp_steps=0, calibrate_steps=0,
                        expression_steps=2)
    models = {"styleheat": path, "generator": tiny_stylegan / "generator.pt", "encoder": tiny_stylegan / "encoder.pt"}
    face, speech = media / "faces" / "liveportrait_s7.jpg", media / "talking" / "videoretalking_face1.mp4"
    driven = generate(image=face, audio=speech, output=tmp_path / "driven.mp4", method="styleheat", size=256,
                      checkpoints=models, motion_from=media / "motion" / "liveportrait_d3.mp4", edits={"smile": 1.0},
                      quiet=True)
    assert assert_pasted_into_face(tmp_path / "driven.mp4", face, 256) == driven.frames
    still = generate(image=face, audio=speech, output=tmp_path / "still.mp4", method="styleheat", size=256,
                     checkpoints=models, quiet=True)
    assert still.frames == driven.frames == round(still.duration * 25)


@pytest.fixture(scope="module")
def feature_styleheat(one_clip_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """(a tiny feature-path train-stylegan folder, a tiny StyleHEAT trained on it for 2 + 2 steps, its metrics)."""
    from talkinghead.train.stylegan import train_stylegan
    from talkinghead.train.styleheat import train_styleheat

    root = tmp_path_factory.mktemp("feature_styleheat")
    train_stylegan([one_clip_dataset], root / "stylegan", configs=STYLEGAN_CONFIGS["feature-tiny"], identity_steps=2,
                   gan_steps=0, encoder_steps=2, batch=2, quiet=True)
    metrics = train_styleheat([one_clip_dataset], root / "sh.pt", stylegan=root / "stylegan", syncnet=None,
                              config=STYLEHEAT_CONFIGS["tiny"], warp_steps=2, calibrate_steps=2, batch=2, frames=6,
                              direction_frames=60, quiet=True)
    return root / "stylegan", root / "sh.pt", metrics


@pytest.mark.train
@pytest.mark.slow
def test_styleheat_on_the_feature_path(feature_styleheat: tuple[Path, Path, dict], media: Path) -> None:
    """On a feature-path generator StyleHEAT's flows warp the encoder's map at the generator's input resolution;
    the calibration stage has its PatchGAN and the domain loss against the target's own map; every edit moves the
    motion latents, and an edit changes the frames it ramps into (through the codes' flow)."""
    from talkinghead.motion.styleheat.infer import load_models

    stylegan, path, metrics = feature_styleheat
    assert {"train_domain", "train_adversarial", "train_disc"} <= set(metrics["calibrate"])
    assert all(np.isfinite(v) for stage in ("warp", "calibrate") for v in metrics[stage].values())
    generator = Generator.load(stylegan / "generator.pt")
    model = StyleHeat.load(path)
    m = generator.config.motion_latents
    assert model.config.warp_resolution == generator.config.input_resolution == 8
    assert model.edit_layers.tolist() == [[0, m]] * len(EDIT_NAMES)
    models = load_models({"styleheat": path, "generator": stylegan / "generator.pt",
                          "encoder": stylegan / "encoder.pt"})


    class Shift(torch.nn.Module):  # a codes' flow that follows the offsets, which a 2-step MotionFlow does not yet
        def forward(self, features: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
            return offsets.mean(1)[:, :2, None, None].expand(-1, -1, *features.shape[-2:]) * 4

    models.generator.motion = Shift()
    models.model.edit_stds.fill_(1.0)
    plain, edited = _plain_and_smiling(models, media, 4)
    assert np.abs(plain[-1].astype(int) - edited[-1]).mean() > 0.5


def test_cli_edit_option() -> None:
    import argparse

    from talkinghead.cli import _edit

    assert _edit("smile=+1.5") == ("smile", 1.5) and _edit("pc0=-2") == ("pc0", -2.0)
    for bad in ("smile", "=1", "smile=much"):
        with pytest.raises(argparse.ArgumentTypeError, match="NAME=STRENGTH"):
            _edit(bad)
