import pytest

from tests.reliability.servers import Uvicorn


@pytest.fixture(scope="module")
def server(django_db_setup):
    """One uvicorn (one worker) per module, on the test database."""
    live = Uvicorn(workers=1).start()
    yield live
    live.stop()
