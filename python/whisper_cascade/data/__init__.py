"""Package data: bundled models, sample audio, grammar and vendored assets."""
