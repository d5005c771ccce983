"""Text that crosses our boundary: what printed text hides (``masking``), a word as a shell
reads it (``shellwords``), JSON from files and servers (``jsontext``). Knows nothing of SGLang."""
