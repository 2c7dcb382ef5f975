import sys

import pytest

from segue.runtime import keep_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_allocator_setting_takes_on_glibc() -> None:
    assert keep_freed_memory() is True
