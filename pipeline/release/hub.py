"""The dataset repository on the Hugging Face Hub, through ``huggingface_hub`` only.

The endpoint comes from ``HF_ENDPOINT`` and the token from ``HF_TOKEN`` or the login
cache (``hf auth login``), both read by ``huggingface_hub`` itself. This module never
prints, logs or stores the token.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants, get_token, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils import sha

from pipeline.release.versions import CARD_PATH, MANIFEST_DIR, RELEASE_PATH, Version, is_manifest_file

REPO_TYPE = "dataset"
MAIN = "main"


def token_available() -> bool:
    return get_token() is not None


def unreachable_errors() -> tuple[type[BaseException], ...]:
    """Errors meaning the Hub could not be asked (offline, network down, HTTP error)."""
    import httpx2  # the transport huggingface_hub uses; its errors are not wrapped

    return HfHubHTTPError, OfflineModeIsEnabled, httpx2.TransportError


class HubUnusable(ValueError):
    """The Hub cannot be used as set up (token refused, not a Hub, no such release): exit 2."""


@contextmanager
def hub_errors() -> Iterator[None]:
    """A refused token, or an endpoint that answers but not as a Hub does (a web page, a
    proxy's login page), as `HubUnusable`; other errors as they are. Decorates every
    method of `HubRepo` that asks the Hub."""
    endpoint = constants.ENDPOINT
    try:
        yield
    except HfHubHTTPError as error:
        if error.response is not None and error.response.status_code == 401:
            raise HubUnusable(f"the Hub at {endpoint} refused the token (401 Unauthorized): set a valid token in "
                              "HF_TOKEN or run `hf auth login`") from None
        raise
    except json.JSONDecodeError:
        raise HubUnusable(f"{endpoint} did not answer as a Hugging Face Hub does (its reply is not JSON): "
                          "check HF_ENDPOINT") from None


@dataclass(frozen=True)
class RepoState:
    exists: bool
    head: str | None  # commit of main
    releases: dict[Version, str]  # release tag's version -> commit

    @property
    def latest(self) -> Version | None:
        return max(self.releases) if self.releases else None


class HubRepo:
    """One dataset repository on the Hub."""

    def __init__(self, repo_id: str) -> None:
        self.repo_id = repo_id
        self.api = HfApi()

    @property
    def url(self) -> str:
        return f"{self.api.endpoint}/datasets/{self.repo_id}"

    @hub_errors()
    def state(self) -> RepoState:
        try:
            refs = self.api.list_repo_refs(self.repo_id, repo_type=REPO_TYPE)
        except RepositoryNotFoundError:
            return RepoState(False, None, {})
        head = next((b.target_commit for b in refs.branches if b.name == MAIN), None)
        releases = {v: t.target_commit for t in refs.tags if (v := Version.from_tag(t.name)) is not None}
        return RepoState(True, head, releases)

    @hub_errors()
    def files(self, revision: str) -> dict[str, RepoFile]:
        tree = self.api.list_repo_tree(self.repo_id, revision=revision, recursive=True, repo_type=REPO_TYPE)
        return {entry.path: entry for entry in tree if isinstance(entry, RepoFile)}

    @hub_errors()
    def download(self, path: str, revision: str) -> Path | None:
        """A file of the repo at `revision` (from the local cache when already fetched)."""
        try:
            return Path(hf_hub_download(self.repo_id, path, revision=revision, repo_type=REPO_TYPE))
        except EntryNotFoundError:
            return None

    def manifest_files(self, version: Version, files: list[str] | None = None) -> list[Path]:
        """The files of a release's record manifest (``is_manifest_file``), all of them or
        those given, downloaded (from the local cache when fetched already)."""
        if files is None:
            try:
                files = sorted(path for path in self.files(version.tag) if is_manifest_file(path))
            except RevisionNotFoundError:
                releases = ", ".join(v.tag for v in sorted(self.state().releases)) or "none yet"
                raise HubUnusable(f"{self.repo_id} has no release {version.tag}; its releases: {releases}") from None
            if not files:
                raise FileNotFoundError(
                    f"release {version.tag} of {self.repo_id} has no {MANIFEST_DIR}/: it was not made by "
                    "`corpus publish`, so what changed since cannot be computed"
                )
        return [self.download(path, version.tag) for path in files]

    def release_record(self, version: Version) -> dict[str, Any]:
        path = self.download(RELEASE_PATH, version.tag)
        return json.loads(path.read_text(encoding="utf-8")) if path else {}

    def card(self) -> str | None:
        path = self.download(CARD_PATH, MAIN)
        return path.read_text(encoding="utf-8") if path else None

    @hub_errors()
    def create(self, private: bool) -> None:
        self.api.create_repo(self.repo_id, repo_type=REPO_TYPE, private=private, exist_ok=True)

    @hub_errors()
    def commit(self, folder: Path, uploads: list[str], deletions: list[str], message: str, description: str,
               parent: str | None) -> str:
        """One commit on main: `uploads` (paths under `folder`) added, `deletions` removed.
        With `parent`, the Hub refuses the commit if main has moved since it was read."""
        operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=folder / p) for p in uploads]
        operations += [CommitOperationDelete(path_in_repo=p) for p in deletions]
        info = self.api.create_commit(
            self.repo_id, operations, commit_message=message, commit_description=description,
            repo_type=REPO_TYPE, revision=MAIN, parent_commit=parent,
        )
        return info.oid

    @hub_errors()
    def tag(self, version: Version, commit: str, message: str) -> None:
        self.api.create_tag(self.repo_id, tag=version.tag, revision=commit, tag_message=message, repo_type=REPO_TYPE)


def same_content(local: Path, remote: RepoFile, sha256: str | None = None) -> bool:
    """Whether a local file has the content of a file on the Hub (by hash, no download).
    `sha256`: the local file's, when it was hashed as it was written (then it is not read
    again for an LFS file)."""
    if remote.size != local.stat().st_size:
        return False
    if remote.lfs is not None:
        if sha256 is None:
            with local.open("rb") as handle:
                sha256 = sha.sha_fileobj(handle).hex()
        return sha256 == remote.lfs.sha256
    return sha.git_hash(local.read_bytes()) == remote.blob_id
