from __future__ import annotations

import pytest

from whisper_cascade import errors


def test_bad_input_errors_are_value_errors() -> None:
    for cls in (errors.AudioError, errors.ModelValidationError, errors.InvalidArgumentError):
        assert issubclass(cls, ValueError)
        assert issubclass(cls, errors.WhisperCascadeError)


def test_model_validation_error_keeps_code() -> None:
    with pytest.raises(errors.ModelError) as info:
        raise errors.ModelValidationError("bad magic", "bad_magic")
    assert info.value.code == "bad_magic"
    assert str(info.value) == "bad magic"
