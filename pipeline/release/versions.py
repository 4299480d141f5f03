"""What a release is made of, named once: the files every release carries and its semantic
version (a ``v``-prefixed tag on the Hub). Used by the release logic (release.py) and the
Hub client (hub.py) alike, so neither imports the other for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CARD_PATH = "README.md"  # the dataset card, where the Hub reads it
# The record manifest: a Parquet part a split and drop, MANIFEST_DIR/{split}-{drop}.parquet,
# so a release after a new drop sends the drop's parts, not the whole manifest again.
MANIFEST_DIR = "manifest/records"
# Releases built before the parts (2026-12-02) carry their manifest as this one file.
SINGLE_FILE_MANIFEST_PATH = "manifest/records.parquet"
RELEASE_PATH = "manifest/release.json"
_SEMVER = re.compile(r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")


def is_manifest_file(path: str) -> bool:
    """Whether a release's file holds rows of its record manifest (a part, or the one file)."""
    return path.startswith(f"{MANIFEST_DIR}/") or path == SINGLE_FILE_MANIFEST_PATH


class VersionError(ValueError):
    """A declared version that the data does not allow."""


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> "Version":
        """'1.2.3' or 'v1.2.3'."""
        match = _SEMVER.fullmatch(str(text).strip())
        if not match:
            raise VersionError(f"'{text}' is not a version MAJOR.MINOR.PATCH (e.g. 1.0.0)")
        return cls(*(int(part) for part in match.groups()))

    @classmethod
    def from_tag(cls, tag: str) -> "Version | None":
        """The version a release tag ('v1.2.3') names; None for other tags."""
        return cls.parse(tag) if tag.startswith("v") and _SEMVER.fullmatch(tag) else None

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def tag(self) -> str:
        return f"v{self}"

    def bump(self, kind: str) -> "Version":
        if kind == "major":
            return Version(self.major + 1, 0, 0)
        if kind == "minor":
            return Version(self.major, self.minor + 1, 0)
        return Version(self.major, self.minor, self.patch + 1)

    def bump_from(self, previous: "Version") -> str | None:
        """The kind of step from `previous` to this version (None if not greater)."""
        if self <= previous:
            return None
        if self.major != previous.major:
            return "major"
        return "minor" if self.minor != previous.minor else "patch"
