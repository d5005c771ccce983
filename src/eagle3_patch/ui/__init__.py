"""What a user sees: results as text or JSON (``render``), and every failure's message, JSON
object and exit code (``errorreport``, with ``crashlog`` for a bug's traceback)."""
