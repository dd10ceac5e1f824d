"""errors.py's promise: every error raised on purpose also subclasses a built-in, and is exported."""

import builtins
import inspect

import pytest

import confidently
from confidently import errors
from confidently.errors import ConfidentlyError

CLASSES = [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
           if issubclass(cls, ConfidentlyError) and cls is not ConfidentlyError]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_each_error_subclasses_a_builtin_and_is_exported(cls):
    builtin_bases = [b for b in cls.__mro__ if getattr(builtins, b.__name__, None) is b and b not in
                     (Exception, BaseException, object)]
    assert builtin_bases, f"{cls.__name__} subclasses no built-in error"
    assert getattr(confidently, cls.__name__) is cls and cls.__name__ in confidently.__all__


def test_no_module_raises_the_bare_base_class():
    from pathlib import Path

    source = Path(errors.__file__).parent
    offenders = [str(p.relative_to(source)) for p in source.rglob("*.py")
                 if "raise ConfidentlyError(" in p.read_text(encoding="utf-8")]
    assert offenders == []
