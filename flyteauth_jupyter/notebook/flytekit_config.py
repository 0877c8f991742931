"""Re-export: the SDK configuration readers live in :mod:`flyteauth_jupyter.sdk_config` (below the
notebook layer, so that the token command can read them without IPython)."""

from ..sdk_config import *  # noqa: F401,F403
from ..sdk_config import (  # noqa: F401 - the names this module used to define
    TRUE,
    FlytekitSettings,
    find_config_file,
    load_yaml,
    read_client_secret,
    read_flyte2_settings,
    read_flytekit_settings,
    read_sdk_settings,
    simple_yaml,
)
