"""The method registry: every method that ships weights runs end to end, and a method added as one package and
one line appears in the CLI, on the web page and in the evaluation protocol with no other file edited."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from talkinghead import cli, registry
from talkinghead.api import generate
from talkinghead.errors import TalkingHeadError
from talkinghead.io import read_video
from talkinghead.spec import MethodSpec, Performance, RendererSpec, Request

TOY = '''
import numpy as np

from talkinghead.spec import MethodSpec, Performance


def still(request, scene):
    """Every output frame shows the reference face as it is (a toy method)."""
    return Performance(targets=np.repeat(scene.meshes[:1], scene.n_frames, 0))


SPEC = MethodSpec(name="toy", title="Toy (a still face)", summary="a still face", motion=still)
'''


def shipped(spec: MethodSpec) -> bool:
    """Whether a method runs with the package alone (its checkpoints and its default renderer's all ship)."""
    draw = registry.get_renderer(registry.default_renderer(spec))
    return all(role.shipped for role in (*spec.checkpoints, *draw.checkpoints))


SHIPPED = [name for name in registry.available_methods() if shipped(registry.get_method(name))]


@pytest.mark.slow
@pytest.mark.media
@pytest.mark.parametrize("method", SHIPPED)
def test_every_shipped_method_runs_end_to_end(method: str, media: Path, tmp_path: Path) -> None:
    """Walks the registry: a new method with shipped weights is tested by registering it."""
    out = tmp_path / f"{method}.mp4"
    result = generate(image=media / "faces" / "liveportrait_s7.jpg", audio=media / "speech" / "videoretalking_1.wav",
                      output=out, method=method, size=192, quiet=True)
    video = read_video(out)
    assert result.method == method and len(video.frames) == result.frames == 126  # 5.02 s at 25 fps
    assert max(video.frames.shape[1:3]) == 192 and video.frames.std() > 10


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A toy method package on the path and its one line in the registry's list."""
    (tmp_path / "toy_method.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "BUILTIN", (*registry.BUILTIN, "toy_method"))
    monkeypatch.setattr(registry, "_methods", {})
    monkeypatch.setattr(registry, "_renderers", {})
    yield "toy"
    sys.modules.pop("toy_method", None)


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        cli.main(argv)
    return capsys.readouterr().out


def test_a_registered_method_appears_everywhere(toy: str, capsys: pytest.CaptureFixture[str]) -> None:
    from fastapi.testclient import TestClient

    from talkinghead.web.app import create_app

    assert toy in registry.available_methods()
    assert "toy: a still face" in " ".join(_help(["generate", "--help"], capsys).split())
    assert toy in _help(["evaluate", "--help"], capsys)
    assert "toy: a still face" not in " ".join(_help(["dub", "--help"], capsys).split())  # it takes no video
    listed = TestClient(create_app()).get("/api/methods").json()
    toy_entry = next(m for m in listed if m["name"] == "toy")
    assert toy_entry == {"name": "toy", "title": "Toy (a still face)", "summary": "a still face",
                         "photo": True, "video": False, "needs": [], "options": ["mouth"]}  # the warp renderer's


@pytest.mark.slow
@pytest.mark.media
def test_a_registered_method_generates(toy: str, media: Path, tmp_path: Path) -> None:
    out = tmp_path / "toy.mp4"
    generate(image=media / "faces" / "liveportrait_s7.jpg", audio=media / "speech" / "videoretalking_1.wav",
             output=out, method=toy, size=128, quiet=True)
    frames = read_video(out).frames.astype(np.float32)
    assert len(frames) == 126 and np.abs(frames[1:] - frames[:1]).max() < 40  # the face stays still
    with pytest.raises(TalkingHeadError, match=r"--style does not apply to --method toy .*styletalk, vast"):
        generate(image=media / "faces" / "liveportrait_s7.jpg", audio=media / "speech" / "videoretalking_1.wav",
                 output=tmp_path / "styled.mp4", method=toy, style=media / "talking" / "videoretalking_face5.mp4")
    assert not (tmp_path / "styled.mp4").exists()


def test_unknown_method_renderer_and_role_name_the_choices(media: Path, tmp_path: Path) -> None:
    face, speech, out = media / "faces" / "liveportrait_s7.jpg", media / "speech" / "videoretalking_1.wav", \
        tmp_path / "x.mp4"
    with pytest.raises(TalkingHeadError, match="method 'nope' is not available .*viseme"):
        generate(image=face, audio=speech, output=out, method="nope")
    with pytest.raises(TalkingHeadError, match="renderer 'generator' is not available for viseme"):
        generate(image=face, audio=speech, output=out, renderer="generator")
    from talkinghead.motion.iplap.model import LandmarkGenerator

    with pytest.raises(TalkingHeadError, match="checkpoint role.* landmarks not used by --method viseme"):
        generate(image=face, audio=speech, output=out, checkpoints={"landmarks": LandmarkGenerator.default_checkpoint})
    with pytest.raises(TalkingHeadError, match="liveportrait_s7.jpg: not a model checkpoint"):
        generate(image=face, audio=speech, output=out, method="iplap", checkpoints={"landmarks": face})
    missing = [n for n in registry.available_methods() if not shipped(registry.get_method(n))]
    for name in missing:  # methods whose weights do not ship say which roles to train and pass
        with pytest.raises(TalkingHeadError, match=f"{name} needs trained models .*--checkpoint ROLE=PATH"):
            generate(image=face, audio=speech, output=out, method=name)
    assert not out.exists()


def test_every_command_a_family_brings_loads() -> None:
    """Each family subcommand's module imports and declares arguments (only the one run is imported by the CLI)."""
    for ref in registry.commands():
        command = registry.load_command(ref)
        parser = cli.argparse.ArgumentParser(prog=ref.name)
        command.arguments(parser)
        assert command.description and parser.format_help()


def test_register_adds_a_method_from_your_own_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_methods", {})
    monkeypatch.setattr(registry, "_renderers", {})
    spec = MethodSpec(name="mine", title="Mine", summary="mine", motion=lambda request, scene: None)  # type: ignore
    assert registry.register(spec) is spec
    assert registry.available_methods()[-1] == "mine" and registry.get_method("mine") is spec
    assert registry.available_methods()[0] == "viseme"  # the built-in ones were loaded first


@pytest.mark.media
def test_a_renderers_prepare_runs_once_before_it_draws(media: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """generate() runs the renderer's ``prepare`` with the request while the speech is analysed, before the first
    frame is drawn; an error in it is the command's error, and no output is left."""
    monkeypatch.setattr(registry, "_methods", {})
    monkeypatch.setattr(registry, "_renderers", {})
    events: list[object] = []

    def frames(request, scene, performance):  # type: ignore[no-untyped-def]
        events.append("draw")
        yield from (scene.clip.frames[0] for _ in range(scene.n_frames))

    def prepare(request):  # type: ignore[no-untyped-def]
        if request.seed == 1:
            raise TalkingHeadError("the toy renderer's weights are broken")
        events.append(request)

    registry.register(RendererSpec(name="still", summary="the photo as it is", create=lambda: SimpleNamespace(
        frames=frames), prepare=prepare))
    registry.register(MethodSpec(name="mine", title="Mine", summary="mine", motion=lambda request, scene: Performance(),
                                 renderers=("still",)))
    face, speech = media / "faces" / "liveportrait_s7.jpg", media / "speech" / "videoretalking_1.wav"
    generate(image=face, audio=speech, output=tmp_path / "a.mp4", method="mine", size=128, quiet=True)
    assert len(events) == 2 and events[1] == "draw"
    assert isinstance(events[0], Request) and events[0].audio == speech
    with pytest.raises(TalkingHeadError, match="weights are broken"):
        generate(image=face, audio=speech, output=tmp_path / "b.mp4", method="mine", seed=1, quiet=True)
    assert not (tmp_path / "b.mp4").exists() and len(events) == 2


def test_a_role_whose_weights_do_not_ship_must_be_given() -> None:
    """Every built-in method's weights ship; a method whose do not (a family trained elsewhere) lists the role as
    missing until it is given."""
    from talkinghead.spec import CheckpointRole

    assert SHIPPED == list(registry.available_methods())
    spec = MethodSpec(name="toy", title="Toy", summary="a still face", motion=lambda request, scene: None,
                      checkpoints=(CheckpointRole("toy", "its model", shipped=False),))
    assert registry.missing_checkpoints(spec, set()) == ["toy"] and registry.missing_checkpoints(spec, {"toy"}) == []
