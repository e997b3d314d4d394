"""Settings: read once with environs (secrets also from *_FILE), checked, frozen.

`settings.py` holds the fields and their defaults, `reading.py` reads the environment into
them, `checks.py` and `secret_files.py` check what was read, `problems.py` words what is
wrong.
"""

from service.config.problems import ConfigError
from service.config.reading import load_settings
from service.config.settings import Settings

__all__ = ["ConfigError", "Settings", "load_settings"]
