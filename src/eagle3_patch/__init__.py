"""eagle3-patch: EAGLE-3 speculative decoding for Qwen3.5/Qwen3.6 targets on SGLang."""

__version__ = "0.1.0"
