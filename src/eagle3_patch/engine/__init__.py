"""apply, status, check, diff and revert: read a snapshot of the installation, decide (pure
functions of it), commit the decision in one transaction."""
