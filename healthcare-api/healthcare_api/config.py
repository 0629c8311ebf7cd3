"""Settings from the environment, validated up front so a bad value fails at start with the fix."""
import os
from dataclasses import dataclass


class ConfigError(ValueError):
    """Every invalid setting, one line each, naming the variable and the fix."""


@dataclass(frozen=True)
class Settings:
    db_host: str
    db_port: int
    db_name: str
    db_user: str
    db_password: str
    pool_size: int
    pool_timeout: float
    listen_host: str
    listen_port: int

    def __repr__(self) -> str:  # never print the password
        return (f"Settings(db={self.db_user}@{self.db_host}:{self.db_port}/{self.db_name}, "
                f"pool_size={self.pool_size}, pool_timeout={self.pool_timeout}, "
                f"listen={self.listen_host}:{self.listen_port})")


def _int(env, name, default, lo, hi, errors):
    raw = env.get(name, str(default))
    try:
        v = int(raw)
    except ValueError:
        errors.append(f"{name}: must be an integer between {lo} and {hi}, got {raw!r}")
        return default
    if not lo <= v <= hi:
        errors.append(f"{name}: must be between {lo} and {hi}, got {v}")
    return v


def _float(env, name, default, lo, hi, errors):
    raw = env.get(name, str(default))
    try:
        v = float(raw)
    except ValueError:
        errors.append(f"{name}: must be a number of seconds between {lo} and {hi}, got {raw!r}")
        return default
    if not lo <= v <= hi:
        errors.append(f"{name}: must be between {lo} and {hi} seconds, got {v}")
    return v


def _password(env, errors):
    path = env.get("DB_PASSWORD_FILE", "")
    if path:
        if env.get("DB_PASSWORD"):
            errors.append("DB_PASSWORD_FILE: set either DB_PASSWORD_FILE or DB_PASSWORD, not both")
        try:
            with open(path, encoding="utf-8") as f:
                return f.read().rstrip("\r\n")
        except OSError as e:
            errors.append(f"DB_PASSWORD_FILE: cannot read {path}: {e.strerror}; mount the Secret there")
            return ""
    if "DB_PASSWORD" in env:
        return env["DB_PASSWORD"]
    errors.append("DB_PASSWORD_FILE: not set; set DB_PASSWORD_FILE to a mounted Secret file (or DB_PASSWORD)")
    return ""


def load(env=None) -> Settings:
    env = os.environ if env is None else env
    errors = []
    s = Settings(
        db_host=env.get("DB_HOST", ""),
        db_port=_int(env, "DB_PORT", 5432, 1, 65535, errors),
        db_name=env.get("DB_NAME", "healthcare"),
        db_user=env.get("DB_USER", "healthcare"),
        db_password=_password(env, errors),
        pool_size=_int(env, "DB_POOL_SIZE", 5, 1, 100, errors),
        pool_timeout=_float(env, "DB_POOL_TIMEOUT", 5.0, 0.1, 300, errors),
        listen_host=env.get("LISTEN_HOST", "0.0.0.0"),
        listen_port=_int(env, "PORT", 8080, 1, 65535, errors),
    )
    if not s.db_host:
        errors.append("DB_HOST: not set; set it to the PostgreSQL Service name, e.g. postgres")
    if not s.db_name:
        errors.append("DB_NAME: empty; set the database name, e.g. healthcare")
    if not s.db_user:
        errors.append("DB_USER: empty; set the database role, e.g. healthcare")
    if errors:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(errors))
    return s
