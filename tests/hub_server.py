"""A small stand-in for the Hugging Face Hub, for the publish tests (stdlib only).

It speaks the parts of the Hub's HTTP API that ``huggingface_hub`` uses to publish a
dataset and that ``datasets`` uses to load one back, keeping repositories in memory as
chains of commits (each commit holds the full file tree; refs are branches and tags):

=======  ==============================================================  ==================
method   path                                                            used by
=======  ==============================================================  ==================
POST     /api/repos/create                                               create_repo
POST     /api/validate-yaml                                              create_commit (README)
POST     /api/datasets/{id}/preupload/{rev}                              create_commit
POST     /datasets/{id}.git/info/lfs/objects/batch                       LFS upload
PUT      /lfs/objects/{sha256}                                           LFS upload
POST     /lfs/verify                                                     LFS upload
POST     /api/datasets/{id}/commit/{rev}                                 create_commit
POST     /api/datasets/{id}/tag/{rev}                                    create_tag
GET      /api/datasets/{id}/refs                                         list_repo_refs
GET      /api/datasets/{id}[/revision/{rev}]                             repo_info, datasets
GET      /api/datasets/{id}/tree/{rev}[/{path}]                          list_repo_tree, HfFileSystem
POST     /api/datasets/{id}/paths-info/{rev}                             get_paths_info, HfFileSystem
HEAD/GET /datasets/{id}/resolve/{rev}/{path}                             hf_hub_download, HfFileSystem
=======  ==============================================================  ==================

Behaviour that the clients rely on and the tests exercise:

* Parquet files (and anything over 10 MB or with NUL bytes) are LFS files: the client
  uploads them through the LFS batch API (tests set ``HF_HUB_DISABLE_XET=1``), the
  commit names them by SHA-256. Other files travel inline, base64, in the NDJSON commit.
* Preupload returns each file's current ``oid`` (git blob SHA-1, or SHA-256 for LFS), so
  ``create_commit`` drops unchanged files, and a commit with nothing left is not made.
* A commit with a ``parentCommit`` that is no longer the branch head is refused (412).
* Errors carry ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound), which
  ``huggingface_hub`` turns into its typed exceptions.
* Writes need ``Authorization: Bearer <token>`` with the server's token.
* ``/api/validate-yaml`` rejects (400, one error per value) a card whose ``license``,
  ``task_categories``, ``size_categories`` or ``language`` holds a value the Hub does not
  allow (``metadata_errors``; the lists and where they come from: hub_rules.json).
* ``fail_next(kind, status)`` makes the next request of a kind ("commit", "tag",
  "lfs-upload", "preupload") fail, to test interrupted releases.
* ``hold("refs")`` keeps requests for a repo's refs waiting until the event it returns is
  set (a slow Hub, to test runs that overlap); ``web_page = True`` answers every request
  with a 200 HTML page, as an endpoint that is not a Hub (a portal, a proxy's login) does.

Start it with ``with LocalHub(token) as hub:`` and point ``HF_ENDPOINT`` at ``hub.url``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote

import yaml

GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.arrow filter=lfs diff=lfs merge=lfs -text\n"


def _hub_rules() -> dict[str, set[str]]:
    """The values the Hub allows per metadata key (see hub_rules.json's "sources")."""
    # The lists `datasets` ships (found, not imported: importing it takes seconds and
    # fixes HF_ENDPOINT for the process).
    packaged = Path(importlib.util.find_spec("datasets").origin).parent / "utils" / "resources"
    rules = json.loads((Path(__file__).with_name("hub_rules.json")).read_text())
    return {
        "license": set(rules["license"]),
        "task_categories": set(rules["task_categories"]),
        "size_categories": set(json.loads((packaged / "size_categories.json").read_text())),
        "language": set(json.loads((packaged / "languages.json").read_text())),
    }


HUB_RULES = _hub_rules()


def metadata_errors(metadata: dict) -> list[str]:
    """What the Hub would refuse in a dataset card's metadata: each value of license,
    task_categories, size_categories and language (a string or a list of them) must be one
    the Hub allows."""
    errors = []
    for key, allowed in HUB_RULES.items():
        value = metadata.get(key)
        values = value if isinstance(value, list) else [] if value is None else [value]
        for item in values:
            if not isinstance(item, str) or item not in allowed:
                errors.append(f'"{key}" must be one of the values the Hub allows; {item!r} is not')
    return errors


def git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass(frozen=True)
class Blob:
    content: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.content)}\n".encode()

    @property
    def oid(self) -> str:
        """The git object id: of the content, or of the LFS pointer for an LFS file."""
        return git_blob_sha1(self.pointer if self.lfs else self.content)

    def entry(self, path: str) -> dict:
        entry = {"type": "file", "path": path, "oid": self.oid, "size": len(self.content)}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": len(self.content), "pointerSize": len(self.pointer)}
        return entry


