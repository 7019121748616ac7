"""The bundled micro zoo: ggml files and registry.json."""
