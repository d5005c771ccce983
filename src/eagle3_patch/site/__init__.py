"""An SGLang installation on disk and the programs around it: finding it and its interpreter,
reading it once (``snapshot``), our backups, the lock, the one transaction that writes beside
it (``install``), the commands a message prints for it (``hints``), the process handed over to."""
