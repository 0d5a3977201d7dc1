"""The polymimic leaderboard: submissions it re-evaluates itself, on contexts nobody sees.

Most robot-learning leaderboards list self-reported numbers; ManiSkill's evaluates each
submission itself on held-out configurations. polymimic's does the same, and is built to
take files from strangers:

- ``schema``: ``submission.json`` (what a submitter declares) and its checks;
- ``bundle``: the submission bundle (a directory or a zip of ``submission.json``,
  ``model.safetensors``, ``config.json``), read with bounds on every size and loaded through
  the one checkpoint loader (``polymimic.policies.checkpoint``), which never unpickles;
- ``store``: SQLAlchemy tables (SQLite by default, any database URL) with Alembic
  migrations shipped in the package;
- ``verify``: re-evaluation on hidden test contexts derived from a server secret, in a
  resource-limited subprocess, one job at a time per worker;
- ``pages``, ``figures``, ``web``: the ranked tables and entry pages (with ``polymimic
  report``'s figures of the verification), the Starlette app and the static export.

Only numbers the server computed rank; claimed numbers are stored beside them and a claim
outside the verified 95 % interval is flagged.
"""

#: The database when none is named: SQLite in the working directory (``store.Store``). Here,
#: not in ``store``, so that the command line can name it without importing SQLAlchemy.
DEFAULT_URL = "sqlite:///leaderboard.db"
