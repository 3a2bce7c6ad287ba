"""The package's floors: a module imports only from its own floor or the floors below (README, "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

import talkinghead

FLOORS = (
    ("constants", "errors", "progress", "threads"),
    ("io",),
    ("audio",),
    ("face",),
    ("spec",),
    ("nn",),
    ("data",),
    ("sync",),
    ("metrics",),
    ("render",),
    ("motion",),
    ("train",),
    ("registry",),
    ("api", "streaming"),
    ("evaluation", "web"),
    ("cli",),
    ("__main__",),
)
"""Lowest first. Names on one floor do not import each other (they are independent)."""
FLOOR = {name: level for level, names in enumerate(FLOORS) for name in names}


def _imports(path: Path) -> set[str]:
    """The talkinghead top-level names a module imports (at the top or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("talkinghead."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.ImportFrom) and node.module == "talkinghead":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("talkinghead."))
    return found


def test_no_import_runs_up_the_floors() -> None:
    root = Path(talkinghead.__file__).parent
    upward = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        own = rel.parts[0].removesuffix(".py")
        if own == "__init__":
            continue
        assert own in FLOOR, f"{rel}: its folder or module is on no floor of FLOORS"
        for name in _imports(path) - {own, "__version__"}:
            assert name in FLOOR, f"{rel} imports talkinghead.{name}, which is on no floor"
            if FLOOR[name] >= FLOOR[own]:
                upward.append(f"{rel} -> {name}")
    assert not upward, "imports that run up (or across) the floors: " + ", ".join(upward)


def test_the_floor_check_sees_function_level_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from talkinghead.api import generate\n    import talkinghead.cli\n")
    assert _imports(module) == {"api", "cli"}


def test_the_shared_layers_name_no_method() -> None:
    """api.py, cli.py and web/ read the registry: no method or renderer is named in them."""
    from talkinghead import registry

    root = Path(talkinghead.__file__).parent
    # "warp" and "generator" are also ordinary words there (a warp, a Python generator)
    names = {*registry.available_methods(), *registry.available_renderers()} - {"warp", "generator"}
    for path in (root / "api.py", root / "cli.py", *(root / "web").iterdir()):
        if path.suffix not in (".py", ".html"):
            continue
        text = path.read_text().lower()
        named = sorted(n for n in names if any(f"{n}{end}" in text for end in ('"', "'", " ", ":", ",", ")")))
        assert not named, f"{path.name} names {', '.join(named)}"


def test_every_shipped_checkpoint_has_a_card_with_its_data_terms() -> None:
    """Each .pt inside the package has a JSON card in its own folder whose licence section names it, lists the media
    it was trained on with their licences, and states the terms that follow."""
    import json

    root = Path(talkinghead.__file__).parent
    for weights in sorted(root.rglob("*.pt")):
        rel = str(weights.relative_to(root))
        cards = [json.loads(c.read_text()) for c in weights.parent.glob("*.json")]
        licences = [c["licence"] for c in cards if rel in c.get("licence", {}).get("checkpoints", [])]
        assert licences, f"{rel}: no card beside it names it in a licence section"
        assert all(m["licence"] and m["from"] for m in licences[0]["training_media"]) and licences[0]["terms"]
