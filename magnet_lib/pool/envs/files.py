"""Files: a small virtual file system with permissions, sharing and a download catalogue.

Flows: list_directory / find_files -> file_path -> read_file -> content -> write_file;
check_file_exists (gate) -> download_file_from_url (url from search_download_catalogue);
find_files -> file_paths -> compress_files -> file_path -> share_file;
get_file_permissions (gate: is_owner, can_write) -> set_file_permissions -> write_file / delete_file;
copy_file / move_file -> file_path -> delete_file.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Literal

from pydantic import BaseModel, Field

from magnet_lib.pool.envs.base import ToolEnvironment, ToolError, tool

PermissionMode = Literal["private", "read_only", "read_write"]

_DIRECTORIES = ["/documents", "/photos", "/downloads", "/projects", "/shared"]
# directory -> (file name, content template); {n} is filled from the seeded generator
_FILE_POOL = {
    "/documents": [
        ("meeting_notes.txt", "Team sync: ship the beta on Friday, {n} open bugs left, Dana owns the release notes."),
        ("budget_2024.csv", "category,amount\nrent,{n}0\ngroceries,{n}\ntravel,{n}5"),
        ("resume.txt", "Software engineer with {n} years of experience in data pipelines and Python."),
        ("todo.txt", "1. renew passport\n2. book dentist\n3. pay {n} dollars to the landlord"),
        ("recipe_lasagna.txt", "Lasagna for {n} people: pasta sheets, ricotta, tomato sauce, basil."),
        ("travel_plan.txt", "Lisbon trip: fly out on May {n}, stay in Alfama, visit Belem on day two."),
    ],
    "/photos": [
        ("beach_sunset.jpg", "JPEG image 4032x3024, taken at Ocean Beach, {n} likes-worthy colours."),
        ("birthday_party.jpg", "JPEG image 3000x2000, birthday party with {n} guests."),
        ("mountain_hike.png", "PNG image 1920x1080, summit view after a {n} mile hike."),
        ("family_dinner.jpg", "JPEG image 2048x1536, family dinner, table for {n}."),
    ],
    "/downloads": [
        ("installer_v{n}.dmg", "Binary installer, version {n}."),
        ("bank_statement_march.pdf", "Statement for March: {n} transactions, closing balance 2,{n}40.00 USD."),
        ("concert_ticket.pdf", "Ticket for row {n}, seat 12, doors open at 7pm."),
    ],
    "/projects": [
        ("website_redesign.md", "# Website redesign\nNew landing page ready, {n} pages still to migrate."),
        ("analysis.py", "import statistics\nprint(statistics.mean([{n}, 4, 8, 15]))"),
        ("roadmap.md", "Q3 roadmap: search revamp, {n} customer interviews, mobile app beta."),
        ("launch_announcement.txt", "We are thrilled to launch version {n}.0 of our app today! Faster sync and a new dark mode."),
    ],
}
_SHARED_POOL = [
    ("quarterly_report.pdf", "Quarterly report: revenue grew {n} percent, churn fell to 3 percent."),
    ("team_roster.csv", "name,role\nDana,lead\nLee,designer\nKim,engineer ({n} months)"),
    ("design_mockups.fig", "Figma export with {n} frames for the new checkout flow."),
    ("onboarding_guide.md", "Welcome! Read the {n} steps below before your first day."),
    ("salary_bands.xlsx", "Confidential salary bands for {n} roles."),
]
_USERS = ["alex", "sam", "jordan", "riley", "morgan", "casey", "taylor"]
_CATALOGUE = [
    (
        "https://downloads.example.com/reports/annual_report_2023.pdf",
        "annual_report_2023.pdf",
        "Annual report 2023 with audited financial statements.",
    ),
    (
        "https://downloads.example.com/templates/invoice_template.docx",
        "invoice_template.docx",
        "Invoice template with company header and payment terms.",
    ),
    ("https://downloads.example.com/data/city_temperatures.csv", "city_temperatures.csv", "city,avg_temp\nLisbon,17\nOslo,6\nCairo,22"),
    (
        "https://downloads.example.com/ebooks/python_basics.pdf",
        "python_basics.pdf",
        "Python basics e-book: variables, loops, functions, classes.",
    ),
    ("https://downloads.example.com/music/lofi_mix.mp3", "lofi_mix.mp3", "MP3 audio, 42 minutes of lo-fi beats."),
    ("https://downloads.example.com/images/world_map.png", "world_map.png", "PNG image of a political world map, 8000x4000."),
    ("https://downloads.example.com/software/photo_editor_setup.exe", "photo_editor_setup.exe", "Setup program for Photo Editor 5."),
    (
        "https://downloads.example.com/reports/meeting_minutes_june.txt",
        "meeting_minutes.txt",
        "Minutes of the June board meeting: budget approved.",
    ),
]


#: kinds of file whose content is not text a user types (write_file into them makes no sense)
_BINARY_SUFFIXES = frozenset(
    {"jpg", "jpeg", "png", "gif", "pdf", "xlsx", "xls", "docx", "zip", "gz", "tar", "mp3", "mp4", "mov", "dmg", "exe", "iso", "bin"}
)


class FileRecord(BaseModel):
    file_path: str
    content: str
    owner: str
    mode: PermissionMode
    shared_with: dict[str, str] = Field(default_factory=dict)


class FileEntry(BaseModel):
    file_path: str = Field(description="Full path of the file.")
    name: str = Field(description="File name without the directory.")
    size_bytes: int = Field(description="Size of the file in bytes.")
    owner: str = Field(description="Username of the file's owner.")


class DirectoryListing(BaseModel):
    """The files inside a directory."""

    directory: str = Field(description="The directory that was listed.")
    entries: list[FileEntry] = Field(description="Files in the directory, sorted by name.")


class FileMatches(BaseModel):
    """Paths of the files whose name matches the pattern."""

    file_paths: list[str] = Field(description="Full paths of the matching files.")


class ExistenceCheck(BaseModel):
    """Whether a path exists."""

    file_path: str = Field(description="The path that was checked.")
    exists: bool = Field(description="True when a file or directory exists at the path.")
    is_directory: bool = Field(description="True when the path is a directory.")


class FileContent(BaseModel):
    """The content of a file."""

    file_path: str = Field(description="Full path of the file.")
    content: str = Field(description="Text content of the file.")
    size_bytes: int = Field(description="Size of the file in bytes.")


class FileWritten(BaseModel):
    """A file that was created or changed."""

    file_path: str = Field(description="Full path of the resulting file.")
    size_bytes: int = Field(description="Size of the resulting file in bytes.")


class CatalogueItem(BaseModel):
    url: str = Field(description="Download address of the item.")
    file_name: str = Field(description="Name the file gets when downloaded.")
    size_bytes: int = Field(description="Size of the download in bytes.")


class CatalogueResults(BaseModel):
    """Downloadable items matching the search."""

    items: list[CatalogueItem] = Field(description="Matching downloads.")


class ShareEntry(BaseModel):
    username: str = Field(description="User the file is shared with.")
    access: str = Field(description="'view' or 'edit'.")


class FilePermissions(BaseModel):
    """Who owns a file and what the current user may do with it."""

    file_path: str = Field(description="Full path of the file.")
    owner: str = Field(description="Username of the file's owner.")
    is_owner: bool = Field(description="True when the current user owns the file (only owners may change permissions or share).")
    mode: PermissionMode = Field(description="'private' (owner only), 'read_only' (nobody may modify) or 'read_write'.")
    can_read: bool = Field(description="Whether the current user may read the file.")
    can_write: bool = Field(description="Whether the current user may modify, move or delete the file.")
    shared_with: list[ShareEntry] = Field(description="Users the file is shared with.")


class ShareReceipt(BaseModel):
    """A file shared with another user."""

    share_id: str = Field(description="Identifier of the share.")
    file_path: str = Field(description="Full path of the shared file.")
    username: str = Field(description="User the file is now shared with.")
    access: str = Field(description="Access level granted.")


class Status(BaseModel):
    """Outcome of an action."""

    success: bool = Field(description="Whether the action succeeded.")
    message: str = Field(description="What happened.")


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


class FilesEnv(ToolEnvironment):
    category = "files"
    description = "Browsing, editing, downloading and sharing files in the user's file system."

    def setup(self) -> None:
        users = self.rng.sample(_USERS, 4)
        self.username, self.teammates = users[0], users[1:]
        self.directories: set[str] = set(_DIRECTORIES)
        self.files: dict[str, FileRecord] = {}
        for directory, pool in _FILE_POOL.items():
            for name, template in self.rng.sample(pool, min(3, len(pool))):
                n = self.rng.randint(2, 9)
                self._put(
                    f"{directory}/{name.format(n=n)}", template.format(n=n), self.username, self.rng.choice(["private", "read_write"])
                )
        # teammates' files in /shared: at least one of each mode, so every permission path exists
        modes: list[PermissionMode] = ["private", "read_only", "read_write", self.rng.choice(["read_only", "read_write"])]
        self.rng.shuffle(modes)
        for (name, template), mode in zip(self.rng.sample(_SHARED_POOL, 4), modes):
            self._put(f"/shared/{name}", template.format(n=self.rng.randint(2, 9)), self.rng.choice(self.teammates), mode)
        self.catalogue = {url: (file_name, content) for url, file_name, content in self.rng.sample(_CATALOGUE, 6)}
        self.shares: dict[str, ShareReceipt] = {}

    def user_values(self) -> dict[str, list]:
        return {
            "directory": sorted(self.directories),
            "destination_directory": sorted(self.directories),
            "file_path": sorted(self.files),
            "name_pattern": ["*.txt", "*.jpg", "report", "notes", "*.pdf"],
            "query": ["report", "template", "python", "map", "music"],
            "content": ["Remember to water the plants.", "Draft: launch moved to next Tuesday."],
            "archive_name": ["backup", "photos_2024", "project_bundle"],
            "username": list(self.teammates),
        }

    # ------------------------------------------------------------------ helpers
    def _put(self, path: str, content: str, owner: str, mode: PermissionMode) -> FileRecord:
        self.files[path] = FileRecord(file_path=path, content=content, owner=owner, mode=mode)
        return self.files[path]

    def accepts(self, tool: str, param: str, value: Any, chosen: dict[str, Any] | None = None) -> bool:
        """Text written only to a text file (never into a photo or a spreadsheet); permissions
        changed only on a file the user owns, and only to a mode it does not have already."""
        if tool == "write_file" and param == "file_path":
            return str(value).rsplit(".", 1)[-1].lower() not in _BINARY_SUFFIXES
        if tool == "set_file_permissions" and param == "file_path":
            return value in self.files and self.files[value].owner == self.username
        if tool == "set_file_permissions" and param == "mode" and chosen and chosen.get("file_path") in self.files:
            return self.files[chosen["file_path"]].mode != value
        return True

    def _file(self, file_path: str) -> FileRecord:
        if file_path not in self.files:
            kind = "is a directory" if file_path in self.directories else "does not exist"
            raise ToolError("file_not_found", f"'{file_path}' {kind}; list the directory to see its files")
        return self.files[file_path]

    def _directory(self, directory: str) -> str:
        directory = directory.rstrip("/") or "/"
        if directory not in self.directories:
            raise ToolError("unknown_directory", f"directory '{directory}' does not exist; known: {sorted(self.directories)}")
        return directory

    def _can_read(self, f: FileRecord) -> bool:
        return f.owner == self.username or f.mode != "private"

    def _can_write(self, f: FileRecord) -> bool:
        return (f.owner == self.username and f.mode != "read_only") or f.mode == "read_write"

    def _require(self, f: FileRecord, write: bool) -> None:
        if not (self._can_write(f) if write else self._can_read(f)):
            action = "modify" if write else "read"
            raise ToolError("permission_denied", f"no permission to {action} '{f.file_path}' (owner {f.owner}, mode {f.mode})")

    def _free_target(self, path: str) -> None:
        if path in self.files:
            raise ToolError("file_already_exists", f"'{path}' already exists")

    def _written(self, f: FileRecord) -> FileWritten:
        return FileWritten(file_path=f.file_path, size_bytes=len(f.content.encode()))

    def _permissions(self, f: FileRecord) -> FilePermissions:
        return FilePermissions(
            file_path=f.file_path,
            owner=f.owner,
            is_owner=f.owner == self.username,
            mode=f.mode,
            can_read=self._can_read(f),
            can_write=self._can_write(f),
            shared_with=[ShareEntry(username=u, access=a) for u, a in sorted(f.shared_with.items())],
        )

    # ------------------------------------------------------------------ browsing
    @tool("File browsing")
    def list_directory(self, directory: str) -> DirectoryListing:
        """List the files inside a directory of the user's file system.

        Args:
            directory: Absolute directory path, e.g. '/documents'.
        """
        directory = self._directory(directory)
        entries = [
            FileEntry(file_path=f.file_path, name=_name(f.file_path), size_bytes=len(f.content.encode()), owner=f.owner)
            for path, f in sorted(self.files.items())
            if _parent(path) == directory
        ]
        return DirectoryListing(directory=directory, entries=entries)

    @tool("File browsing")
    def find_files(self, name_pattern: str, directory: str | None = None) -> FileMatches:
        """Find files whose name matches a pattern, in every directory or in one.

        Args:
            name_pattern: A glob such as '*.pdf', or words that must appear in the file name.
            directory: Only search inside this directory.
        """
        where = self._directory(directory) if directory else None
        pattern = name_pattern.lower()
        hits = [
            path
            for path in sorted(self.files)
            if (where is None or _parent(path) == where)
            and (fnmatch.fnmatch(_name(path).lower(), pattern) if "*" in pattern else pattern in _name(path).lower())
        ]
        return FileMatches(file_paths=hits)

    @tool("File browsing")
    def check_file_exists(self, file_path: str) -> ExistenceCheck:
        """Check whether a file or directory exists at a path.

        Args:
            file_path: Absolute path to check, e.g. '/downloads/report.pdf'.
        """
        path = file_path.rstrip("/") or "/"
        is_dir = path in self.directories
        return ExistenceCheck(file_path=path, exists=is_dir or path in self.files, is_directory=is_dir)

    @tool("File browsing")
    def read_file(self, file_path: str) -> FileContent:
        """Read the text content of a file.

        Args:
            file_path: Absolute path of the file to read.
        """
        f = self._file(file_path)
        self._require(f, write=False)
        return FileContent(file_path=f.file_path, content=f.content, size_bytes=len(f.content.encode()))

    # ------------------------------------------------------------------ management
    @tool("File management")
    def write_file(self, file_path: str, content: str, write_mode: Literal["overwrite", "append", "create"] = "create") -> FileWritten:
        """Write text to a file: create a new file, or overwrite or append to an existing one.

        Args:
            file_path: Absolute path of the file to write; its directory must exist.
            content: The text to write.
            write_mode: 'create' fails if the file exists; 'overwrite' replaces its content; 'append' adds to the end.
        """
        existing = self.files.get(file_path)
        if existing is None:
            if write_mode == "append":
                raise ToolError("file_not_found", f"cannot append to '{file_path}': it does not exist")
            self._directory(_parent(file_path))
            return self._written(self._put(file_path, content, self.username, "private"))
        if write_mode == "create":
            raise ToolError("file_already_exists", f"'{file_path}' already exists; use write_mode 'overwrite' or 'append'")
        self._require(existing, write=True)
        existing.content = content if write_mode == "overwrite" else existing.content + "\n" + content
        return self._written(existing)

    @tool("File management")
    def copy_file(self, file_path: str, destination_directory: str) -> FileWritten:
        """Copy a file into another directory; the copy belongs to the current user.

        Args:
            file_path: Absolute path of the file to copy.
            destination_directory: Directory the copy goes to.
        """
        f = self._file(file_path)
        self._require(f, write=False)
        target = f"{self._directory(destination_directory)}/{_name(file_path)}"
        self._free_target(target)
        return self._written(self._put(target, f.content, self.username, "private"))

    @tool("File management")
    def move_file(self, file_path: str, destination_directory: str) -> FileWritten:
        """Move a file into another directory.

        Args:
            file_path: Absolute path of the file to move.
            destination_directory: Directory the file moves to.
        """
        f = self._file(file_path)
        self._require(f, write=True)
        target = f"{self._directory(destination_directory)}/{_name(file_path)}"
        self._free_target(target)
        del self.files[file_path]
        f.file_path = target
        self.files[target] = f
        return self._written(f)

    @tool("File management")
    def delete_file(self, file_path: str) -> Status:
        """Delete a file permanently.

        Args:
            file_path: Absolute path of the file to delete.
        """
        f = self._file(file_path)
        self._require(f, write=True)
        del self.files[file_path]
        return Status(success=True, message=f"deleted {file_path}")

    @tool("File management")
    def compress_files(self, file_paths: list[str], archive_name: str) -> FileWritten:
        """Compress files into a zip archive placed in the directory of the first file.

        Args:
            file_paths: Absolute paths of the files to put in the archive.
            archive_name: Name of the archive, without the '.zip' extension.
        """
        if not file_paths:
            raise ToolError("no_files", "give at least one file to compress")
        records = [self._file(p) for p in file_paths]
        for f in records:
            self._require(f, write=False)
        name = archive_name if archive_name.endswith(".zip") else f"{archive_name}.zip"
        target = f"{_parent(records[0].file_path)}/{name}"
        self._free_target(target)
        listing = ", ".join(f"{_name(f.file_path)} ({len(f.content.encode())} bytes)" for f in records)
        return self._written(self._put(target, f"ZIP archive of {len(records)} files: {listing}", self.username, "private"))

    # ------------------------------------------------------------------ downloads
    @tool("File download")
    def search_download_catalogue(self, query: str) -> CatalogueResults:
        """Search the catalogue of files available for download by words in their name or description.

        Args:
            query: Words to look for, e.g. 'annual report'.
        """
        words = query.lower().replace("_", " ").split()
        items = [
            CatalogueItem(url=url, file_name=file_name, size_bytes=len(content.encode()))
            for url, (file_name, content) in self.catalogue.items()
            if any(w in file_name.replace("_", " ") or w in content.lower() for w in words)
        ]
        return CatalogueResults(items=items)

    @tool("File download")
    def download_file_from_url(self, url: str, destination_directory: str) -> FileWritten:
        """Download a file from a URL into a directory; fails if a file of that name is already there.

        Args:
            url: Download address, as listed in the download catalogue.
            destination_directory: Directory to save the file in.
        """
        if url not in self.catalogue:
            raise ToolError("unknown_url", f"nothing can be downloaded from '{url}'")
        file_name, content = self.catalogue[url]
        target = f"{self._directory(destination_directory)}/{file_name}"
        self._free_target(target)
        return self._written(self._put(target, content, self.username, "private"))

    # ------------------------------------------------------------------ permissions and sharing
    @tool("File permissions and sharing")
    def get_file_permissions(self, file_path: str) -> FilePermissions:
        """Show a file's owner, permission mode, what the current user may do and who it is shared with.

        Args:
            file_path: Absolute path of the file.
        """
        return self._permissions(self._file(file_path))

    @tool("File permissions and sharing")
    def set_file_permissions(self, file_path: str, mode: PermissionMode) -> FilePermissions:
        """Change the permission mode of a file the current user owns.

        Args:
            file_path: Absolute path of the file.
            mode: 'private' (only the owner), 'read_only' (nobody may modify) or 'read_write' (everyone may modify).
        """
        f = self._file(file_path)
        if f.owner != self.username:
            raise ToolError("permission_denied", f"only the owner ({f.owner}) may change the permissions of '{file_path}'")
        f.mode = mode
        return self._permissions(f)

    @tool("File permissions and sharing")
    def share_file(self, file_path: str, username: str, access: Literal["view", "edit"] = "view") -> ShareReceipt:
        """Share a file the current user owns with another user.

        Args:
            file_path: Absolute path of the file to share.
            username: The user to share it with.
            access: 'view' to let them read it, 'edit' to let them change it.
        """
        f = self._file(file_path)
        if f.owner != self.username:
            raise ToolError("permission_denied", f"only the owner ({f.owner}) may share '{file_path}'")
        if username not in self.teammates:
            raise ToolError("unknown_user", f"no user '{username}'; known users: {self.teammates}")
        f.shared_with[username] = access
        share_id = self.new_id("SH")
        self.shares[share_id] = ShareReceipt(share_id=share_id, file_path=file_path, username=username, access=access)
        return self.shares[share_id]
