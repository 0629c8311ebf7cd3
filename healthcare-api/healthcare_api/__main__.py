"""Entry point: `python3 -m healthcare_api`. Reads settings, then serves with uvicorn."""
import logging
import sys

import uvicorn

from . import config
from .app import create_app


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = config.load()
    except config.ConfigError as e:
        print(f"healthcare-api: {e}", file=sys.stderr)
        return 2
    logging.getLogger("healthcare_api").info("starting with %r", settings)
    uvicorn.run(create_app(settings), host=settings.listen_host, port=settings.listen_port,
                log_level="info", log_config=None, access_log=False, proxy_headers=False,
                lifespan="on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
