"""The one place for rules, queries, permissions and audit. Faces (CLI, TUI) call these.

Service functions take a `Ctx` (session + acting user + clock) and keyword arguments, never
commit, and return plain output models.
"""