@dataclass(frozen=True)
class Commit:
    oid: str
    parent: str | None
    title: str
    files: dict[str, Blob]
    date: str
    operations: tuple[tuple[str, str], ...] = ()  # (operation, path) as the client's commit call sent them


@dataclass
class Repo:
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        oid = self.branches.get(revision) or self.tags.get(revision) or revision
        return self.commits.get(oid)


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra or {}


class LocalHub:
    """The in-memory Hub and its HTTP server on 127.0.0.1 (a free port)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.failures: dict[str, int] = {}  # request kind -> HTTP status of its next failure
        self.holds: dict[str, threading.Event] = {}  # request kind -> set when it may be answered
        self.web_page = False
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request
        self.bytes_received = 0  # request bodies: what clients uploaded
        self.lock = threading.RLock()
        self._counter = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "LocalHub":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------------ test helpers

    def fail_next(self, kind: str, status: int = 500) -> None:
        """Fail the next request of `kind` with `status` (huggingface_hub retries a 500
        on LFS uploads and preupload, so use a 4xx there)."""
        with self.lock:
            self.failures[kind] = status

    def hold(self, kind: str) -> threading.Event:
        """Keep requests of `kind` ("refs") waiting until the returned event is set."""
        with self.lock:
            event = self.holds[kind] = threading.Event()
        return event

    def commit_count(self, repo_id: str) -> int:
        return len(self.repos[repo_id].commits) if repo_id in self.repos else 0

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        commit = self.repos[repo_id].resolve(revision)
        return {path: blob.content for path, blob in commit.files.items()}

    def put_files(self, repo_id: str, files: dict[str, bytes], title: str = "edit on the Hub") -> str:
        """Commit files directly (as a user editing the repo on the website would)."""
        with self.lock:
            repo = self.repos[repo_id]
            head = repo.commits[repo.branches["main"]]
            tree = dict(head.files) | {p: Blob(c, self._is_lfs(p, c)) for p, c in files.items()}
            return self._commit(repo, "main", head.oid, title, tree)

    # ------------------------------------------------------------------ storage

    def _check_failure(self, kind: str) -> None:
        with self.lock:
            if kind in self.failures:
                raise HubError(self.failures.pop(kind), f"injected failure of {kind}")

    @staticmethod
    def _is_lfs(path: str, content: bytes) -> bool:
        return path.endswith((".parquet", ".arrow")) or len(content) > 10_000_000 or b"\0" in content[:512]

    def _commit(self, repo: Repo, branch: str, parent: str | None, title: str, files: dict[str, Blob],
                operations: tuple[tuple[str, str], ...] = ()) -> str:
        self._counter += 1
        digest = hashlib.sha1(f"{repo.repo_id}|{parent}|{title}|{self._counter}".encode())
        for path in sorted(files):
            digest.update(f"{path}:{files[path].oid}".encode())
        oid = digest.hexdigest()
        date = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", ".000Z")
        repo.commits[oid] = Commit(oid, parent, title, files, date, operations)
        repo.branches[branch] = oid
        return oid

    def repo(self, repo_id: str) -> Repo:
        if repo_id not in self.repos:
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return self.repos[repo_id]

    def commit_at(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    # ------------------------------------------------------------------ API

    def create_repo(self, body: dict) -> dict:
        name, organization = body["name"], body.get("organization")
        repo_id = f"{organization}/{name}" if organization else name
        url = f"{self.url}/datasets/{repo_id}"
        if body.get("type") != "dataset":
            raise HubError(400, "this test Hub only holds dataset repositories")
        with self.lock:
            if repo_id in self.repos:
                # The Hub's 409 still carries the url (create_repo(exist_ok=True) reads it).
                raise HubError(409, "You already created this dataset repo", extra={"url": url})
            repo = Repo(repo_id, body.get("visibility") == "private" or bool(body.get("private")))
            self.repos[repo_id] = repo
            self._commit(repo, "main", None, "initial commit", {".gitattributes": Blob(GITATTRIBUTES, False)})
        return {"url": url, "name": repo_id}

    def preupload(self, repo_id: str, revision: str, body: dict) -> dict:
        self._check_failure("preupload")
        repo = self.repo(repo_id)
        current = self.commit_at(repo, revision).files
        files = []
        for item in body["files"]:
            sample = base64.b64decode(item["sample"])
            lfs = self._is_lfs(item["path"], sample) or item["size"] > 10_000_000
            existing = current.get(item["path"])
            oid = None if existing is None else (existing.sha256 if existing.lfs else existing.oid)
            files.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        return {"files": files, "commitOid": self.commit_at(repo, revision).oid}

    def lfs_batch(self, body: dict) -> dict:
        objects = []
        for item in body["objects"]:
            entry = {"oid": item["oid"], "size": item["size"]}
            if item["oid"] not in self.lfs_objects:
                entry["actions"] = {
                    "upload": {"href": f"{self.url}/lfs/objects/{item['oid']}"},
                    "verify": {"href": f"{self.url}/lfs/verify"},
                }
            objects.append(entry)
        return {"transfer": "basic", "objects": objects}

    def lfs_upload(self, oid: str, content: bytes) -> None:
        self._check_failure("lfs-upload")
        if hashlib.sha256(content).hexdigest() != oid:
            raise HubError(400, "uploaded content does not match its sha256")
        with self.lock:
            self.lfs_objects[oid] = content

    def lfs_verify(self, body: dict) -> dict:
        if body["oid"] not in self.lfs_objects:
            raise HubError(404, f"LFS object {body['oid']} not found")
        return {}

    def commit(self, repo_id: str, revision: str, lines: list[dict]) -> dict:
        self._check_failure("commit")
        with self.lock:
            repo = self.repo(repo_id)
            if revision not in repo.branches:
                raise HubError(400, f"can only commit to a branch, not {revision}")
            head = repo.commits[repo.branches[revision]]
            header = lines[0]["value"]
            if header.get("parentCommit") and header["parentCommit"] != head.oid:
                raise HubError(412, f"parent commit {header['parentCommit']} is not the head of {revision} ({head.oid})")
            tree = dict(head.files)
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                if key == "file":
                    tree[value["path"]] = Blob(base64.b64decode(value["content"]), False)
                elif key == "lfsFile":
                    if value["oid"] not in self.lfs_objects:
                        raise HubError(422, f"LFS object {value['oid']} of {value['path']} was never uploaded")
                    tree[value["path"]] = Blob(self.lfs_objects[value["oid"]], True)
                elif key == "deletedFile":
                    if tree.pop(value["path"], None) is None:
                        raise HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    tree = {p: b for p, b in tree.items() if not p.startswith(prefix)}
                else:
                    raise HubError(400, f"unknown commit operation {key}")
            operations = tuple((line["key"], line["value"]["path"]) for line in lines[1:])
            oid = self._commit(repo, revision, head.oid, header["summary"], tree, operations)
        return {"success": True, "commitOid": oid, "commitUrl": f"{self.url}/datasets/{repo_id}/commit/{oid}", "hookOutput": ""}

    def create_tag(self, repo_id: str, revision: str, body: dict) -> dict:
        self._check_failure("tag")
        with self.lock:
            repo = self.repo(repo_id)
            commit = self.commit_at(repo, revision)
            if body["tag"] in repo.tags:
                raise HubError(409, f"Tag {body['tag']} already exists")
            repo.tags[body["tag"]] = commit.oid
        return {}

    def refs(self, repo_id: str) -> dict:
        repo = self.repo(repo_id)

        def refs_of(kind: str, refs: dict[str, str]) -> list[dict]:
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": oid} for n, oid in sorted(refs.items())]

        return {"branches": refs_of("heads", repo.branches), "tags": refs_of("tags", repo.tags), "converts": [], "pullRequests": []}

    def info(self, repo_id: str, revision: str) -> dict:
        repo = self.repo(repo_id)
        commit = self.commit_at(repo, revision)
        return {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "lastModified": commit.date,
            "tags": [],
            "siblings": [{"rfilename": path} for path in sorted(commit.files)],
        }

    def tree(self, repo_id: str, revision: str, path: str, recursive: bool, expand: bool) -> list[dict]:
        commit = self.commit_at(self.repo(repo_id), revision)
        prefix = path.strip("/") + "/" if path.strip("/") else ""
        if prefix and not any(p.startswith(prefix) for p in commit.files):
            raise HubError(404, f"{path} does not exist at {revision}", "EntryNotFound")
        entries: dict[str, dict] = {}
        for file_path, blob in sorted(commit.files.items()):
            if not file_path.startswith(prefix):
                continue
            parts = file_path[len(prefix):].split("/")
            for depth in range(1, len(parts)):
                folder = prefix + "/".join(parts[:depth])
                entries.setdefault(folder, self._folder_entry(commit, folder))
                if not recursive:
                    break
            if recursive or len(parts) == 1:
                entries[file_path] = blob.entry(file_path)
        return [self._expanded(e, commit) if expand else e for e in entries.values()]

    def paths_info(self, repo_id: str, revision: str, paths: list[str], expand: bool) -> list[dict]:
        commit = self.commit_at(self.repo(repo_id), revision)
        entries = []
        for path in paths:
            path = path.strip("/")
            if path in commit.files:
                entries.append(commit.files[path].entry(path))
            elif any(p.startswith(path + "/") for p in commit.files):
                entries.append(self._folder_entry(commit, path))
        return [self._expanded(e, commit) if expand else e for e in entries]

    @staticmethod
    def _folder_entry(commit: Commit, folder: str) -> dict:
        inside = sorted((p, b.oid) for p, b in commit.files.items() if p.startswith(folder + "/"))
        return {"type": "directory", "path": folder, "oid": hashlib.sha1(repr(inside).encode()).hexdigest(), "size": 0}

    @staticmethod
    def _expanded(entry: dict, commit: Commit) -> dict:
        return entry | {"lastCommit": {"id": commit.oid, "title": commit.title, "date": commit.date}}

    def resolve(self, repo_id: str, revision: str, path: str) -> tuple[Commit, Blob]:
        commit = self.commit_at(self.repo(repo_id), revision)
        if path not in commit.files:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        return commit, commit.files[path]


def _split_repo_path(rest: str) -> tuple[str, str]:
    """'ns/name/<action>/...' -> ('ns/name', '<action>/...')."""
    namespace, name, *tail = rest.split("/", 2)
    return f"{namespace}/{name}", tail[0] if tail else ""


def _handler_for(hub: LocalHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_HEAD(self) -> None:
            self._dispatch("HEAD")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def do_PUT(self) -> None:
            self._dispatch("PUT")

        # -------------------------------------------------------------- routing

        def _dispatch(self, method: str) -> None:
            raw_path, _, query_string = self.path.partition("?")
            query = parse_qs(query_string)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if method in ("POST", "PUT") else b""
            hub.requests.append((method, unquote(raw_path)))
            hub.bytes_received += len(body)
            if hub.web_page:
                return self._web_page()
            try:
                self._route(method, raw_path, query, body)
            except HubError as error:
                self._json(error.status, {"error": error.message} | error.extra, error_code=error.code)
            except Exception as error:  # a bug in the test server: show it to the client
                self._json(500, {"error": f"{type(error).__name__}: {error}"})

        def _route(self, method: str, raw_path: str, query: dict, body: bytes) -> None:
            if method == "POST" and raw_path == "/api/repos/create":
                self._authorise()
                return self._json(200, hub.create_repo(json.loads(body)))
            if method == "POST" and raw_path == "/api/validate-yaml":
                return self._validate_yaml(json.loads(body))
            if method == "POST" and (match := re.fullmatch(r"/datasets/(.+)\.git/info/lfs/objects/batch", raw_path)):
                self._authorise()
                hub.repo(unquote(match.group(1)))
                return self._json(200, hub.lfs_batch(json.loads(body)))
            if method == "PUT" and raw_path.startswith("/lfs/objects/"):
                hub.lfs_upload(raw_path.rsplit("/", 1)[1], body)
                return self._json(200, {})
            if method == "POST" and raw_path == "/lfs/verify":
                return self._json(200, hub.lfs_verify(json.loads(body)))
            if raw_path.startswith("/api/datasets/"):
                return self._api(method, raw_path[len("/api/datasets/"):], query, body)
            if method in ("GET", "HEAD") and raw_path.startswith("/datasets/"):
                repo_id, rest = _split_repo_path(raw_path[len("/datasets/"):])
                if rest.startswith("resolve/"):
                    revision, _, path = rest[len("resolve/"):].partition("/")
                    return self._resolve(method, unquote(repo_id), unquote(revision), unquote(path))
            raise HubError(404, f"no such endpoint: {method} {raw_path}")

        def _api(self, method: str, rest: str, query: dict, body: bytes) -> None:
            repo_id, action = _split_repo_path(rest)
            repo_id = unquote(repo_id)
            verb, _, tail = action.partition("/")
            revision, _, path = tail.partition("/")
            revision = unquote(revision) if revision else "main"
            if method == "GET" and verb in ("", "revision"):
                self._check_read(repo_id)
                return self._json(200, hub.info(repo_id, revision))
            if method == "GET" and verb == "refs":
                if held := hub.holds.get("refs"):
                    held.wait(timeout=120)
                self._check_read(repo_id)
                return self._json(200, hub.refs(repo_id))
            if method == "GET" and verb == "tree":
                self._check_read(repo_id)
                recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
                expand = query.get("expand", ["false"])[0].lower() in ("1", "true")
                return self._json(200, hub.tree(repo_id, revision, unquote(path), recursive, expand))
            if method == "POST" and verb == "paths-info":
                self._check_read(repo_id)
                form = parse_qs(body.decode()) if body and not body.startswith(b"{") else None
                payload = {"paths": form.get("paths", []), "expand": form.get("expand", ["False"])[0]} if form is not None else json.loads(body or b"{}")
                expand = str(payload.get("expand")).lower() in ("1", "true")
                return self._json(200, hub.paths_info(repo_id, revision, payload.get("paths", []), expand))
            if method == "POST" and verb == "preupload":
                self._authorise()
                return self._json(200, hub.preupload(repo_id, revision, json.loads(body)))
            if method == "POST" and verb == "commit":
                self._authorise()
                lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                return self._json(200, hub.commit(repo_id, revision, lines))
            if method == "POST" and verb == "tag":
                self._authorise()
                return self._json(200, hub.create_tag(repo_id, revision, json.loads(body)))
            raise HubError(404, f"no such endpoint: {method} /api/datasets/{rest}")

        # -------------------------------------------------------------- handlers

        def _validate_yaml(self, payload: dict) -> None:
            match = re.match(r"^---\n(.*?)\n---\n", payload.get("content", ""), re.S)
            try:
                metadata = yaml.safe_load(match.group(1)) if match else {}
            except yaml.YAMLError as error:
                return self._json(400, {"errors": [{"message": f"invalid YAML: {error}"}]})
            if not isinstance(metadata, dict):
                return self._json(400, {"errors": [{"message": "metadata must be a mapping"}]})
            if payload.get("repoType") == "dataset" and (errors := metadata_errors(metadata)):
                return self._json(400, {"errors": [{"message": error} for error in errors]})
            return self._json(200, {"errors": [], "warnings": []})

        def _resolve(self, method: str, repo_id: str, revision: str, path: str) -> None:
            self._check_read(repo_id)
            commit, blob = hub.resolve(repo_id, revision, path)
            content, status = blob.content, 200
            headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{blob.oid}"', "Accept-Ranges": "bytes"}
            if blob.lfs:
                headers |= {"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(len(blob.content))}
            if (requested := self.headers.get("Range")) and (match := re.fullmatch(r"bytes=(\d*)-(\d*)", requested)):
                start = int(match.group(1)) if match.group(1) else max(0, len(content) - int(match.group(2)))
                end = min(int(match.group(2)), len(content) - 1) if match.group(1) and match.group(2) else len(content) - 1
                headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
                content, status = content[start:end + 1], 206
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if method == "GET":
                self.wfile.write(content)

        # -------------------------------------------------------------- helpers

        def _authorise(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {hub.token}":
                raise HubError(401, "Invalid credentials in Authorization header")

        def _check_read(self, repo_id: str) -> None:
            repo = hub.repo(repo_id)
            if repo.private and self.headers.get("Authorization") != f"Bearer {hub.token}":
                raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")

        def _web_page(self) -> None:
            page = b"<!DOCTYPE html><html><body><h1>Welcome</h1><p>Please sign in.</p></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(page)

        def _json(self, status: int, payload, error_code: str | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if error_code:
                self.send_header("X-Error-Code", error_code)
                self.send_header("X-Error-Message", str(payload.get("error", "")))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

    return Handler
