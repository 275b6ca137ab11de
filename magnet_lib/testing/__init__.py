"""Test support shipped with the library: the local OpenAI-compatible server that answers
with the offline implementations of the tasks (needs the ``test`` extra: uvicorn, starlette)."""
