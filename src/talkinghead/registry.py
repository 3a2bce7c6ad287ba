"""The method and renderer registry: every family's :class:`~talkinghead.spec.MethodSpec` and every renderer's
:class:`~talkinghead.spec.RendererSpec`, collected in one place (in the style of whisper's ``available_models()``
and timm's ``create_model()``).

Adding a method is one package with a ``method.py`` that declares ``SPEC``, and one line in :data:`BUILTIN`
(or one :func:`register` call from your own code). Everything else (the CLI's ``--method`` choices and help, the
checks of :func:`talkinghead.api.generate`, the web page's list and options, ``evaluate --reconstruct`` and the
streaming API) reads the specs.
"""

from __future__ import annotations

import importlib

from talkinghead.errors import TalkingHeadError
from talkinghead.spec import Command, CommandRef, MethodSpec, RendererSpec, Request

BUILTIN = (
    "talkinghead.motion.viseme.method",
    "talkinghead.motion.iplap.method",
    "talkinghead.motion.styletalk.method",
    "talkinghead.motion.vast.method",
    "talkinghead.motion.styletalker.method",
    "talkinghead.motion.styleheat.method",
)
"""The families shipped with the package, in the order they are listed (the first is the default)."""
RENDERERS = (
    "talkinghead.render.warp.spec",
    "talkinghead.render.iplap.spec",
    "talkinghead.render.vast.spec",
    "talkinghead.render.stylegan.spec",
)
"""The renderers shipped with the package."""

_methods: dict[str, MethodSpec] = {}
_renderers: dict[str, RendererSpec] = {}


def register(spec: MethodSpec | RendererSpec) -> MethodSpec | RendererSpec:
    """Add a method or renderer (a later one of the same name replaces the earlier); returns it."""
    _load()
    (_methods if isinstance(spec, MethodSpec) else _renderers)[spec.name] = spec  # type: ignore[index]
    return spec


def _load() -> None:
    if _methods:
        return
    for module in BUILTIN:
        spec = importlib.import_module(module).SPEC
        _methods[spec.name] = spec
    for module in RENDERERS:
        spec = importlib.import_module(module).SPEC
        _renderers[spec.name] = spec


def available_methods() -> tuple[str, ...]:
    """Names of the registered methods (``--method`` choices)."""
    _load()
    return tuple(_methods)


def available_renderers() -> tuple[str, ...]:
    """Names of the registered renderers (``--renderer`` choices)."""
    _load()
    return tuple(_renderers)


def get_method(name: str) -> MethodSpec:
    """The spec of a method; an unknown name is a one-line error listing the available ones."""
    _load()
    if name not in _methods:
        raise TalkingHeadError(f"method {name!r} is not available (available: {', '.join(_methods)})")
    return _methods[name]


def get_renderer(name: str) -> RendererSpec:
    """The spec of a renderer; an unknown name is a one-line error listing the available ones."""
    _load()
    if name not in _renderers:
        raise TalkingHeadError(f"renderer {name!r} is not available (available: {', '.join(_renderers)})")
    return _renderers[name]


def methods_taking(option: str) -> tuple[str, ...]:
    """The methods that take an option of :data:`talkinghead.spec.OPTIONS` (themselves or through a renderer)."""
    _load()
    return tuple(m.name for m in _methods.values()
                 if option in m.options or any(option in _renderers[r].options for r in m.renderers))


def checkpoint_roles() -> dict[str, str]:
    """Every checkpoint role of the registered methods and renderers -> its help."""
    _load()
    specs: list[MethodSpec | RendererSpec] = [*_methods.values(), *_renderers.values()]
    return {role.name: role.help for spec in specs for role in spec.checkpoints}


def commands() -> list[CommandRef]:
    """The subcommands the registered methods and renderers bring (training, fitting), each once."""
    _load()
    found: dict[str, CommandRef] = {}
    for spec in [*_methods.values(), *_renderers.values()]:
        for ref in spec.commands:
            found.setdefault(ref.name, ref)
    return list(found.values())


def load_command(ref: CommandRef) -> Command:
    """The command behind a reference (imports its module)."""
    module, _, attribute = ref.target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def default_renderer(spec: MethodSpec, given: set[str] | frozenset[str] = frozenset()) -> str:
    """The first of the method's renderers whose checkpoints without shipped weights are all ``given``."""
    usable = [r for r in spec.renderers if not _missing(get_renderer(r), set(given))]
    return usable[0] if usable else spec.renderers[0]


def missing_checkpoints(spec: MethodSpec, given: set[str]) -> list[str]:
    """The roles without shipped weights that the method and the renderer it would draw with need and that are not
    ``given``: the method cannot run until they are."""
    return _missing(spec, given) + _missing(get_renderer(default_renderer(spec, given)), given)


def resolve(request: Request, method: str, renderer: str | None) -> tuple[MethodSpec, RendererSpec]:
    """Check a request against the method and renderer before any work: one-line errors for a face the method does
    not take, a renderer it cannot draw with, an option or checkpoint role neither uses, a checkpoint without
    shipped weights that is missing, and the method's own checks. ``renderer`` None picks the method's default."""
    spec = get_method(method)
    if request.image is not None and not spec.photo:
        raise TalkingHeadError(f"{method} dubs a video (--video); animate a photo with "
                               f"{', '.join(m.name for m in _methods.values() if m.photo)}")
    if request.video is not None and not spec.video:
        raise TalkingHeadError(f"{method} animates a photo (--image); dub a video with "
                               f"{', '.join(m.name for m in _methods.values() if m.video)}")
    given = set(request.checkpoints)
    renderer = renderer or default_renderer(spec, given)
    if renderer not in spec.renderers:
        get_renderer(renderer)  # an unknown name lists the renderers
        raise TalkingHeadError(f"renderer {renderer!r} is not available for {method} "
                               f"(its renderers: {', '.join(spec.renderers)})")
    draw = get_renderer(renderer)
    if draw.needs_video and request.video is None:
        raise TalkingHeadError(f"the {renderer} renderer draws only the video it was trained on: pass that video "
                               f"(--video) and its checkpoint (--checkpoint {draw.checkpoints[0].name}=PATH)")
    if refused := sorted(request.given() - spec.options - draw.options):
        option = refused[0]
        flag = "--edit" if option == "edits" else "--" + option.replace("_", "-")
        renderers = [r.name for r in _renderers.values() if option in r.options]
        takers = f"renderers that take it: {', '.join(renderers)}" if renderers else \
            f"it applies to: {', '.join(methods_taking(option))}"
        raise TalkingHeadError(f"{flag} does not apply to --method {method} with the {renderer} renderer ({takers})")
    roles = {r.name: r for r in (*spec.checkpoints, *draw.checkpoints)}
    if unknown := given - set(roles):
        raise TalkingHeadError(f"checkpoint role(s) {', '.join(sorted(unknown))} not used by --method {method} with "
                               f"the {renderer} renderer (its roles: {', '.join(roles) or 'none'})")
    if missing := _missing(spec, given) + _missing(draw, given):
        train = ", ".join(f"talkinghead {c.name}" for c in (*draw.commands, *spec.commands))
        raise TalkingHeadError(f"{method} needs trained models (missing: {', '.join(missing)}); these do not ship "
                               f"with the package: train them ({train}), then pass --checkpoint ROLE=PATH for each")
    if spec.check is not None:
        spec.check(request)
    return spec, draw


def _missing(spec: MethodSpec | RendererSpec, given: set[str]) -> list[str]:
    """The spec's checkpoint roles whose weights do not ship and that are not ``given``."""
    return [r.name for r in spec.checkpoints if not r.shipped and r.name not in given]
