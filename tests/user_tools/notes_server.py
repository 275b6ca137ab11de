"""A real MCP stdio server for the tests (MCPServer, formerly FastMCP, from the ``mcp`` SDK):
a notebook whose notes live in the server process, with a seeded ``reset`` tool."""

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

app = MCPServer("notebook")
STATE = {"seed": 0, "notes": {}, "next": 1}


class Note(BaseModel):
    note_id: str = Field(description="The note's id.")
    topic: str = Field(description="What the note is about.")
    text: str = Field(description="The note's text.")


class NoteList(BaseModel):
    note_ids: list[str] = Field(description="Ids of the notes on the topic.")
    count: int = Field(description="How many there are.")


@app.tool()
def reset(seed: int = 0) -> dict:
    """Start a fresh notebook (called by the runtime between episodes)."""
    STATE.update(seed=seed, notes={}, next=1)
    return {"ok": True}


@app.tool()
def server_pid() -> int:
    """The server's process id (the tests end the process with it; excluded from the pool)."""
    import os

    return os.getpid()


@app.tool()
def write_note(topic: str, text: str) -> Note:
    """Write a new note in the notebook.

    Args:
        topic: What the note is about, e.g. 'groceries'.
        text: The text of the note.
    """
    note_id = f"NT-{STATE['seed']}-{STATE['next']:03d}"
    STATE["next"] += 1
    STATE["notes"][note_id] = {"note_id": note_id, "topic": topic, "text": text}
    return Note(**STATE["notes"][note_id])


@app.tool()
def read_note(note_id: str) -> Note:
    """Read a note by its id.

    Args:
        note_id: The id of the note.
    """
    if note_id not in STATE["notes"]:
        raise ToolError(f"no note {note_id}")
    return Note(**STATE["notes"][note_id])


@app.tool()
def append_to_note(note_id: str, text: str) -> Note:
    """Add text at the end of an existing note.

    Args:
        note_id: The id of the note.
        text: The text to add.
    """
    if note_id not in STATE["notes"]:
        raise ToolError(f"no note {note_id}")
    STATE["notes"][note_id]["text"] += " " + text
    return Note(**STATE["notes"][note_id])


@app.tool()
def find_notes(topic: str) -> NoteList:
    """List the notes on a topic.

    Args:
        topic: The topic to look for.
    """
    ids = [n["note_id"] for n in STATE["notes"].values() if n["topic"] == topic]
    return NoteList(note_ids=ids, count=len(ids))


if __name__ == "__main__":
    app.run()
