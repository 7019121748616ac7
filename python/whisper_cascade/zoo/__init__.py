"""The micro model zoo: synthetic corpus of the closed domain and training of small Whisper models.

``grammar`` and ``corpus`` need only numpy, soundfile, soxr and the ``espeak-ng`` program;
``train`` needs the ``train`` extra (torch + openai-whisper) and is imported on demand.
"""

from __future__ import annotations

from whisper_cascade.zoo.corpus import CONDITION_KINDS, corpus_cli, generate_corpus
from whisper_cascade.zoo.grammar import Grammar, load_grammar

__all__ = ["CONDITION_KINDS", "Grammar", "corpus_cli", "generate_corpus", "load_grammar"]
