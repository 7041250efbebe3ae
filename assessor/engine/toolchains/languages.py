"""Name the language of a checkout that no toolchain assesses, so the report can say what it found."""

import os
from pathlib import Path

# (file name or suffix, what it says about the project), most telling first.
LANGUAGE_MARKERS: tuple[tuple[str, str], ...] = (
    ("go.mod", "a Go module"),
    ("Cargo.toml", "a Rust crate"),
    ("pom.xml", "a Java project (Maven)"),
    ("build.gradle", "a Java/Kotlin project (Gradle)"),
    ("build.gradle.kts", "a Kotlin project (Gradle)"),
    ("Gemfile", "a Ruby project"),
    ("composer.json", "a PHP project"),
    ("mix.exs", "an Elixir project"),
    (".csproj", "a .NET project"),
    (".sln", "a .NET solution"),
    ("deno.json", "a Deno project"),
    ("package.json", "a Node.js project"),
    ("Package.swift", "a Swift package"),
    ("build.sbt", "a Scala project"),
    ("CMakeLists.txt", "a C/C++ project (CMake)"),
)


def describe_language(checkout: Path) -> str | None:
    """'a Go module (go.mod)' for the first marker found at the top or one folder down, else None."""
    folders = [checkout] + sorted(Path(entry.path) for entry in os.scandir(checkout)
                                  if entry.is_dir(follow_symlinks=False) and not entry.name.startswith(".")
                                  and entry.name not in ("node_modules", "vendor", "docs"))
    for marker, description in LANGUAGE_MARKERS:
        for folder in folders:
            for entry in _names(folder):
                if entry == marker or (marker.startswith(".") and entry.endswith(marker)):
                    where = entry if folder == checkout else f"{folder.name}/{entry}"
                    return f"{description} ({where})"
    return None


def _names(folder: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in os.scandir(folder) if entry.is_file(follow_symlinks=False))
    except OSError:
        return []
