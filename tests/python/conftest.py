"""Fixtures shared by the test files: PoCADuck datasets written by the real package,
PoCADuck's own `Query` over them, and a `vastdb-emulator` per test file."""

import os

import pytest
from pocaduck import Query, StorageConfig

from emulator_fixture import Emulator
from pocaduck_fixture import make_datasets


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """A `vastdb-emulator` ($VASTDB_EMULATOR_BIN) over an empty folder, for one test file."""
    emu = Emulator(os.environ["VASTDB_EMULATOR_BIN"], tmp_path_factory.mktemp("vastdb"))
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def sources(tmp_path_factory):
    """(raw, optimized): the same points in PoCADuck's two layouts."""
    return make_datasets(str(tmp_path_factory.mktemp("pocaduck")))


@pytest.fixture(scope="session")
def queries(sources):
    """PoCADuck's `Query` per dataset name."""
    raw, opt = (Query(StorageConfig(base_path=s)) for s in sources)
    yield {"raw": raw, "optimized": opt, "raw-passes": raw}
    raw.close()
    opt.close()
