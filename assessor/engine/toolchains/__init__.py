"""Toolchains: one per language, each a module with the same few functions (detect, plan, measure_complexity,
install, run_tests); the registry picks the one that recognises a checkout."""

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from assessor.engine.manifest import Manifest
from assessor.engine.toolchains import node, python
from assessor.engine.toolchains.base import Detection
from assessor.engine.toolchains.languages import describe_language

TOOLCHAINS: dict[str, ModuleType] = {python.NAME: python, node.NAME: node}


@dataclass(frozen=True)
class Unrecognised:
    """No toolchain can assess this checkout; `reason` says what was found instead, for the report."""

    reason: str
    notes: tuple[str, ...] = ()


def supported_languages() -> str:
    labels = [module.LABEL for module in TOOLCHAINS.values()]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def detect(checkout: Path, *, manifest: Manifest, root_hint: str | None = None) -> tuple[ModuleType, Detection] | Unrecognised:
    """The toolchain that assesses `checkout`, and what it found; or why none can.

    The manifest may name the toolchain and the project folder. Otherwise every toolchain looks, and the one
    whose project has tests wins, then the one at the top of the repository, then the registry's order.
    """
    root_hint = manifest.root or root_hint
    names = list(TOOLCHAINS)
    notes: list[str] = []
    if manifest.toolchain:
        if manifest.toolchain in TOOLCHAINS:
            names = [manifest.toolchain]
        else:
            notes.append(f"{manifest.source}: toolchain {manifest.toolchain!r} is not one this installation has "
                         f"({', '.join(TOOLCHAINS)}); detected instead")
    found = [(TOOLCHAINS[name], detection) for name in names
             if (detection := TOOLCHAINS[name].detect(checkout, root_hint=root_hint)) is not None]
    usable = [(module, detection) for module, detection in found if detection.root is not None]
    if not usable:
        undecided = [note for _, detection in found for note in detection.notes]
        if undecided:
            return Unrecognised(reason=undecided[0], notes=tuple(notes))
        language = describe_language(checkout)
        what = language or "no project this installation recognises"
        return Unrecognised(reason=f"{what}: this installation assesses {supported_languages()} capstones",
                            notes=tuple(notes))
    ranked = sorted(usable, key=lambda item: (not item[1].has_tests, item[1].root != ".", names.index(item[0].NAME)))
    module, detection = ranked[0]
    others = [f"{other.LABEL} ({found_detection.root})" for other, found_detection in ranked[1:]]
    if others:
        notes.append(f"also found {', '.join(others)}; assessed the {module.LABEL} project"
                     f"{'' if detection.root == '.' else f' in {detection.root}/'} (set toolchain = \"...\" in "
                     f"capstone.toml to choose)")
    return module, Detection(detection.toolchain, detection.root, detection.detected_from, detection.has_tests,
                             detection.notes + tuple(notes))
