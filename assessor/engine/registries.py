"""How the service reaches the Python package registry through uv: one place for the proxies, certificates and
indexes an operator sets, and nothing else of the service's environment."""

import os
import shutil
from pathlib import Path

# What an operator sets to reach the registry (a mirror, a proxy, the host's certificates): passed on to uv.
PASSTHROUGH_ENV = (
    "UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX", "UV_EXTRA_INDEX_URL", "UV_HTTP_TIMEOUT", "UV_NATIVE_TLS",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
    "no_proxy",
)


class RegistryToolError(Exception):
    """uv is not installed beside the service."""


def uv_binary() -> str:
    try:
        import uv
        return uv.find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if not found:
            raise RegistryToolError("uv is not installed in the service environment") from None
        return found


def uv_env(cache_dir: Path) -> dict[str, str]:
    """uv's environment: the service's cache, no learner or user configuration, no interpreter downloads."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cache_dir), "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never"}
    env.update({name: os.environ[name] for name in PASSTHROUGH_ENV if name in os.environ})
    return env
