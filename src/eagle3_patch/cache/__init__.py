"""The user's cache: every cache's folder, key and trust rule (``usercache``), and the
remembered analysis of a models folder (``analysismemo``)."""
