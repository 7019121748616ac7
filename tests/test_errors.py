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


def test_package_surface_is_lazy_and_complete() -> None:
    import subprocess
    import sys

    code = (
        "import sys, whisper_cascade as w\n"
        "assert '_pywhispercpp' not in sys.modules\n"
        "for name in w.__all__: getattr(w, name)\n"
        "assert '_pywhispercpp' in sys.modules\n"
        "try:\n    w.nope\nexcept AttributeError:\n    print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
