"""One module per CLI command: options in, one call, result out. ``cli`` loads each lazily;
``options`` holds the option decorators they share."""
