"""EAGLE-3 capture without writing site-packages: `eagle3-patch run` and `serve --in-memory`.

``planner`` decides in the parent (same analysis and transform as ``apply``),
``payload`` carries the validated sources through the environment, ``memo``
remembers a hand-off in the user's cache, and
``bootstrap/sitecustomize.py`` (package data, standard library only) serves
them in every Python process the command starts.
"""
